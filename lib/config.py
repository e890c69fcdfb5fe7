"""Configuration: every knob in a frozen, validated dataclass; a profile is a `Profile` of them.

The profiles themselves (`smoke`, `default`, `gpu`) and `get_profile(name, overrides)`, the one
entry point with dotted-key overrides (``{"pretrain.steps": 100}``), are in `lib.profiles`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# Torch threads of every RM and RL run, wherever it is built (a fan-out process, a notebook): float
# results on CPU depend on the thread count in their last bits, and RL amplifies them, so a fixed
# count keeps results identical whatever `--jobs` is. Tiny models gain little from a second thread
# (`benchmarks.fanout_speed`); `REPRO_RUN_THREADS` changes it (and with it the last bits of results).
RUN_THREADS = int(os.environ.get("REPRO_RUN_THREADS", "1"))
# Torch threads of the shared stages (pre-training, SFT, the on-policy comparisons, the probed
# heads), wherever they are built (the fan-out's prepare job, notebook 00 with `--jobs 1`, a test):
# fixed for the same reason, so those stages do not depend on `--jobs` or on the machine's cores.
# Two: the stages are sequential, and on 2 cores they then use both.
PREPARE_THREADS = int(os.environ.get("REPRO_PREPARE_THREADS", "2"))

@dataclass(frozen=True)
class WorldConfig:
    """Sizes and label model of the synthetic world (lib.world.world)."""

    seed: int = 0
    n_pretrain_posts: int = 20_000
    # Every web post ends in a (noisy) TL;DR of a random writer: pre-training on them teaches the
    # featurizer to copy from the post, which an RM needs to check a summary's facts against it
    # (at 0.3, RMs charge a made-up fact through its words instead: docs/reward-models.md).
    pretrain_tldr_fraction: float = 1.0
    # Of those TL;DRs, a fraction is followed, after the summary's end-of-text token, by a reader's
    # reply that names what the summary made up, missed or repeated (`lib.world.world.reader_reply`): the
    # web's comment threads, from which a language model learns, at a summary's end, what a reader
    # will say of it (docs/world.md). 0: the web of the committed results, unchanged.
    pretrain_reply_fraction: float = 0.0
    pretrain_reply_generic: float = 0.3  # of the replies: about the story, not the summary
    n_sft_train: int = 8_000
    n_sft_validation: int = 500
    n_pref_train: int = 8_000
    n_pref_validation: int = 1_000
    n_pref_ood: int = 1_000
    label_temperature: float = 1.0  # τ of Bradley–Terry on the gold margin
    label_length_bias: float = 0.15  # γ, annotators' verbosity bias per word (spurious feature)
    source: str = "synthetic"  # or "tldr" (gpu profile: the real TL;DR data, `TLDRConfig`)

    def __post_init__(self):
        for name in ("pretrain_tldr_fraction", "pretrain_reply_fraction", "pretrain_reply_generic"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"world.{name} is a fraction in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class ModelConfig:
    """A tiny Llama built from a config, or a hub model (`hub_name`) for the gpu profile."""

    vocab_size: int = 1024
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 384
    max_length: int = 192
    hub_name: str | None = None
    dtype: str = "float32"


@dataclass(frozen=True)
class LMTrainConfig:
    """Causal-LM training (pre-training and SFT)."""

    steps: int = 400
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 20
    weight_decay: float = 0.01
    seed: int = 0
    log_every: int = 10
    eval_every: int = 50
    checkpoint_steps: tuple[int, ...] = ()  # extra checkpoints kept (Baklava inits)

    def __post_init__(self):
        for name in ("steps", "warmup_steps", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        for name in ("batch_size", "log_every", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


@dataclass(frozen=True)
class SamplingConfig:
    """Batched sampling from a policy."""

    temperature: float = 1.0
    max_new_tokens: int = 40
    batch_size: int = 256
    seed: int = 0


@dataclass(frozen=True)
class WorldCheckConfig:
    """Notebook 00's check that reward over-optimization exists in the world."""

    n_prompts: int = 128
    pool_size: int = 128  # K samples per prompt; best-of-N for N ≤ K
    l2: float = 1e-3


