"""Cached RL runs of a pipeline: the SFT policy fine-tuned against WARM or ENS of reward models,
every eval step's weights kept, a killed run resumed from its last saved step (notebooks 04, 05)."""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel

from lib.config import RUN_THREADS, RLConfig
from lib.models.lora import merged_state_dict
from lib.models.policy import load_full_weights, policy_for, policy_from_state
from lib.models.sampling import sample_batch
from lib.pipeline import Pipeline
from lib.rl.rl import Hooks, RewardFn, kl_per_sequence, response_logprobs, train_policy
from lib.rl.state import StaleRLState, load_rl_state, save_rl_state
from lib.rm.pool import RewardModels
from lib.rm.rm import score_texts
from lib.seeds import step_seed
from lib.threads import torch_threads
from lib.world import data as D

# Bump when training changes in a way the config does not show, so cached runs are retrained.
RL_VERSION = 2  # 2: per-sample KL to init at every eval step (`eval_kl_all`)


class RLRuns:
    """Cached RL fine-tunings of a pipeline's SFT policy against the RMs of a `RewardModels`.

    The reward is WARM of some pool members (their uniform weight average; one member: that RM)
    or ENS of them (the mean of their rewards). Prompts are the first `rl.n_prompts` SFT-train
    posts; every eval step samples the first `rl.n_eval_prompts` SFT-validation posts with one fixed
    seed, so policies and steps are compared on the same prompts. A killed run resumes from its
    last eval step (states under `<cache>/partial/`, safetensors + JSON) and ends bit-identical.
    """

    def __init__(self, pipeline: Pipeline, rms: RewardModels):
        self.pl, self.rms, self.setup = pipeline, rms, pipeline.profile.rl
        sft = pipeline.world.sft
        train = sft["train"].select(range(min(self.setup.n_prompts, len(sft["train"]))))
        val = sft["validation"].select(range(min(self.setup.n_eval_prompts, len(sft["validation"]))))
        self.prompts, self.eval_prompts = D.prompts_of(train), D.prompts_of(val)
        self._post_of = dict(zip(self.prompts + self.eval_prompts, list(train["post"]) + list(val["post"])))

    def gold_fn(self, prompts: list[str], texts: list[str]) -> np.ndarray:
        """The gold reward (the world's exact one, or the control RM): logged, never trained on."""
        return self.pl.gold(prompts, [self._post_of[p] for p in prompts], texts)

    def reward_fn(self, members: Sequence, kind: str = "warm") -> RewardFn:
        """The proxy reward of WARM (`kind="warm"`) or ENS (`"ens"`) of the pool `members`."""
        if kind not in ("warm", "ens"):
            raise ValueError(f"unknown reward kind {kind!r}; valid: warm, ens")
        states = [self.rms.warm(members)] if kind == "warm" else [self.rms.state(c) for c in members]
        models = [self.rms.scorer.model_of(s) for s in states]
        tok, max_length = self.pl.tokenizer, self.pl.profile.model.max_length

        def reward(prompts: list[str], texts: list[str]) -> np.ndarray:
            return np.mean([score_texts(m, tok, prompts, texts, max_length) for m in models], axis=0)
        return reward

    def key(self, run, init_key: Any = None) -> dict:
        """The cache key of `run` (a `lib.plans.Run`), started from the SFT policy or from the
        weights that `init_key` names."""
        return {"sft": self.pl.sft_key,
                "reward": {"kind": run.kind, "rms": [self.rms.rm_key(c) for c in run.members]},
                "rl": run.cfg, "n_prompts": self.setup.n_prompts,
                "n_eval_prompts": self.setup.n_eval_prompts, "version": RL_VERSION,
                **({} if self.pl.gold_key is None else {"gold": self.pl.gold_key}),
                **({} if init_key is None else {"init": init_key})}

    def finished(self, run, init_key: Any = None):
        """The artifact of a run that is already built, else None (nothing is trained)."""
        return self.pl.cache.load("rl", self.key(run, init_key))

    def run(self, run, desc: str = "RL", init: tuple[Any, dict[str, torch.Tensor]] | None = None):
        """Train (or read back) the policy of `run` (a `lib.plans.Run`: RL config and reward, WARM
        or ENS of some RMs): its history and its weights at every eval step
        (`checkpoint-<step>/policy.safetensors`, full weights).

        `init = (init_key, state)` starts from the full weights `state` instead of the SFT policy
        (e.g. WARP's LITI model; for lora/qlora, `state` is the base under fresh adapters, see
        `policy_from_state`); `init_key` names how they were made, for the cache. The logged KL to
        init is always to the SFT policy.
        """
        cfg, members, kind = run.cfg, run.members, run.kind
        key = self.key(run, None if init is None else init[0])
        partial = self.pl.cache.root / "partial" / self.pl.cache.key("rl", key)

        def build(tmp: Path) -> dict:
            device = self.pl.profile.device
            policy = policy_for(self.pl.model_path("sft"), cfg, device=device) if init is None \
                else policy_from_state(self.pl.model_path("sft"), init[1], cfg, device=device)
            resume = None
            if (partial / "state" / "state.json").exists():
                try:
                    resume = load_rl_state(partial / "state")
                    print(f"[rl] {desc}: resuming from its saved step {resume['step']}", flush=True)
                except (StaleRLState, OSError, ValueError, json.JSONDecodeError) as err:
                    print(f"[rl] {desc}: discarding an unusable saved state ({err}); starting over", flush=True)
                    shutil.rmtree(partial, ignore_errors=True)

            def on_eval(step: int, model: PreTrainedModel, record: dict) -> None:
                weights = merged_state_dict(model)
                if getattr(model.config, "tie_word_embeddings", False):
                    weights.pop("lm_head.weight", None)  # tied to the input embeddings
                out = partial / f"checkpoint-{step}"
                out.mkdir(parents=True, exist_ok=True)
                save_file(weights, str(out / "policy.safetensors.tmp"))
                os.replace(out / "policy.safetensors.tmp", out / "policy.safetensors")

            with torch_threads(RUN_THREADS):  # results independent of where the run is built
                hooks = Hooks(eval_prompts=self.eval_prompts, gold_fn=self.gold_fn, on_eval=on_eval, resume=resume,
                              checkpoint_every=cfg.eval_every, desc=desc,
                              on_checkpoint=lambda state: save_rl_state(partial / "state", state))
                history = train_policy(policy, self.pl.tokenizer, self.prompts, self.reward_fn(members, kind), cfg,
                                       reference=None if init is None else self.sft_state(), hooks=hooks,
                                       gradient_checkpointing=self.pl.profile.gradient_checkpointing)
            for ckpt in sorted(partial.glob("checkpoint-*")):
                shutil.move(str(ckpt), str(tmp / ckpt.name))
            shutil.rmtree(partial, ignore_errors=True)
            return {"history": history}

        return self.pl.cache.stage("rl", key, build)

    def sft_state(self) -> dict[str, torch.Tensor]:
        """Full weights of the SFT policy (the tied output embedding left out)."""
        return load_file(str(self.pl.model_path("sft") / "model.safetensors"))

    @torch.no_grad()
    def evaluate(self, state: dict[str, torch.Tensor], members: Sequence, kind: str = "warm",
                 cfg: RLConfig | None = None) -> dict[str, float]:
        """Proxy reward (WARM/ENS of `members`), gold reward and KL to the SFT policy (k1) of the
        policy with full weights `state`, on the eval prompts with the eval seed of the RL runs."""
        cfg = cfg or self.setup.run
        if getattr(self, "_sft_model", None) is None:
            self._sft_model = policy_for(self.pl.model_path("sft"), replace(cfg, mode="full"),
                                         device=self.pl.profile.device).eval()
            self._probe = copy.deepcopy(self._sft_model)
            self._rewards: dict = {}
        load_full_weights(self._probe, state)
        batch = sample_batch(self._probe, self.pl.tokenizer, self.eval_prompts, cfg.n_eval_samples,
                             cfg, step_seed(cfg.seed, -1))
        args = (batch["input_ids"], batch["attention_mask"], batch["response_mask"], cfg.temperature)
        kl = kl_per_sequence(response_logprobs(self._probe, *args), response_logprobs(self._sft_model, *args),
                             batch["response_mask"][:, 1:])
        reward_key = json.dumps([self.rms.rm_key(c) for c in members], default=str) + kind
        if reward_key not in self._rewards:
            self._rewards[reward_key] = self.reward_fn(members, kind)
        proxy = self._rewards[reward_key](batch["prompts"], batch["texts"])
        gold = self.gold_fn(batch["prompts"], batch["texts"])
        shape = (len(self.eval_prompts), cfg.n_eval_samples)
        return {"proxy": float(np.mean(proxy)), "gold": float(np.mean(gold)), "kl": float(kl.mean()),
                "gold_all": gold.reshape(shape), "kl_all": kl.numpy().reshape(shape)}

    @staticmethod
    def history(art) -> dict:
        return json.loads((art.path / "meta.json").read_text())["history"]

    @staticmethod
    def start_state(art) -> dict[str, torch.Tensor]:
        """Full weights the run `art` started from (its step-0 checkpoint): the SFT policy or the
        given init, for QLoRA as quantized to NF4. Task vectors taken from here hold what RL
        learned, and nothing of the quantization error that all runs from one init share."""
        return RLRuns.policy_state(art, 0)

    @staticmethod
    def policy_state(art, step: int | None = None) -> dict[str, torch.Tensor]:
        """Full weights of the policy at eval step `step` (default: the last)."""
        steps = sorted(int(p.name.split("-")[1]) for p in art.path.glob("checkpoint-*"))
        step = steps[-1] if step is None else step
        if step not in steps:
            raise ValueError(f"RL run {art.key} keeps no checkpoint at step {step}; it keeps {steps}")
        return load_file(str(art.path / f"checkpoint-{step}" / "policy.safetensors"))
