"""Resumable RL runs: a snapshot of a run after a step (trainable weights, Adam moments, EMA anchor,
history, config), written as safetensors + JSON and read back so that a resumed run ends
bit-identical to an uninterrupted one, even after a SIGKILL while saving."""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel

from lib.config import RLConfig

# Fields that do not change the trained weights: a run may be resumed with other values.
RESUMABLE_FIELDS = ("steps", "eval_every", "n_eval_samples")


def trainable_named_parameters(policy: PreTrainedModel) -> dict[str, torch.nn.Parameter]:
    """The policy's trainable parameters by name, in a stable order (tied weights once)."""
    return {n: p for n, p in policy.named_parameters() if p.requires_grad}


def state_of(step: int, policy: PreTrainedModel, optimizer: torch.optim.Optimizer,
             anchor, history: dict, cfg: RLConfig) -> dict:
    """A snapshot to resume from after `step`: trainable weights, Adam moments and step counts
    (keyed `<param name>.<field>`), EMA anchor weights, history and config (copies)."""
    params = trainable_named_parameters(policy)
    index = {id(p): n for n, p in params.items()}
    opt_state = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for field, value in optimizer.state.get(p, {}).items():
                opt_state[f"{index[id(p)]}.{field}"] = value.detach().clone().contiguous()
    return {"step": step,
            "policy": {n: p.detach().clone().contiguous() for n, p in params.items()},
            "optimizer": opt_state,
            "anchor": anchor.state_dict() if anchor is not None else {},
            "history": copy.deepcopy(history), "config": asdict(cfg)}


def save_rl_state(path: Path | str, state: dict) -> None:
    """Write `state` to the directory `path`: tensors in `tensors.safetensors`, the rest in
    `state.json` (written last, each file replaced atomically). The tensors file records its step,
    so a run killed between the two writes leaves a pair that `load_rl_state` refuses."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {f"{part}/{k}": v.detach().cpu().contiguous()
               for part in ("policy", "optimizer", "anchor") for k, v in state[part].items()}
    save_file(tensors, str(path / "tensors.safetensors.tmp"), metadata={"step": str(state["step"])})
    os.replace(path / "tensors.safetensors.tmp", path / "tensors.safetensors")
    meta = {k: state[k] for k in ("step", "history", "config")}
    (path / "state.json.tmp").write_text(json.dumps(meta))
    os.replace(path / "state.json.tmp", path / "state.json")


class StaleRLState(ValueError):
    """A saved RL state whose files do not belong together (a run killed while saving it)."""


def load_rl_state(path: Path | str) -> dict:
    """Read back a state written by `save_rl_state`."""
    path = Path(path)
    meta = json.loads((path / "state.json").read_text())
    with safe_open(str(path / "tensors.safetensors"), framework="pt") as f:
        step = (f.metadata() or {}).get("step")
    if step != str(meta["step"]):
        raise StaleRLState(f"RL state in {path}: state.json is at step {meta['step']} but its "
                           f"tensors are at step {step}")
    state = {**meta, "policy": {}, "optimizer": {}, "anchor": {}}
    for key, value in load_file(str(path / "tensors.safetensors")).items():
        part, name = key.split("/", 1)
        state[part][name] = value
    return state


def restore(state: dict, policy: PreTrainedModel, optimizer: torch.optim.Optimizer,
            anchor, cfg: RLConfig) -> None:
    """Put a snapshot of `state_of` back into a fresh run (the config must match, up to
    `RESUMABLE_FIELDS`)."""
    saved = {k: v for k, v in state["config"].items() if k not in RESUMABLE_FIELDS}
    now = {k: v for k, v in asdict(cfg).items() if k not in RESUMABLE_FIELDS}
    if saved != now:
        diff = sorted(k for k in now if saved.get(k) != now[k])
        raise ValueError(f"cannot resume: the saved run has other settings for {diff}")
    params = trainable_named_parameters(policy)
    if set(state["policy"]) != set(params):
        raise ValueError("cannot resume: the saved trainable parameters differ from the policy's")
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(state["policy"][n])
    per_param: dict[int, dict] = {}
    for i, n in enumerate(params):
        fields = {f: state["optimizer"][f"{n}.{f}"] for f in ("step", "exp_avg", "exp_avg_sq")
                  if f"{n}.{f}" in state["optimizer"]}
        if fields:
            per_param[i] = fields
    optimizer.load_state_dict({"state": per_param,
                               "param_groups": optimizer.state_dict()["param_groups"]})
    if anchor is not None:
        anchor.load_state_dict(state["anchor"])