@dataclass(frozen=True)
class BestOfNConfig:
    """Notebook 03's sample pool: K SFT samples per prompt, scored once by every RM (WARM §5.1).
    The default profile's values equal its world check's, so both notebooks share one pool."""

    n_prompts: int = 128
    k: int = 128  # best-of-N for N = 1, 2, 4, …, K


PAIR_SOURCES = ("policy", "dataset")
OOD_POLICIES = ("pretrain", "sft")  # the models `PairsConfig.ood_policy` may name


@dataclass(frozen=True)
class PairsConfig:
    """The preference pairs every reward model learns from and is evaluated on (WARM §4).

    - `source` "policy": `k` samples of the SFT policy per post, every pair of distinct samples
      labelled by the world's annotators, as the papers' comparisons are samples of policies (and
      Gao's and Coste's); the RMs then rank the policy's own samples, which best-of-N and RL pick
      from. "dataset": the data's own comparisons (the synthetic world's writers; real TL;DR).
    - Train and ID-validation pairs are on disjoint posts of the training topics; the OOD pairs
      are samples of *another policy* on held-out topics, as WARM's D_ood are samples of other
      policies: `ood_policy` "pretrain", the pre-trained base model before SFT, at
      `ood_temperature`. On the `default` substrate the SFT policy's own samples on held-out
      topics, at any temperature, are no harder for the bag-of-words proxy than ID pairs (it
      counts words, which do not care about topics); the base model's samples are, at T = 0.7
      with labels about as noisy as ID ones (docs/world.md, the OOD split).
    """

    source: str = "policy"
    k: int = 5  # samples per post; all C(k, 2) pairs of distinct samples are labelled
    # 2,200: enough posts for three disjoint corrupt blocks of `rm.corrupt_posts` = 720, which hold
    # 4,000 swapped pairs (the SFT policy of 1,800 pre-training steps repeats itself more often)
    n_train_posts: int = 2200
    n_validation_posts: int = 1000
    n_ood_posts: int = 1000
    temperature: float = 1.0
    ood_policy: str = "pretrain"  # the policy sampled for the OOD pairs: "pretrain" or "sft"
    ood_temperature: float = 0.7
    seed: int = 0

    def __post_init__(self):
        if self.source not in PAIR_SOURCES:
            raise ValueError(f"unknown pairs.source {self.source!r}; valid: {', '.join(PAIR_SOURCES)}")
        if self.ood_policy not in OOD_POLICIES:
            raise ValueError(f"unknown pairs.ood_policy {self.ood_policy!r}; valid: {', '.join(OOD_POLICIES)}")
        if self.k < 2:
            raise ValueError(f"pairs.k must be ≥ 2 (two samples make a pair), got {self.k}")
        for name in ("n_train_posts", "n_validation_posts", "n_ood_posts"):
            if getattr(self, name) < 1:
                raise ValueError(f"pairs.{name} must be ≥ 1, got {getattr(self, name)}")
        if not (self.temperature > 0 and self.ood_temperature > 0):
            raise ValueError("pairs temperatures must be > 0")


RANKING_SPLITS = ("validation", "test_ood", "ood-half")  # what `RMPoolConfig.rank_on` may name


