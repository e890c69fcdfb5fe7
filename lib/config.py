"""Configuration: every knob in a frozen, validated dataclass, each field with its one-line docstring;
a profile is a `Profile` of them, and the dataclasses' defaults are the `default` profile.

The profiles themselves (`smoke`, `default`, `gpu`) and `get_profile(name, overrides)`, the one
entry point with dotted-key overrides (``{"pretrain.steps": 100}``), are in `lib.profiles`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from lib.seeds import ITERATION_STRIDE, POOL_STRIDE

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

MODES = ("full", "lora", "qlora")  # how a model is fine-tuned: every weight, a LoRA adapter, LoRA on 4-bit NF4
WORLD_SOURCES = ("synthetic", "tldr")
DTYPES = ("float32", "bfloat16", "float16")
DEVICES = ("cpu", "cuda")


def _check(ok: bool, message: str) -> None:
    """A config's one-line error for a bad value."""
    if not ok:
        raise ValueError(message)


def _at_least(prefix: str, low: float, **values: float) -> None:
    for name, value in values.items():
        _check(value >= low, f"{prefix}.{name} must be ≥ {low}, got {value}")


def _one_of(prefix: str, name: str, value: str, valid: tuple[str, ...]) -> None:
    _check(value in valid, f"unknown {prefix}.{name} {value!r}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class WorldConfig:
    """Sizes and label model of the synthetic world (`lib.world.world`, docs/world.md)."""

    seed: int = 0
    """the world's seed: its posts, writers and annotators' labels"""
    n_pretrain_posts: int = 20_000
    """web posts of the pre-training corpus"""
    pretrain_tldr_fraction: float = 1.0
    """the web posts that end in a writer's noisy TL;DR, from which pre-training learns to copy from the post"""
    pretrain_reply_fraction: float = 1.0
    """of those TL;DRs, the ones followed by a reader's reply naming the summary's flaws
    (`world.reader_reply`); the substrate where WARM's premises hold (docs/substrate.md)"""
    pretrain_reply_generic: float = 0.0
    """of those replies, the ones about the story, not the summary"""
    n_sft_train: int = 8_000
    """posts with a writer's reference summary, for SFT (RL's prompts are drawn from them)"""
    n_sft_validation: int = 500
    """held-out SFT posts on the training topics (RL's evaluation prompts are drawn from them)"""
    n_pref_train: int = 8_000
    """posts of the preference training split, on the training topics"""
    n_pref_validation: int = 1_000
    """posts of the ID preference validation split, on the training topics"""
    n_pref_ood: int = 1_000
    """posts of the OOD preference split, on held-out topics and writers"""
    label_temperature: float = 1.0
    """τ of the annotators' Bradley–Terry on the gold margin"""
    label_length_bias: float = 0.15
    """γ, the annotators' verbosity bias per word (a spurious feature)"""
    source: str = "synthetic"
    """"synthetic", or "tldr" for the real TL;DR data (`TLDRConfig`; the gpu profile)"""

    def __post_init__(self):
        for name in ("pretrain_tldr_fraction", "pretrain_reply_fraction", "pretrain_reply_generic"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"world.{name} is a fraction in [0, 1], got {getattr(self, name)}")
        _one_of("world", "source", self.source, WORLD_SOURCES)
        _at_least("world", 1, n_pretrain_posts=self.n_pretrain_posts, n_sft_train=self.n_sft_train,
                  n_sft_validation=self.n_sft_validation, n_pref_train=self.n_pref_train,
                  n_pref_validation=self.n_pref_validation, n_pref_ood=self.n_pref_ood)
        _check(self.label_temperature > 0, f"world.label_temperature must be > 0, got {self.label_temperature}")


@dataclass(frozen=True)
class ModelConfig:
    """A tiny Llama built from a config, or a hub model (`hub_name`) for the gpu profile."""

    vocab_size: int = 1024
    """the BPE tokenizer's vocabulary, trained on the world's text"""
    hidden_size: int = 128
    """the tiny Llama's width"""
    num_layers: int = 4
    """its transformer layers"""
    num_heads: int = 4
    """its attention heads"""
    intermediate_size: int = 384
    """its MLP width"""
    max_length: int = 192
    """the longest token sequence a model reads (prompt and summary); RM inputs are cut on the left"""
    hub_name: str | None = None
    """a hub name or local directory of a pre-trained model (None: the tiny Llama, pre-trained here)"""
    dtype: str = "float32"
    """the compute dtype"""

    def __post_init__(self):
        _at_least("model", 1, vocab_size=self.vocab_size, hidden_size=self.hidden_size, num_layers=self.num_layers,
                  num_heads=self.num_heads, intermediate_size=self.intermediate_size, max_length=self.max_length)
        _check(self.hidden_size % self.num_heads == 0, f"model.hidden_size ({self.hidden_size}) must be a "
               f"multiple of model.num_heads ({self.num_heads})")
        _one_of("model", "dtype", self.dtype, DTYPES)


@dataclass(frozen=True)
class LMTrainConfig:
    """Causal-LM training: pre-training (these defaults) and SFT (`Profile.sft`)."""

    steps: int = 1800
    """optimizer steps (pre-training: long enough to learn what a post does not say, docs/reward-models.md)"""
    batch_size: int = 32
    """sequences per step"""
    lr: float = 3e-3
    """peak learning rate (AdamW), after the warmup, then cosine decay"""
    warmup_steps: int = 20
    """steps of linear warmup"""
    weight_decay: float = 0.01
    """AdamW's weight decay"""
    seed: int = 0
    """initialization and data order"""
    log_every: int = 10
    """steps between two logged training losses"""
    eval_every: int = 150
    """steps between two validation losses"""
    checkpoint_steps: tuple[int, ...] = ()
    """steps whose weights are kept besides the last (SFT: the Baklava inits of `RMPoolConfig.baklava`)"""

    def __post_init__(self):
        for name in ("steps", "warmup_steps", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        for name in ("batch_size", "log_every", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        _check(self.weight_decay >= 0, f"weight_decay must be ≥ 0, got {self.weight_decay}")
        _check(all(s >= 1 for s in self.checkpoint_steps), f"checkpoint_steps must be ≥ 1, got {self.checkpoint_steps}")


def _sft() -> LMTrainConfig:
    return LMTrainConfig(steps=120, lr=1e-3, eval_every=30, checkpoint_steps=(60, 90))


@dataclass(frozen=True)
class SamplingConfig:
    """Batched sampling from a policy."""

    temperature: float = 1.0
    """the sampling temperature"""
    max_new_tokens: int = 32
    """the longest summary sampled, in tokens (sampling stops at EOS)"""
    batch_size: int = 512
    """sequences sampled together"""
    seed: int = 0
    """the sampling generator's seed"""

    def __post_init__(self):
        _check(self.temperature > 0, f"sampling.temperature must be > 0, got {self.temperature}")
        _at_least("sampling", 1, max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)
        _at_least("sampling", 0, seed=self.seed)


@dataclass(frozen=True)
class WorldCheckConfig:
    """Notebook 00's check that reward over-optimization exists in the world."""

    n_prompts: int = 128
    """SFT-validation prompts of the sample pool"""
    k: int = 128
    """samples per prompt; best-of-N for N ≤ k"""
    l2: float = 1e-3
    """the L2 penalty of the bag-of-words proxy's Bradley–Terry fit"""

    def __post_init__(self):
        _at_least("world_check", 1, n_prompts=self.n_prompts, k=self.k)
        _at_least("world_check", 0, l2=self.l2)


@dataclass(frozen=True)
class BestOfNConfig:
    """Notebook 03's sample pool: k SFT samples per prompt, scored once by every RM (WARM §5.1).
    The default profile's values equal its world check's, so both notebooks share one pool."""

    n_prompts: int = 128
    """SFT-validation prompts of the sample pool"""
    k: int = 128
    """samples per prompt; best-of-N for N = 1, 2, 4, …, k"""

    def __post_init__(self):
        _at_least("bon", 1, n_prompts=self.n_prompts, k=self.k)


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
      `ood_temperature` (docs/world.md, the OOD split, says why).
    """

    source: str = "policy"
    """"policy" (samples of the SFT policy, labelled by the annotators) or "dataset" (the data's own)"""
    k: int = 5
    """samples per post; all C(k, 2) pairs of distinct samples are labelled"""
    n_train_posts: int = 2200
    """training posts: enough for `RMPoolConfig.n_seeds` disjoint corrupt blocks of `corrupt_posts`"""
    n_validation_posts: int = 1000
    """ID-validation posts"""
    n_ood_posts: int = 1000
    """OOD posts, on held-out topics"""
    temperature: float = 1.0
    """the SFT policy's sampling temperature for the train and ID-validation pairs"""
    ood_policy: str = "pretrain"
    """the policy sampled for the OOD pairs: "pretrain" (the base model before SFT) or "sft\""""
    ood_temperature: float = 0.7
    """its sampling temperature"""
    seed: int = 0
    """sampling and labelling"""

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


@dataclass(frozen=True)
class RMConfig:
    """One reward-model fine-tuning run; each field is a diversity knob or a budget. A pool's
    members are made from `RMPoolConfig` (`lib.plans`)."""

    seed: int = 0
    """data order and dropout noise"""
    lr: float = 1e-4
    """peak learning rate (AdamW), after `warmup`, then cosine decay to 0"""
    dropout: float = 0.0
    """attention dropout (full) or LoRA dropout"""
    init_checkpoint: int | None = None
    """Baklava: the SFT checkpoint step the featurizer starts from (None: the final SFT)"""
    random_init: bool = False
    """the control: no shared pre-training at all"""
    mode: str = "full"
    """full | lora | qlora (`MODES`)"""
    steps: int = 80
    """optimizer steps"""
    batch_size: int = 16
    """prompts per step, each with all its pairs"""
    warmup: float = 0.1
    """fraction of the steps with a linear warmup"""
    corruption: float = 0.0
    """fraction of training labels swapped (WARM §4.2: 0.25)"""
    train_block: int = 0
    """which disjoint block of `RMPoolConfig.corrupt_posts` training posts a corrupt RM reads"""
    checkpoint_steps: tuple[int, ...] = ()
    """steps whose weights are kept besides the last"""
    lora_r: int = 8
    """the LoRA rank (lora, qlora)"""
    lora_alpha: int = 16
    """the LoRA scale (lora, qlora)"""
    ema_mu: float = 1.0
    """μ of the EMA of the weights, θ_ema ← (1−μ)·θ_ema + μ·θ from the probed init, which the RM is (1: none)"""

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown RM mode {self.mode!r}; valid: {', '.join(MODES)}")
        if self.steps < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"RM steps, batch_size and lr must be positive, got {self.steps}, "
                             f"{self.batch_size}, {self.lr}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"RM warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        if not 0.0 < self.ema_mu <= 1.0:
            raise ValueError(f"RM ema_mu must be in (0, 1], got {self.ema_mu}")
        if self.train_block < 0:
            raise ValueError(f"RM train_block must be ≥ 0, got {self.train_block}")
        if self.ema_mu < 1.0 and self.mode != "full":
            raise ValueError(f"an RM EMA (ema_mu {self.ema_mu} < 1) needs mode 'full', got {self.mode!r}: "
                             "the EMA of LoRA weights is a full model, not an adapter")
        _check(0.0 <= self.dropout < 1.0, f"RM dropout must be in [0, 1), got {self.dropout}")
        _check(0.0 <= self.corruption < 0.5, f"RM corruption must be in [0, 0.5), got {self.corruption}")
        _check(self.lora_r >= 1 and self.lora_alpha > 0, f"RM lora_r must be ≥ 1 and lora_alpha > 0, got "
               f"{self.lora_r} and {self.lora_alpha}")


@dataclass(frozen=True)
class ProbeConfig:
    """The shared head: logistic regression on frozen SFT features of the training pairs."""

    n_pairs: int = 4000
    """training pairs the head is fitted on (at most)"""
    l2: float = 1e-3
    """the L2 penalty of the fit"""

    def __post_init__(self):
        _at_least("probe", 1, n_pairs=self.n_pairs)
        _at_least("probe", 0, l2=self.l2)


RANKING_SPLITS = ("validation", "test_ood", "ood-half")  # what `RMPoolConfig.rank_on` may name


@dataclass(frozen=True)
class RMPoolConfig:
    """The pools of reward models (WARM §4): m runs from one SFT init and one shared head.

    Members 0–3 are WARM Fig. 3's ladder of diversity (0 vs 1: data order; 0 vs 2: also the
    learning rate, `lrs[0]` vs `lrs[-1]`; 0 vs 3: also `dropouts[-1]` and `baklava[-1]`); later
    members cycle through the three lists (`RewardModels.member`). Why each value is what it is,
    measured: docs/reward-models.md."""

    m: int = 6
    """members per pool (WARM trains 10; 6 fit the default profile's CPU budget, and WARM's largest M is 6)"""
    n_seeds: int = 3
    """independently seeded pools behind the headline claims (intervals over seeds)"""
    epochs: float = 2.0
    """passes over the training prompts, each with all its pairs"""
    batch_size: int = 16
    """prompts per step"""
    warmup: float = 0.3
    """fraction of the steps with a linear warmup of the learning rate"""
    lrs: tuple[float, ...] = (2e-4, 4e-4)
    """the members' learning rates (the ladder above)"""
    dropouts: tuple[float, ...] = (0.0, 0.1)
    """the members' dropouts (the ladder above)"""
    baklava: tuple[int | None, ...] = (None, 90, 60)
    """the members' Baklava inits, SFT checkpoint steps (None: the final SFT; the ladder above)"""
    mode: str = "full"
    """full | lora | qlora (`MODES`)"""
    rank_on: str = "validation"
    """the pairs the members are ranked on, φ1 first: "validation" (ID), "test_ood" (as WARM) or "ood-half\""""
    lora_r: int = 8
    """the members' LoRA rank, where `mode` is lora or qlora"""
    lora_alpha: int = 16
    """their LoRA scale"""
    probe_pairs: int = 100_000
    """training pairs the shared linear-probed head is fitted on (at most)"""
    curve_posts: int = 550
    """ID-validation posts scored along training (the no-collapse check), sized for 4,000 pairs"""
    eval_every: int = 100
    """steps between two points of that curve (after the warmup)"""
    eval_every_warmup: int = 25
    """the same during the learning-rate warmup, where fine-tuning first moves away from the probed head"""
    corruption: float = 0.25
    """fraction of a corrupt pool's training labels swapped (WARM §4.2)"""
    corrupt_posts: int | None = 720
    """corrupt pool p trains on its own block of posts [p·n, (p+1)·n) (None: all pools on all posts)"""
    corrupt_epochs: float | None = 6.0
    """passes of a corrupt pool over its block (None: `epochs`): seen often, swapped labels are memorized"""
    clean_posts: int | None = None
    """every clean pool trains on the first `clean_posts` training posts (None: all of them)"""
    ema_mu: float = 0.03
    """μ of each RM's EMA of its weights (1: no EMA; full fine-tuning only)"""

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown rm.mode {self.mode!r}; valid: {', '.join(MODES)}")
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
        if self.m < 2 or self.n_seeds < 1:
            raise ValueError(f"rm.m must be ≥ 2 and rm.n_seeds ≥ 1, got {self.m}, {self.n_seeds}")
        _check(self.m < POOL_STRIDE, f"rm.m must be < {POOL_STRIDE} (the members of the pools get distinct "
               f"seeds, lib.seeds), got {self.m}")
        if not self.epochs > 0 or self.batch_size < 1:
            raise ValueError(f"rm.epochs and rm.batch_size must be positive, got {self.epochs}, "
                             f"{self.batch_size}")
        if not 0.0 <= self.corruption < 0.5:
            raise ValueError(f"rm.corruption must be in [0, 0.5), got {self.corruption}")
        _check(0.0 <= self.warmup < 1.0, f"rm.warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        _check(bool(self.lrs) and all(lr > 0 for lr in self.lrs), f"rm.lrs must be positive, got {self.lrs}")
        _check(bool(self.dropouts) and all(0.0 <= d < 1.0 for d in self.dropouts),
               f"rm.dropouts must lie in [0, 1), got {self.dropouts}")
        _check(bool(self.baklava) and all(b is None or b >= 1 for b in self.baklava),
               f"rm.baklava holds SFT checkpoint steps ≥ 1 or None, got {self.baklava}")
        _at_least("rm", 1, probe_pairs=self.probe_pairs, curve_posts=self.curve_posts, eval_every=self.eval_every,
                  eval_every_warmup=self.eval_every_warmup)


@dataclass(frozen=True)
class TLDRConfig:
    """The real TL;DR data (`world.source = "tldr"`): local copies, or None to load from the hub."""

    sft_path: str | None = None
    """a directory with train.jsonl and validation.jsonl"""
    comparisons_path: str | None = None
    """the comparisons' JSON files (original release format)"""

    def __post_init__(self):
        for name in ("sft_path", "comparisons_path"):
            _check(getattr(self, name) != "", f"tldr.{name} is a path or None, not an empty string")


@dataclass(frozen=True)
class GoldConfig:
    """Where the gold reward comes from.

    The synthetic world has an exact one (`lib.world.world.gold_reward`), used when `hub_name` is None.
    On the real TL;DR data there is none, so, as in both papers, the gold reward is a *control* RM:
    larger than the proxy RMs and trained separately (`lib.rm.control`), from its own base model
    `hub_name` (a hub name or a local directory), on all training comparisons with clean labels.
    """

    hub_name: str | None = None
    """the control RM's base model (None: the synthetic world's exact gold reward)"""
    mode: str = "qlora"
    """full | lora | qlora (`MODES`)"""
    steps: int = 2_000
    """optimizer steps"""
    batch_size: int = 8
    """prompts per step, each with all its comparisons"""
    lr: float = 1e-4
    """peak learning rate"""
    lora_r: int = 32
    """the LoRA rank (lora, qlora)"""
    lora_alpha: int = 64
    """the LoRA scale"""
    dtype: str = "float32"
    """the compute dtype (gpu profile: bfloat16)"""
    seed: int = 0
    """data order"""

    def __post_init__(self):
        _one_of("gold", "mode", self.mode, MODES)
        _one_of("gold", "dtype", self.dtype, DTYPES)
        _at_least("gold", 1, steps=self.steps, batch_size=self.batch_size, lora_r=self.lora_r)
        _check(self.lr > 0 and self.lora_alpha > 0, f"gold.lr and gold.lora_alpha must be > 0, got {self.lr}, "
               f"{self.lora_alpha}")


@dataclass(frozen=True)
class RLConfig:
    """One RL fine-tuning run: every knob of the loop."""

    steps: int = 50
    """optimizer steps"""
    prompts_per_step: int = 8
    """prompts per step"""
    k: int = 4
    """samples per prompt, for the leave-one-out baseline"""
    lr: float = 3e-4
    """Adam's learning rate: at 3e-4 and WARM's β, RL against φ1 is hacked within 50 steps (docs/rl-regime.md)"""
    beta: float = 0.003
    """the KL coefficient (WARM's α for clean labels)"""
    kl_estimator: str = "k1"
    """k1 | k3"""
    temperature: float = 0.9
    """the sampling temperature"""
    max_new_tokens: int = 32
    """the longest sampled summary, in tokens"""
    anchor: str = "init"
    """the KL anchor: "init" (the frozen initial policy) or "ema" (an EMA of the policy, WARP)"""
    ema_mu: float = 0.01
    """μ of the EMA anchor, θ_ema ← (1−μ)·θ_ema + μ·θ"""
    mode: str = "full"
    """full | lora | qlora (`MODES`)"""
    lora_r: int = 8
    """the LoRA rank (lora, qlora)"""
    lora_alpha: int = 16
    """the LoRA scale"""
    eval_every: int = 10
    """steps between two evaluations (gold, proxy and KL on the evaluation prompts)"""
    n_eval_samples: int = 2
    """samples per evaluation prompt"""
    grad_clip: float = 1.0
    """the largest gradient norm (0: no clipping)"""
    seed: int = 0
    """sampling and initialization"""

    def __post_init__(self):
        choices = {"kl_estimator": ("k1", "k3"), "anchor": ("init", "ema"), "mode": MODES}
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


def _warp_run() -> RLConfig:
    return RLConfig(anchor="ema", ema_mu=0.01, beta=0.1, lr=1e-4)


@dataclass(frozen=True)
class WARPConfig:
    """WARP's knobs (paper values: M = 2 or more, μ = 0.01, β = 0.1, η = 0.3)."""

    iterations: int = 2
    """I, the merge-then-LITI rounds"""
    m: int = 2
    """M, the RL runs per iteration (M = 1: no merge, iterated EMA-anchored RL with LITI)"""
    run: RLConfig = field(default_factory=_warp_run)
    """every run's configuration; its `seed` is the base seed (`lib.rl.warp.run_seed`); anchor "init" is an ablation"""
    eta: float = 0.3
    """LITI's η (η > 1 extrapolates)"""
    lam: float = 0.5
    """SLERP's λ for M = 2; for M > 2 the merge is the uniform recursive rule"""
    etas: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.8, 1.0)
    """the LITI sweep notebook 05 draws (WARP Fig. 4)"""
    lambdas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    """the SLERP / LERP sweep notebook 05 draws (WARP Fig. 3c)"""
    merge: str = "slerp"
    """"slerp" (task vectors on the sphere) or "lerp" (the uniform weight average)"""
    angles: str = "tensor"
    """where SLERP measures its angle: per "tensor", per "layer" (as WARP §3.2), or "global\""""

    def __post_init__(self):
        if not isinstance(self.run, RLConfig):
            raise ValueError(f"run must be an RLConfig, got {type(self.run).__name__}")
        if self.merge not in MERGES:
            raise ValueError(f"unknown merge {self.merge!r}; valid: {', '.join(MERGES)}")
        if self.angles not in SLERP_ANGLES:
            raise ValueError(f"unknown SLERP angles {self.angles!r}; valid: {', '.join(SLERP_ANGLES)}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be ≥ 1, got {self.iterations}")
        if not 1 <= self.m < ITERATION_STRIDE:
            raise ValueError(f"m must be in [1, {ITERATION_STRIDE}) (runs get distinct seeds), got {self.m}")
        if not (math.isfinite(self.eta) and self.eta >= 0.0):
            raise ValueError(f"eta must be a finite number ≥ 0, got {self.eta}")
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {self.lam}")
        _check(all(0.0 <= x <= 1.0 for x in self.lambdas), f"warp.lambdas must lie in [0, 1], got {self.lambdas}")
        _check(all(math.isfinite(x) and x >= 0.0 for x in self.etas), f"warp.etas must be ≥ 0, got {self.etas}")


@dataclass(frozen=True)
class RLSetup:
    """RL fine-tuning of the SFT policy against a reward model (WARM §5.2; notebooks 04, 05)."""

    run: RLConfig = field(default_factory=RLConfig)
    """every run's configuration"""
    n_prompts: int = 2000
    """SFT-train posts used as RL prompts"""
    n_eval_prompts: int = 128
    """SFT-validation posts sampled at every evaluation step"""
    betas: tuple[float, ...] = (0.003, 0.01, 0.05)
    """the KL sweep of WARM Fig. 8c (a β equal to `run.beta` is the clean run itself, read from the cache)"""

    def __post_init__(self):
        _at_least("rl", 1, n_prompts=self.n_prompts, n_eval_prompts=self.n_eval_prompts)
        _check(bool(self.betas) and all(b >= 0 for b in self.betas), f"rl.betas must be ≥ 0, got {self.betas}")
        _check(isinstance(self.run, RLConfig), "rl.run must be an RLConfig")


@dataclass(frozen=True)
class Profile:
    """Every knob of a run; the defaults are the `default` profile (`lib.profiles`)."""

    name: str
    """the profile's name: its cache folder and results folder"""
    world: WorldConfig = field(default_factory=WorldConfig)
    """the synthetic world"""
    model: ModelConfig = field(default_factory=ModelConfig)
    """the policy's and the proxy RMs' architecture"""
    pretrain: LMTrainConfig = field(default_factory=LMTrainConfig)
    """pre-training on the web posts"""
    sft: LMTrainConfig = field(default_factory=_sft)
    """SFT on the reference summaries"""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """sampling of the SFT policy (pools, pairs, shown samples)"""
    world_check: WorldCheckConfig = field(default_factory=WorldCheckConfig)
    """notebook 00's over-optimization check"""
    bon: BestOfNConfig = field(default_factory=BestOfNConfig)
    """notebook 03's best-of-N pool"""
    rl: RLSetup = field(default_factory=RLSetup)
    """RL against the RMs (notebooks 04, 05)"""
    warp: WARPConfig = field(default_factory=WARPConfig)
    """WARP's stages (notebook 05)"""
    pairs: PairsConfig = field(default_factory=PairsConfig)
    """the preference pairs"""
    rm: RMPoolConfig = field(default_factory=RMPoolConfig)
    """the RM pools"""
    gold: GoldConfig = field(default_factory=GoldConfig)
    """the gold reward"""
    tldr: TLDRConfig = field(default_factory=TLDRConfig)
    """the real TL;DR data, where `world.source` is "tldr\""""
    device: str = "cpu"
    """"cpu" or "cuda\""""
    gradient_checkpointing: bool = False
    """recompute activations in the backward pass (less memory, same math): in no cache key"""
    n_eval_posts: int = 64
    """posts whose samples notebooks show and score"""

    def __post_init__(self):
        _check(bool(self.name), "a profile needs a name")
        _one_of("profile", "device", self.device, DEVICES)
        _at_least("profile", 1, n_eval_posts=self.n_eval_posts)
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
