"""The pool of reward models of a pipeline, each trained once and read back from the cache.

WARM (§4, §5) fine-tunes M reward models from one SFT featurizer and one linear-probed head, ranks
them by OOD accuracy (φ1 the best), and compares their weight average (WARM) with the ensemble of
their predictions (ENS). `RewardModels` holds that pool's cached stages (clean or with corrupted
labels, and independently seeded repeats of it): the probed heads, each member's training and its
scores, WARM of members, best-of-N pool scores. Rewards of any other weights come from its
`scorer` (`lib.rm.scoring`), which reads the members' cached scores back.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, LlamaForSequenceClassification, PreTrainedModel

from lib.cache import Artifact, state_fingerprint
from lib.config import PREPARE_THREADS, RUN_THREADS, ProbeConfig, RMConfig
from lib.merge import weight_average
from lib.models.lora import merged_state_dict
from lib.models.models import from_pretrained, lora_targets, tiny_llama
from lib.pipeline import Pipeline
from lib.rm.ladder import member_config, pool_steps
from lib.rm.pairs import RMPairs
from lib.rm.rm import fit_linear_probe, reward_model_from, sequence_scores, train_reward_model
from lib.rm.scoring import Scorer, correct
from lib.seeds import random_init_seed
from lib.threads import torch_threads
from lib.world import data as D

# Bump when RM training changes in a way the config does not show, so cached RMs are retrained.
# 6: each RM is the EMA of its weights (rm.ema_mu); 5: pairs grouped by prompt, warmup + cosine
# schedule, a held-out curve.
RM_VERSION = 6


def save_rm(model: PreTrainedModel, path: Path) -> None:
    """The RM's full (merged) weights, safetensors."""
    path.mkdir(parents=True, exist_ok=True)
    save_file(merged_state_dict(model), str(path / "rm.safetensors"))