@dataclass(frozen=True)
class RMPoolConfig:
    """The pool of reward models (WARM §4): M runs from one SFT init and one shared head."""

    n_rms: int = 6  # WARM trains 10; 6 fit the default profile's CPU budget (WARM M=6 is the largest used)
    n_seeds: int = 3  # independently seeded pools behind the headline claims (intervals over seeds)
    epochs: float = 2.0  # passes over the training prompts (each with all its pairs)
    batch_size: int = 16  # prompts per step
    warmup: float = 0.3  # fraction of the steps with a linear warmup of the learning rate
    lrs: tuple[float, ...] = (2e-4, 4e-4)
    dropouts: tuple[float, ...] = (0.0, 0.1)
    baklava: tuple[int | None, ...] = (None, 90, 60)  # SFT checkpoint steps (None: final SFT)
    mode: str = "full"  # full | lora | qlora
    # The pairs the members are ranked on, φ1 the most accurate: "validation" (ID validation), so that
    # the claims scored on OOD pairs do not hand φ1 its selection luck; "test_ood" ranks on the OOD
    # pairs the claims are scored on, as WARM does; "ood-half" ranks on the OOD pairs of every other
    # prompt and scores every OOD claim on the pairs of the rest.
    rank_on: str = "validation"
    lora_r: int = 8  # the LoRA rank and scale of the members, where `mode` is lora or qlora
    lora_alpha: int = 16
    probe_pairs: int = 100_000  # training pairs the shared linear-probed head is fitted on (at most)
    # ID-validation posts scored along training (the no-collapse check), sized for 4,000 pairs, the
    # size of every accuracy comparison: 550 hold 4,055 (the SFT policy repeats itself, so some of a
    # post's pairs are identical and dropped; on the substrate of 900 pre-training steps 490 held
    # 4,000, and on the one before it 470 held 4,192).
    curve_posts: int = 550
    # steps between two points of that curve, and the same during the learning-rate warmup, where
    # fine-tuning first moves away from the probed head: 50 and 25 score a 275-step RM at 8 steps
    # after step 0 (25, 50, 75, 100, 150, 200, 250, 275; the last step is always scored); on a
    # 250-step RM, 25 and 20 scored 13, 25 and 10 scored 16.
    # With 7, the RM wave took 1,731 s on a machine where the rest of the run was ~15% slower than
    # on the one where 13 took 1,841 s.
    eval_every: int = 50
    eval_every_warmup: int = 25
    corruption: float = 0.25
    # Corrupt pool p trains on its own block of `corrupt_posts` training posts, [p·n, (p+1)·n)
    # (None: all pools on all posts), for `corrupt_epochs` passes (None: `epochs`): fewer posts seen
    # more often, so that the RMs can memorize the swapped labels (WARM Fig. 4a). Disjoint blocks
    # give the memorization claims distinct swapped pairs in each pool: 720 posts is the block size
    # whose three hold 4,000 (4,098; 700 hold 3,988). The policies of earlier substrates repeated
    # themselves less: 660 posts held 4,032 after 900 pre-training steps, 620 held 4,096 before.
    # Measured on default (development probes, one RM each; accuracy on the swapped pairs against
    # the swapped labels, end − start): all 2,000 posts × 2 epochs −0.03 (the RM learns the signal,
    # not the noise); 1,000 × 4 +0.003; 500 × 4 +0.054 and +0.047, but a pool mean of only +0.012
    # [−0.010, 0.034] in a whole default run; 500 × 6 +0.095; as EMAs (μ = 0.03), 600 × 6 +0.057 and
    # +0.095 (ID accuracy 0.590 / 0.579, the 500-post pools' level).
    corrupt_posts: int | None = 720
    corrupt_epochs: float | None = 6.0
    # Every clean pool trains on the first `clean_posts` training posts (None: all of them), for
    # `epochs` passes: the members share their data, as WARM's do, and fewer posts seen more often is
    # WARM's regime (its RMs see their pairs many times), where a random init cannot learn from the
    # data alone what a useful pre-training brings (docs/substrate.md).
    clean_posts: int | None = None
    # Each RM is the EMA of its weights along fine-tuning, θ_ema ← (1−μ)·θ_ema + μ·θ from the probed
    # init (1: no EMA; full fine-tuning only). Measured on default (development probes on the
    # trajectories of the previous pools, no EMA): the 3 RMs whose held-out accuracy dipped most
    # below the probe's, −3.4 / −3.1 / −3.0 points, dip −2.0 / −1.0 / −0.9 as an EMA at μ = 0.1 and
    # −1.0 / −0.9 / −0.9 at μ = 0.03 (μ = 0.02: no better); over 10 clean and 3 corrupt RMs at
    # μ = 0.03 the worst dip is −1.0, and the final accuracy moves by less than 0.6 point. The price:
    # the EMA memorizes less of the corrupted labels (two corrupt RMs: +0.052 / +0.044 → +0.034 /
    # +0.025 at μ = 0.03, +0.026 / +0.017 at μ = 0.02).
    ema_mu: float = 0.03

    def __post_init__(self):
        if self.mode not in ("full", "lora", "qlora"):
            raise ValueError(f"unknown rm.mode {self.mode!r}; valid: full, lora, qlora")
        if self.rank_on not in RANKING_SPLITS:
            raise ValueError(f"unknown rm.rank_on {self.rank_on!r}; valid: {', '.join(RANKING_SPLITS)}")
        if self.lora_r < 1 or self.lora_alpha <= 0:
            raise ValueError(f"rm.lora_r must be ≥ 1 and rm.lora_alpha > 0, got {self.lora_r} and {self.lora_alpha}")
        if self.corrupt_posts is not None and self.corrupt_posts < 1:
            raise ValueError(f"rm.corrupt_posts must be ≥ 1 or None, got {self.corrupt_posts}")
        if self.clean_posts is not None and self.clean_posts < 1:
            raise ValueError(f"rm.clean_posts must be ≥ 1 or None, got {self.clean_posts}")
        if self.corrupt_epochs is not None and not self.corrupt_epochs > 0:
            raise ValueError(f"rm.corrupt_epochs must be positive or None, got {self.corrupt_epochs}")
        if not 0.0 < self.ema_mu <= 1.0:
            raise ValueError(f"rm.ema_mu must be in (0, 1] (1: no EMA), got {self.ema_mu}")
        if self.n_rms < 2 or self.n_seeds < 1:
            raise ValueError(f"rm.n_rms must be ≥ 2 and rm.n_seeds ≥ 1, got {self.n_rms}, {self.n_seeds}")
        if not self.epochs > 0 or self.batch_size < 1:
            raise ValueError(f"rm.epochs and rm.batch_size must be positive, got {self.epochs}, "
                             f"{self.batch_size}")
        if not 0.0 <= self.corruption < 0.5:
            raise ValueError(f"rm.corruption must be in [0, 0.5), got {self.corruption}")


