"""Profiles: one code path, three sizes (`smoke`, `default`, `gpu`).

Every knob lives in a frozen dataclass; a profile is a `Profile` of them. `get_profile(name,
overrides)` is the one entry point; an unknown profile or key is a `ValueError` that lists the
valid ones. Overrides use dotted keys: ``get_profile("default", {"pretrain.steps": 100})``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class WorldConfig:
    """Sizes and label model of the synthetic world (lib.world)."""

    seed: int = 0
    n_pretrain_posts: int = 20_000
    pretrain_tldr_fraction: float = 0.3  # web text sometimes carries a (noisy) TL;DR
    n_sft_train: int = 8_000
    n_sft_validation: int = 500
    n_pref_train: int = 8_000
    n_pref_validation: int = 1_000
    n_pref_ood: int = 1_000
    label_temperature: float = 1.0  # τ of Bradley–Terry on the gold margin
    label_length_bias: float = 0.15  # γ, annotators' verbosity bias per word (spurious feature)
    corruption: float = 0.25  # fraction of *training* labels flipped in the corrupt setting
    source: str = "synthetic"  # or "tldr" (gpu profile: the real TL;DR data, `TLDRConfig`)


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
    load_in_4bit: bool = False
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

    n_prompts: int = 48
    pool_size: int = 256  # K samples per prompt; best-of-N for N ≤ K
    l2: float = 1e-3


@dataclass(frozen=True)
class BestOfNConfig:
    """Notebook 03's sample pool: K SFT samples per prompt, scored once by every RM (WARM §5.1).
    The default profile's values equal its world check's, so both notebooks share one pool."""

    n_prompts: int = 32
    k: int = 256  # best-of-N for N = 1, 2, 4, …, K


@dataclass(frozen=True)
class RMPoolConfig:
    """The pool of reward models (WARM §4): M runs from one SFT init and one shared head."""

    n_rms: int = 6  # WARM trains 10; 6 fit the default profile's CPU budget (WARM M=6 is the largest used)
    steps: int = 80
    batch_size: int = 16  # pairs per step
    lrs: tuple[float, ...] = (1e-4, 3e-4)
    dropouts: tuple[float, ...] = (0.0, 0.1)
    baklava: tuple[int | None, ...] = (None, 90, 60)  # SFT checkpoint steps (None: final SFT)
    mode: str = "full"  # full | lora | qlora
    probe_pairs: int = 2000
    n_eval: int = 500  # pairs per evaluation subset
    corruption: float = 0.25


@dataclass(frozen=True)
class TLDRConfig:
    """The real TL;DR data (`world.source = "tldr"`): local copies, or None to load from the hub."""

    sft_path: str | None = None  # a directory with train.jsonl and validation.jsonl
    comparisons_path: str | None = None  # the comparisons' JSON files (original release format)


@dataclass(frozen=True)
class GoldConfig:
    """Where the gold reward comes from.

    The synthetic world has an exact one (`lib.world.gold_reward`), used when `hub_name` is None.
    On the real TL;DR data there is none, so, as in both papers, the gold reward is a *control* RM:
    larger than the proxy RMs and trained separately (`lib.gold`), from its own base model
    `hub_name` (a hub name or a local directory), on all training comparisons with clean labels.
    """

    hub_name: str | None = None
    mode: str = "qlora"  # full | lora | qlora
    steps: int = 2_000
    batch_size: int = 32  # pairs per step
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
    n_eval_prompts: int = 64  # SFT-validation posts sampled at every eval step
    betas: tuple[float, ...] = (0.01, 0.03, 0.1)  # the KL sweep of Fig. 8c


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
    rm: RMPoolConfig = field(default_factory=RMPoolConfig)
    gold: GoldConfig = field(default_factory=GoldConfig)
    tldr: TLDRConfig = field(default_factory=TLDRConfig)
    device: str = "cpu"
    # Recompute activations in the backward pass (less memory, same math): not in any cache key.
    gradient_checkpointing: bool = False
    n_eval_posts: int = 64  # posts whose samples notebooks show and score


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        world=WorldConfig(n_pretrain_posts=600, n_sft_train=300, n_sft_validation=40,
                          n_pref_train=400, n_pref_validation=200, n_pref_ood=200),
        model=ModelConfig(vocab_size=600, hidden_size=32, num_layers=2, num_heads=2,
                          intermediate_size=64, max_length=160),
        pretrain=LMTrainConfig(steps=8, batch_size=8, log_every=2, eval_every=4),
        sft=LMTrainConfig(steps=6, batch_size=8, lr=1e-3, log_every=2, eval_every=3,
                          checkpoint_steps=(3,)),
        sampling=SamplingConfig(max_new_tokens=24, batch_size=64),
        world_check=WorldCheckConfig(n_prompts=6, pool_size=16),
        bon=BestOfNConfig(n_prompts=6, k=16),
        rl=RLSetup(run=RLConfig(steps=2, prompts_per_step=4, k=2, max_new_tokens=12, eval_every=2,
                                n_eval_samples=2),
                   n_prompts=40, n_eval_prompts=6, betas=(0.01, 0.1)),
        warp=WARPConfig(rl=RLConfig(steps=2, prompts_per_step=4, k=2, max_new_tokens=12, eval_every=2,
                                    n_eval_samples=2, anchor="ema", beta=0.1),
                        etas=(0.0, 0.5, 1.0), lambdas=(0.0, 0.5, 1.0)),
        rm=RMPoolConfig(n_rms=4, steps=4, batch_size=4, baklava=(None, 3), probe_pairs=100,
                        n_eval=40),
        n_eval_posts=8,
    ),
    "default": Profile(
        name="default",
        pretrain=LMTrainConfig(steps=300, batch_size=32, lr=3e-3),
        sft=LMTrainConfig(steps=120, batch_size=32, lr=1e-3, eval_every=30,
                          checkpoint_steps=(60, 90)),
        sampling=SamplingConfig(max_new_tokens=32, batch_size=512),
        world_check=WorldCheckConfig(n_prompts=32, pool_size=256),
        rl=RLSetup(run=RLConfig(steps=50, prompts_per_step=8, k=4, lr=3e-5, beta=0.05, eval_every=10,
                                n_eval_samples=2),
                   betas=(0.01, 0.05, 0.2)),
        warp=WARPConfig(rl=RLConfig(steps=50, prompts_per_step=8, k=4, lr=3e-5, eval_every=10,
                                    n_eval_samples=2, anchor="ema", ema_mu=0.01, beta=0.1)),
    ),
    "gpu": Profile(
        name="gpu",
        world=WorldConfig(source="tldr"),
        model=ModelConfig(hub_name="EleutherAI/pythia-410m-deduped", load_in_4bit=True,
                          dtype="bfloat16", max_length=640),
        pretrain=LMTrainConfig(steps=0),  # a hub model is already pre-trained
        sft=LMTrainConfig(steps=2_000, batch_size=32, lr=2e-4, checkpoint_steps=(1_000, 1_500)),
        sampling=SamplingConfig(temperature=0.9, max_new_tokens=53, batch_size=64),
        # WARM's pool: 10 RMs (QLoRA), Baklava inits from the SFT checkpoints.
        rm=RMPoolConfig(n_rms=10, steps=2_000, batch_size=32, baklava=(None, 1_500, 1_000),
                        mode="qlora", probe_pairs=4_000, n_eval=2_000),
        world_check=WorldCheckConfig(n_prompts=256, pool_size=256),
        bon=BestOfNConfig(n_prompts=512, k=64),
        # Policies are QLoRA too; the paper's KL strengths (WARM: β = 0.003 clean, WARP: 0.1 with
        # the EMA anchor), 64 samples per step (the paper: 128) and LoRA's larger learning rate.
        rl=RLSetup(run=RLConfig(steps=2_000, prompts_per_step=16, k=4, lr=1e-4, beta=0.003,
                                max_new_tokens=53, mode="qlora", eval_every=100, n_eval_samples=2),
                   n_prompts=20_000, n_eval_prompts=256, betas=(0.001, 0.003, 0.01)),
        warp=WARPConfig(rl=RLConfig(steps=2_000, prompts_per_step=16, k=4, lr=1e-4, beta=0.1,
                                    anchor="ema", ema_mu=0.01, max_new_tokens=53, mode="qlora",
                                    eval_every=100, n_eval_samples=2)),
        # The control RM, 3.5× the policy and proxy RMs, trained separately (WARM §5, WARP §4).
        gold=GoldConfig(hub_name="EleutherAI/pythia-1.4b-deduped", mode="qlora", steps=3_000,
                        dtype="bfloat16"),
        device="cuda",
        gradient_checkpointing=True,
        n_eval_posts=256,
    ),
}


def _valid_keys(obj: Any, prefix: str = "") -> list[str]:
    keys = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += _valid_keys(value, f"{prefix}{f.name}.")
        elif f.name != "name":
            keys.append(prefix + f.name)
    return keys


def get_profile(name: str = "default", overrides: dict[str, Any] | None = None) -> Profile:
    """The profile `name` with dotted-key `overrides` applied; clear errors for bad input."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}")
    profile = PROFILES[name]
    for key, value in (overrides or {}).items():
        valid = _valid_keys(profile)
        if key not in valid:
            raise ValueError(f"unknown config key {key!r} for profile {name!r}; "
                             f"valid keys: {', '.join(valid)}")
        *path, leaf = key.split(".")
        profile = _replace_path(profile, path, leaf, value)
    return profile


