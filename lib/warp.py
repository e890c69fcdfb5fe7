"""WARP: Weight Averaged Rewarded Policies (Ramé et al. 2024, Algorithm 1).

Starting from the SFT policy θ_sft = θ_init, each of I iterations

1. runs M independent RL fine-tunings θ_1..θ_M from θ_init (`lib.rl.train_policy`), each with
   the KL measured against its own EMA anchor (RLConfig anchor "ema", μ = 0.01, β = 0.1 in the
   paper); the runs differ only by their seed, i.e. by the order of the prompts and the sampling;
2. merges them by spherical interpolation of their task vectors δ_m = θ_m − θ_init (Stage 2):
   for M = 2, θ_slerp = θ_init + sin((1−λ)Ω)/sin Ω · δ_1 + sin(λΩ)/sin Ω · δ_2 with Ω the angle
   between δ_1 and δ_2 (per tensor by default); for M > 2 the paper's recursive rule
   slerp_M = slerp(θ_init, slerp_{M−1}(θ_1..θ_{M−1}), θ_M, λ = 1/M), which gives each model
   the weight 1/M but is not associative (the order of the runs matters);
3. interpolates towards the init (LITI, Stage 3): θ_liti = (1−η)·θ_init + η·θ_slerp (η = 0.3),
   which is the θ_init of the next iteration.

The KL-to-init logged by every run is always measured against the SFT policy (`init_state`), so
that the histories of all iterations share one reference. Merges are always on full weights
(float32, CPU): for LoRA policies the merged weights W + B·A·scale.

The paper argues that SLERP keeps the norm of the task vectors while LERP (a plain average of
the models) shrinks it when the task vectors are not parallel (to 1/√2 of it for two orthogonal
task vectors of equal norm); every iteration records the norms ‖δ_m‖, the norm of the merged
task vector and the angle between δ_1 and δ_2 to show it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable, Sequence

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .config import SEED_STRIDE, WARPConfig
from .merge import (StateDict, global_norm, layer_group, liti, slerp, slerp_many, task_vector,
                    weight_average)
from .rl import RewardFn, is_peft, train_policy, wrap_lora



def run_seed(base_seed: int, iteration: int, run: int) -> int:
    """The RL seed of run `run` (0-based) of iteration `iteration` (0-based):
    base_seed + 1000·iteration + run, distinct for all runs of a WARP call since M < 1000."""
    return base_seed + SEED_STRIDE * iteration + run


def _cpu_float(state: StateDict) -> StateDict:
    """A detached CPU copy, floating tensors in float32."""
    return {k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().clone()
            .contiguous() for k, v in state.items()}


def full_weights(policy: PreTrainedModel, keys: Sequence[str] | None = None) -> StateDict:
    """The full weights of a policy (merged W + B·A·scale for a peft LoRA policy), CPU float32,
    restricted to `keys` when given (a `ValueError` if one is missing)."""
    from .rm import lora_merged_state_dict

    state = lora_merged_state_dict(policy) if is_peft(policy) else policy.state_dict()
    if keys is not None:
        missing = [k for k in keys if k not in state]
        if missing:
            raise ValueError(f"the trained policy has no weights {missing[:3]} of the init state")
        state = {k: state[k] for k in keys}
    return _cpu_float(state)


def angle_deg(delta_a: StateDict, delta_b: StateDict) -> float:
    """The angle (degrees) between two task vectors flattened over all their floating tensors;
    NaN if either is zero."""
    keys = [k for k in delta_a if delta_a[k].is_floating_point()]
    dot = sum(float((delta_a[k].double() * delta_b[k].double()).sum()) for k in keys)
    na, nb = global_norm(delta_a), global_norm(delta_b)
    if na == 0.0 or nb == 0.0:
        return float("nan")
    return math.degrees(math.acos(max(-1.0, min(1.0, dot / (na * nb)))))


def merge_policies(theta_init: StateDict, thetas: Sequence[StateDict], cfg: WARPConfig) -> StateDict:
    """WARP's Stage 2 on full weights: the merge of `thetas`' task vectors w.r.t. `theta_init`.

    - "slerp", M = 2: `lib.merge.slerp(θ_init, θ_1, θ_2, λ = cfg.lam)`;
    - "slerp", M > 2: `lib.merge.slerp_many`, slerp_M = slerp(θ_init, slerp_{M−1}, θ_M, λ = 1/M)
      (order-dependent);
    - "lerp": the uniform average of the models, θ_init + mean_m δ_m.

    SLERP's angles are taken per tensor, per transformer layer or over the whole flattened task
    vector (`cfg.angles`). One model is returned as is (a copy).
    """
    thetas = list(thetas)
    if not thetas:
        raise ValueError("merge_policies needs at least one policy")
    if len(thetas) == 1:
        return {k: v.clone() for k, v in thetas[0].items()}
    if cfg.merge == "lerp":
        return weight_average(thetas)
    angles = {"per_tensor": cfg.angles != "global", "group": layer_group if cfg.angles == "layer" else None}
    if len(thetas) == 2:
        return slerp(theta_init, thetas[0], thetas[1], lam=cfg.lam, **angles)
    return slerp_many(theta_init, thetas, **angles)


def warp(init_state: StateDict, make_policy: Callable[[StateDict], PreTrainedModel],
         tokenizer: PreTrainedTokenizerBase, prompts: list[str], reward_fn: RewardFn,
         cfg: WARPConfig, *, eval_fn: Callable[[StateDict], dict] | None = None,
         on_run: Callable[[int, int, StateDict, dict], None] | None = None,
         eval_prompts: list[str] | None = None, gold_fn: RewardFn | None = None,
         desc: str = "WARP") -> dict:
    """WARP (Algorithm 1): `cfg.iterations` rounds of M RL runs, merge, LITI.

    - `init_state`: full weights of the SFT policy (leave a tied `lm_head.weight` out, as the
      saved checkpoints do, or it counts twice in global norms and angles). Its keys are the keys
      of every state this returns.
    - `make_policy(state)`: a fresh trainable policy carrying the full weights `state` (for the
      LoRA modes, with fresh adapters; a plain model is wrapped here with `wrap_lora`). It gets a
      copy of θ_init, so it may take ownership of the tensors.
    - Run m of iteration i (both 0-based) trains with `replace(cfg.rl, seed=run_seed(cfg.rl.seed,
      i, m))`, KL-to-init measured against `init_state`; `eval_prompts` and `gold_fn` go to
      `train_policy` (logging only). `on_run(i, m, weights, history)` is called after each run.
    - `eval_fn(state) -> dict`, if given, scores the SFT state once and the merged and LITI
      states of every iteration.
    - The merge and LITI start from θ_init as the runs hold it (`full_weights` of a fresh policy):
      θ_init itself, or for a 4-bit policy its NF4 rounding.

    Returns {"config", "eval_init", "final" (the last θ_liti), "iterations": [per iteration:
    "seeds", "histories", "merged" (θ_slerp, or the LERP average), "liti" (θ_liti, the next init),
    "task_norms" (‖δ_m‖), "merged_norm" (‖θ_merged − θ_init‖), "angle_deg" (between δ_1 and δ_2;
    None for M = 1), "eval_merged", "eval_liti"]}. States are CPU float32.
    """
    sft = _cpu_float(init_state)
    keys = list(sft)
    theta_init = sft
    out: dict = {"config": cfg, "eval_init": eval_fn(sft) if eval_fn else None, "iterations": []}
    for i in range(cfg.iterations):
        thetas, histories, seeds, start = [], [], [], None
        for m in range(cfg.m):
            run_cfg = replace(cfg.rl, seed=run_seed(cfg.rl.seed, i, m))
            policy = make_policy({k: v.clone() for k, v in theta_init.items()})
            if run_cfg.mode != "full" and not is_peft(policy):
                policy = wrap_lora(policy, run_cfg)  # keep a handle on the adapted model
            if start is None:  # θ_init as the runs hold it: for a 4-bit policy, its NF4 rounding
                start = full_weights(policy, keys)
            history = train_policy(policy, tokenizer, prompts, reward_fn, run_cfg, init_state=sft,
                                   eval_prompts=eval_prompts, gold_fn=gold_fn,
                                   desc=f"{desc} {i + 1}/{cfg.iterations} run {m + 1}/{cfg.m}")
            theta = full_weights(policy, keys)
            del policy
            if on_run is not None:
                on_run(i, m, theta, history)
            thetas.append(theta)
            histories.append(history)
            seeds.append(run_cfg.seed)

        # Task vectors from the weights the runs started from, so that the rounding they all share
        # (a 4-bit base) is not merged as if it had been learned (the same as `RLRuns.start_state`).
        merged = merge_policies(start, thetas, cfg)
        new_init = liti(start, merged, cfg.eta)
        deltas = [task_vector(t, start) for t in thetas]
        out["iterations"].append({
            "seeds": seeds,
            "histories": histories,
            "merged": merged,
            "liti": new_init,
            "task_norms": [global_norm(d) for d in deltas],
            "merged_norm": global_norm(task_vector(merged, start)),
            "angle_deg": angle_deg(deltas[0], deltas[1]) if len(deltas) > 1 else None,
            "eval_merged": eval_fn(merged) if eval_fn else None,
            "eval_liti": eval_fn(new_init) if eval_fn else None,
        })
        theta_init = new_init
    out["final"] = theta_init
    return out


def liti_front(theta_init: StateDict, theta_merged: StateDict, etas: Sequence[float],
               eval_fn: Callable[[StateDict], dict]) -> list[dict]:
    """WARP's Stage 3 front: eval_fn of LITI (1−η)·θ_init + η·θ_merged for each η, each result
    with its "eta" (η = 0: the init, η = 1: the merged model, η > 1 extrapolates)."""
    return [{**eval_fn(liti(theta_init, theta_merged, float(eta))), "eta": float(eta)}
            for eta in etas]