@dataclass(frozen=True)
class TLDRConfig:
    """The real TL;DR data (`world.source = "tldr"`): local copies, or None to load from the hub."""

    sft_path: str | None = None  # a directory with train.jsonl and validation.jsonl
    comparisons_path: str | None = None  # the comparisons' JSON files (original release format)


@dataclass(frozen=True)
class GoldConfig:
    """Where the gold reward comes from.

    The synthetic world has an exact one (`lib.world.world.gold_reward`), used when `hub_name` is None.
    On the real TL;DR data there is none, so, as in both papers, the gold reward is a *control* RM:
    larger than the proxy RMs and trained separately (`lib.rm.control`), from its own base model
    `hub_name` (a hub name or a local directory), on all training comparisons with clean labels.
    """

    hub_name: str | None = None
    mode: str = "qlora"  # full | lora | qlora
    steps: int = 2_000
    batch_size: int = 8  # prompts per step, each with all its comparisons
    lr: float = 1e-4
    lora_r: int = 32
    lora_alpha: int = 64
    dtype: str = "float32"  # compute dtype (gpu profile: bfloat16)
    seed: int = 0


@dataclass(frozen=True)
class RLConfig:
    """One RL fine-tuning run: every knob of the loop."""

    steps: int = 100
    prompts_per_step: int = 16
    k: int = 4  # samples per prompt, for the leave-one-out baseline
    lr: float = 1e-4  # Adam
    beta: float = 0.05  # KL coefficient
    kl_estimator: str = "k1"  # k1 | k3
    temperature: float = 0.9
    max_new_tokens: int = 32
    anchor: str = "init"  # init: the frozen initial policy | ema: an EMA of the policy (WARP)
    ema_mu: float = 0.01  # θ_ema ← (1−μ)·θ_ema + μ·θ
    mode: str = "full"  # full | lora | qlora
    lora_r: int = 8
    lora_alpha: int = 16
    eval_every: int = 10
    n_eval_samples: int = 1  # samples per eval prompt
    grad_clip: float = 1.0  # max gradient norm (0: no clipping)
    seed: int = 0

    def __post_init__(self):
        choices = {"kl_estimator": ("k1", "k3"), "anchor": ("init", "ema"),
                   "mode": ("full", "lora", "qlora")}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid: {', '.join(valid)}")
        if self.k < 2:
            raise ValueError(f"k must be ≥ 2 for the leave-one-out baseline, got {self.k}")
        positive = {"prompts_per_step": self.prompts_per_step, "lr": self.lr,
                    "temperature": self.temperature, "max_new_tokens": self.max_new_tokens,
                    "lora_r": self.lora_r, "lora_alpha": self.lora_alpha,
                    "eval_every": self.eval_every, "n_eval_samples": self.n_eval_samples}
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        for name in ("steps", "beta", "grad_clip"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if not 0.0 < self.ema_mu <= 1.0:
            raise ValueError(f"ema_mu must be in (0, 1], got {self.ema_mu}")


MERGES = ("slerp", "lerp")
SLERP_ANGLES = ("tensor", "layer", "global")  # where SLERP takes its angles (WARPConfig.angles)
SEED_STRIDE = 1000  # WARP: run m of iteration i trains with seed rl.seed + SEED_STRIDE·i + m


def _warp_rl() -> RLConfig:
    return RLConfig(anchor="ema", ema_mu=0.01, beta=0.1)


@dataclass(frozen=True)
class WARPConfig:
    """WARP's knobs (paper values: M = 2 or more, μ = 0.01, β = 0.1, η = 0.3).

    - `iterations`: I, the number of merge-then-LITI rounds.
    - `m`: M, the RL runs per iteration (M = 1: no merge, iterated EMA-anchored RL with LITI).
    - `rl`: the configuration of every run; its `seed` is the base seed (see `run_seed`). The
      anchor "init" (the iteration's starting policy) is allowed for ablations.
    - `eta`: LITI's η (η > 1 extrapolates).
    - `lam`: SLERP's λ for M = 2; for M > 2 the merge is the uniform recursive rule and `lam` is
      not used.
    - `merge`: "slerp" (task vectors on the sphere) or "lerp" (uniform weight average).
    - `angles`: where SLERP measures the angle Ω between task vectors: "tensor" (each parameter
      tensor, the default), "layer" (all tensors of one transformer layer together, as the paper:
      "SLERP is applied layer by layer, each having a different angle", §3.2), or "global" (the
      whole flattened task vector).
    - `etas`, `lambdas`: the LITI and interpolation sweeps notebook 05 draws.
    """

    iterations: int = 2
    m: int = 2
    rl: RLConfig = field(default_factory=_warp_rl)
    eta: float = 0.3
    lam: float = 0.5
    etas: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.8, 1.0)  # LITI sweep (WARP Fig. 4)
    lambdas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # SLERP/LERP sweep (WARP Fig. 3c)
    merge: str = "slerp"
    angles: str = "tensor"

    def __post_init__(self):
        if not isinstance(self.rl, RLConfig):
            raise ValueError(f"rl must be an RLConfig, got {type(self.rl).__name__}")
        if self.merge not in MERGES:
            raise ValueError(f"unknown merge {self.merge!r}; valid: {', '.join(MERGES)}")
        if self.angles not in SLERP_ANGLES:
            raise ValueError(f"unknown SLERP angles {self.angles!r}; valid: {', '.join(SLERP_ANGLES)}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be ≥ 1, got {self.iterations}")
        if not 1 <= self.m < SEED_STRIDE:
            raise ValueError(f"m must be in [1, {SEED_STRIDE}) (runs get distinct seeds), got {self.m}")
        if not (math.isfinite(self.eta) and self.eta >= 0.0):
            raise ValueError(f"eta must be a finite number ≥ 0, got {self.eta}")
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {self.lam}")