def _replace_path(obj: Any, path: list[str], leaf: str, value: Any) -> Any:
    if not path:
        return replace(obj, **{leaf: value})
    head, *rest = path
    return replace(obj, **{head: _replace_path(getattr(obj, head), rest, leaf, value)})


def results_dir(profile: Profile | str) -> Path:
    """Where a profile's figures, tables and claims go.

    `default` writes the committed `results/`; `gpu` writes `results/gpu/`; `smoke` writes to a
    temporary directory so tests never overwrite committed results. `REPRO_RESULTS_DIR` overrides.
    """
    name = profile if isinstance(profile, str) else profile.name
    if os.environ.get("REPRO_RESULTS_DIR"):
        path = Path(os.environ["REPRO_RESULTS_DIR"])
    elif name == "default":
        path = ROOT / "results"
    elif name == "gpu":
        path = ROOT / "results" / "gpu"
    else:
        path = Path(tempfile.gettempdir()) / "warm-warp-results" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(profile: Profile | str) -> Path:
    """The artifact cache of a profile: `.cache/<profile>/` (git-ignored); `REPRO_CACHE_DIR`
    overrides the root."""
    name = profile if isinstance(profile, str) else profile.name
    root = Path(os.environ.get("REPRO_CACHE_DIR", ROOT / ".cache"))
    return root / name