class RewardModels:
    """Cached RM stages of a pipeline: the shared probed head, the pools, their scores; the pairs
    they train and are scored on are `pairs` (`lib.rm.pairs.RMPairs`)."""

    def __init__(self, pipeline: Pipeline, probe: ProbeConfig | None = None):
        self.pl = pipeline
        self.cfg = pipeline.profile.rm
        self.probe_cfg = probe or ProbeConfig(n_pairs=self.cfg.probe_pairs)
        self.pairs = RMPairs(pipeline)
        self._members: dict[str, RMConfig] = {}  # fingerprint of a member's final weights -> its config

    @cached_property
    def scorer(self) -> Scorer:
        """Scores weights on pairs and texts; built on first use, since it needs the SFT model
        (building a pool's configs and keys needs neither)."""
        return Scorer(self.pl.model_path("sft"), self.pl.tokenizer, self.pairs, device=self.pl.profile.device,
                      max_length=self.pl.profile.model.max_length, cached=self._cached_scores)

    # ---- the pools ------------------------------------------------------------------------------
    def steps(self, corruption: float = 0.0, pool: int = 0) -> int:
        """Optimizer steps of every member of a pool (`lib.rm.ladder.pool_steps` of its prompts)."""
        return pool_steps(self.cfg, len(self.pairs.pairset(self.pairs.pool_split(corruption, pool)).groups), corruption)

    def member(self, i: int, corruption: float = 0.0, pool: int = 0) -> RMConfig:
        """The i-th RM of seeded pool `pool`: its rung of the ladder (`lib.rm.ladder.member_config`)
        on the pool's own steps and block of training posts."""
        return member_config(self.cfg, i, steps=self.steps(corruption, pool), corruption=corruption, pool=pool,
                             block=self.pairs.block(corruption, pool))

    def pool(self, corruption: float = 0.0, pool: int = 0) -> list[RMConfig]:
        return [self.member(i, corruption, pool) for i in range(self.cfg.m)]

    def ranking(self, corruption: float = 0.0, pool: int = 0) -> list[int]:
        """Members of a pool ranked by their accuracy on `rm.rank_on` (ID validation by default;
        WARM ranks on OOD), best first: φ1, φ2, … (WARM §5)."""
        es = self.pairs.ranking_set(corruption, pool)
        acc = [correct(self.scorer.scores(self.state(cfg), es), es).mean()
               for cfg in self.pool(corruption, pool)]
        return [int(i) for i in np.argsort(-np.asarray(acc), kind="stable")]

    def ranked(self, corruption: float = 0.0, pool: int = 0) -> list[RMConfig]:
        """The pool best first: φ1, φ2, …"""
        members = self.pool(corruption, pool)
        return [members[i] for i in self.ranking(corruption, pool)]

    # ---- stages ---------------------------------------------------------------------------------
    def head(self, corruption: float = 0.0, seed: int | None = None, block: int = 0) -> dict[str, torch.Tensor]:
        """The linear-probed head on the final SFT featurizer (or, with `seed`, on a random
        featurizer for the no-pre-training control), fit on the training pairs of `block`, cached."""
        key = {"comparisons": self.pl.comparisons_key, "probe": self.probe_cfg,
               "corruption": corruption, "train_posts": self.pairs.train_posts(corruption, block),
               "random_seed": seed, "version": RM_VERSION}

        def build(tmp: Path) -> dict:
            model = self._random_rm(seed) if seed is not None else \
                reward_model_from(self.pl.model_path("sft"), None)
            with torch_threads(PREPARE_THREADS):  # a shared stage (`lib.config.PREPARE_THREADS`)
                pairs = self.pairs.pairset(self.pairs.train_split(corruption, block))
                head = fit_linear_probe(model, pairs, self.probe_cfg)
            save_file(head, str(tmp / "head.safetensors"))
            return {}

        art = self.pl.cache.stage("rm-probe", key, build)
        return load_file(str(art.path / "head.safetensors"))

    def _random_rm(self, seed: int) -> PreTrainedModel:
        lm = tiny_llama(self.pl.profile.model, self.pl.tokenizer, seed=random_init_seed(seed))
        lm.config.num_labels = 1
        torch.manual_seed(random_init_seed(seed))
        return LlamaForSequenceClassification(lm.config)

    def build_model(self, cfg: RMConfig) -> PreTrainedModel:
        """The RM of `cfg` before fine-tuning: featurizer init + shared head (+ LoRA)."""
        if cfg.random_init:
            model = self._random_rm(cfg.seed)
            model.score.load_state_dict(self.head(cfg.corruption, seed=cfg.seed, block=cfg.train_block))
            return model
        head, device = self.head(cfg.corruption, block=cfg.train_block), self.pl.profile.device
        path = self.pl.model_path("sft", cfg.init_checkpoint)
        if cfg.mode == "full":
            return reward_model_from(path, head, cfg.dropout).to(device)

        model = from_pretrained(AutoModelForSequenceClassification, path,
                                dtype=self.pl.profile.model.dtype, load_in_4bit=cfg.mode == "qlora",
                                double_quant=False, device=device, num_labels=1)
        model.score.load_state_dict(head)
        if self.pl.profile.gradient_checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        lora = LoraConfig(task_type="SEQ_CLS", r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                          lora_dropout=cfg.dropout, target_modules=lora_targets(model))
        return get_peft_model(model, lora)

    def curve_steps(self, cfg: RMConfig) -> list[int]:
        """When the held-out curve is measured: every `rm.eval_every` steps, and every
        `rm.eval_every_warmup` steps during the warmup, where fine-tuning first moves the
        featurizer away from the probed head."""
        warmup = int(cfg.warmup * cfg.steps)
        dense = range(self.cfg.eval_every_warmup, warmup + 1, self.cfg.eval_every_warmup)
        return sorted(set(dense) | set(range(self.cfg.eval_every, cfg.steps + 1, self.cfg.eval_every)))

    def rm_key(self, cfg: RMConfig) -> dict:
        return {"comparisons": self.pl.comparisons_key, "probe": self.probe_cfg, "rm": cfg,
                "train_posts": self.pairs.train_posts(cfg.corruption, cfg.train_block),
                "curve": (self.cfg.curve_posts, self.curve_steps(cfg)), "version": RM_VERSION}

    def artifact(self, cfg: RMConfig) -> Artifact:
        """Train (or read back) the RM of `cfg`: final and intermediate weights, loss curve and
        held-out accuracy curve (from the probed head at step 0)."""
        def build(tmp: Path) -> dict:
            model = self.build_model(cfg)
            curve = self.pairs.pairset("curve")
            with torch_threads(RUN_THREADS):  # results independent of where the run is built
                history = train_reward_model(
                    model, self.pairs.pairset(self.pairs.train_split(cfg.corruption, cfg.train_block)), cfg,
                    eval_fn=lambda m: correct(sequence_scores(m, curve)[curve.seq].T, curve.choice),
                    eval_steps=self.curve_steps(cfg),
                    on_checkpoint=lambda s, m: save_rm(m, tmp / f"checkpoint-{s}"),
                    desc=f"RM seed {cfg.seed}{' corrupt' if cfg.corruption else ''}")
            save_rm(model, tmp / "final")
            # per-pair correctness on the curve pairs at every eval step, for paired intervals
            per_pair = torch.from_numpy(np.stack(history.pop("eval_values")).astype(np.uint8))
            save_file({"correct": per_pair}, str(tmp / "curve.safetensors"))
            return {"history": history}

        return self.pl.cache.stage("rm", self.rm_key(cfg), build)

    def state(self, cfg: RMConfig, checkpoint: int | None = None) -> dict[str, torch.Tensor]:
        art = self.artifact(cfg)
        sub = "final" if checkpoint is None else f"checkpoint-{checkpoint}"
        path = art.path / sub / "rm.safetensors"
        if not path.exists():
            have = sorted(p.name for p in art.path.iterdir() if p.is_dir())
            raise ValueError(f"RM {art.key} has no {sub}; it keeps {have}")
        state = load_file(str(path))
        if checkpoint is None:  # `scores` then reads this member's cached scores
            self._members[state_fingerprint(state)] = cfg
        return state

    def scored_splits(self, cfg: RMConfig) -> tuple[str, ...]:
        """The pair sets a pool member is scored on once, right after training: ID validation and
        OOD (its ranking, every accuracy), and for a corrupt RM its own training pairs
        (memorization, notebook 02)."""
        own = (self.pairs.train_split(cfg.corruption, cfg.train_block),) if cfg.corruption else ()
        return ("validation", "test_ood") + own

    def member_scores(self, cfg: RMConfig, split: str) -> np.ndarray:
        """The reward of every sequence of the pair set `split` under the trained RM of `cfg`: a
        stage of its own, scored once (in the RM wave of `lib.fanout`, or on first use) with the
        runs' thread count, so the scores do not depend on where they were computed."""
        key = {"rm": self.rm_key(cfg), "pairset": split}  # the RM's key holds rm.curve_posts

        def build(tmp: Path) -> dict:
            with torch_threads(RUN_THREADS):
                scores = sequence_scores(self.scorer.model_of(self.state(cfg), copy_=False), self.pairs.pairset(split))
            save_file({"scores": torch.from_numpy(scores)}, str(tmp / "scores.safetensors"))
            return {}

        art = self.pl.cache.stage("rm-scores", key, build)
        return load_file(str(art.path / "scores.safetensors"))["scores"].numpy()

    def _cached_scores(self, fingerprint: str, split: str) -> np.ndarray | None:
        """A pool member's `member_scores` on `split` when `fingerprint` is of its final weights
        (read back by `state`), for the scorer."""
        member = self._members.get(fingerprint)
        return None if member is None else self.member_scores(member, split)

    def build(self, cfg: RMConfig) -> None:
        """Train the RM of `cfg` and score it on `scored_splits`: one job of the RM wave."""
        self.artifact(cfg)
        for split in self.scored_splits(cfg):
            self.member_scores(cfg, split)

    def history(self, cfg: RMConfig) -> dict:
        return self.artifact(cfg).meta["history"]

    def curve(self, cfg: RMConfig) -> tuple[np.ndarray, np.ndarray]:
        """The held-out curve of the RM of `cfg`: its eval steps, and per-pair correctness on the
        `curve` pairs at each of them, (steps, pairs) (step 0: the probed head)."""
        art = self.artifact(cfg)
        hits = load_file(str(art.path / "curve.safetensors"))["correct"].numpy().astype(float)
        return np.asarray(art.meta["history"]["eval_step"]), hits

    def probe_state(self, corruption: float = 0.0, pool: int = 0) -> dict[str, torch.Tensor]:
        """Full weights of the final SFT featurizer with the shared probed head: every RM of the
        pool that starts from the final SFT model, at step 0."""
        head = self.head(corruption, block=self.pairs.block(corruption, pool))
        return merged_state_dict(reward_model_from(self.pl.model_path("sft"), head))

    def initial_state(self, cfg: RMConfig) -> dict[str, torch.Tensor]:
        """Full weights of the RM of `cfg` at step 0: its featurizer init and the probed head."""
        return merged_state_dict(self.build_model(cfg))

    def warm(self, members: Sequence[RMConfig]) -> dict[str, torch.Tensor]:
        """WARM of `members`: the uniform average of their (merged) weights."""
        states = [self.state(cfg) for cfg in members]
        return states[0] if len(states) == 1 else weight_average(states)

    def pool_scores(self, members: Sequence[RMConfig], pool: dict) -> np.ndarray:
        """Rewards (prompts, K) of the sample pool `pool` (from `Pipeline.sample_pool`) under WARM
        of `members` (one member: that RM); cached per (pool, members)."""
        key = {"pool": pool["key"], "rms": [self.rm_key(cfg) for cfg in members]}
        prompts = D.prompts_of(pool["posts"])
        k = len(pool["samples"][0])

        def build(tmp: Path) -> dict:
            flat_prompts = [p for p in prompts for _ in range(k)]
            flat = [s for row in pool["samples"] for s in row]
            with torch_threads(RUN_THREADS):  # the same scores from a notebook run anywhere
                scores = self.scorer.score_texts(self.warm(members), flat_prompts, flat)
            save_file({"scores": torch.from_numpy(scores.reshape(len(prompts), k))},
                      str(tmp / "scores.safetensors"))
            return {}

        art = self.pl.cache.stage("pool-scores", key, build)
        return load_file(str(art.path / "scores.safetensors"))["scores"].numpy()