@dataclass(frozen=True)
class RLSetup:
    """RL fine-tuning of the SFT policy against a reward model (WARM §5.2; notebooks 04, 05)."""

    run: RLConfig = field(default_factory=RLConfig)
    n_prompts: int = 2000  # SFT-train posts used as RL prompts
    n_eval_prompts: int = 128  # SFT-validation posts sampled at every eval step
    betas: tuple[float, ...] = (0.01, 0.03, 0.1)  # the KL sweep of Fig. 8c
    # The runs that go past the gold peak (φ1 and WARM M of pool 0, notebook 04's hacking claims):
    # no KL term and a larger step, so that they reach the KL at which a fact-checking RM is hacked
    # within a CPU budget (at `run`'s settings gold still rises after 100 steps on `default`).
    long: RLConfig = field(default_factory=lambda: RLConfig(steps=100, beta=0.0, lr=2e-4))


@dataclass(frozen=True)
class Profile:
    name: str
    world: WorldConfig = field(default_factory=WorldConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: LMTrainConfig = field(default_factory=LMTrainConfig)
    sft: LMTrainConfig = field(default_factory=lambda: LMTrainConfig(steps=150, lr=1e-3))
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    world_check: WorldCheckConfig = field(default_factory=WorldCheckConfig)
    bon: BestOfNConfig = field(default_factory=BestOfNConfig)
    rl: RLSetup = field(default_factory=RLSetup)
    warp: WARPConfig = field(default_factory=WARPConfig)
    pairs: PairsConfig = field(default_factory=PairsConfig)
    rm: RMPoolConfig = field(default_factory=RMPoolConfig)
    gold: GoldConfig = field(default_factory=GoldConfig)
    tldr: TLDRConfig = field(default_factory=TLDRConfig)
    device: str = "cpu"
    # Recompute activations in the backward pass (less memory, same math): not in any cache key.
    gradient_checkpointing: bool = False
    n_eval_posts: int = 64  # posts whose samples notebooks show and score

    def __post_init__(self):
        if self.rm.ema_mu < 1.0 and self.rm.mode != "full":
            raise ValueError(f"rm.ema_mu = {self.rm.ema_mu} (an EMA of each RM's weights) needs rm.mode "
                             f"'full', got {self.rm.mode!r}: the EMA of LoRA weights is not an adapter; "
                             "set rm.ema_mu=1 as well")
        if self.pairs.source == "policy":
            if self.world.source != "synthetic":
                raise ValueError("pairs.source 'policy' labels SFT samples with the synthetic world's "
                                 "annotators; real data use pairs.source 'dataset'")
            for split, n, have in (("train", self.pairs.n_train_posts, self.world.n_pref_train),
                                   ("validation", self.pairs.n_validation_posts,
                                    self.world.n_pref_validation),
                                   ("ood", self.pairs.n_ood_posts, self.world.n_pref_ood)):
                if n > have:
                    key = "n_validation_posts" if split == "validation" else f"n_{split}_posts"
                    raise ValueError(f"pairs.{key} = {n} asks for more posts than the world has "
                                     f"({have}, world.n_pref_{split}); lower it or raise that")
            blocks = self.rm.corrupt_posts * self.rm.n_seeds if self.rm.corrupt_posts is not None else 0
            if blocks > self.pairs.n_train_posts:
                raise ValueError(f"rm.corrupt_posts = {self.rm.corrupt_posts} for each of rm.n_seeds = "
                                 f"{self.rm.n_seeds} corrupt pools (disjoint blocks, {blocks} posts) asks for "
                                 f"more posts than the training pairs have ({self.pairs.n_train_posts}, "
                                 "pairs.n_train_posts)")
            if self.rm.clean_posts is not None and self.rm.clean_posts > self.pairs.n_train_posts:
                raise ValueError(f"rm.clean_posts = {self.rm.clean_posts} asks for more posts than the "
                                 f"training pairs have ({self.pairs.n_train_posts}, pairs.n_train_posts)")


def results_dir(profile: Profile | str) -> Path:
    """Where a profile's figures, tables and claims go.

    `default` writes the committed `results/`; `gpu` writes `results/gpu/`; `smoke` (a plumbing
    check) writes `results/smoke/`, which git ignores. `REPRO_RESULTS_DIR` overrides (the tests
    point it at directories of their own)."""
    name = profile if isinstance(profile, str) else profile.name
    if os.environ.get("REPRO_RESULTS_DIR"):
        path = Path(os.environ["REPRO_RESULTS_DIR"])
    elif name == "default":
        path = ROOT / "results"
    elif name == "gpu":
        path = ROOT / "results" / "gpu"
    else:
        path = ROOT / "results" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(profile: Profile | str) -> Path:
    """The artifact cache of a profile: `.cache/<profile>/` (git-ignored); `REPRO_CACHE_DIR`
    overrides the root."""
    name = profile if isinstance(profile, str) else profile.name
    root = Path(os.environ.get("REPRO_CACHE_DIR", ROOT / ".cache"))
    return root / name
