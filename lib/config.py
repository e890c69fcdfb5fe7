"""Profiles: one code path, three sizes (`smoke`, `default`, `gpu`).

Every knob lives in a frozen dataclass; a profile is a `Profile` of them. `get_profile(name,
overrides)` is the one entry point; an unknown profile or key is a `ValueError` that lists the
valid ones. Overrides use dotted keys: ``get_profile("default", {"pretrain.steps": 100})``.
"""

from __future__ import annotations

import dataclasses
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
    source: str = "synthetic"  # or "tldr" (gpu profile: the real TL;DR data from the hub)


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
class Profile:
    name: str
    world: WorldConfig = field(default_factory=WorldConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: LMTrainConfig = field(default_factory=LMTrainConfig)
    sft: LMTrainConfig = field(default_factory=lambda: LMTrainConfig(steps=150, lr=1e-3))
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    world_check: WorldCheckConfig = field(default_factory=WorldCheckConfig)
    rm: RMPoolConfig = field(default_factory=RMPoolConfig)
    device: str = "cpu"
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
    ),
    "gpu": Profile(
        name="gpu",
        world=WorldConfig(source="tldr"),
        model=ModelConfig(hub_name="EleutherAI/pythia-410m-deduped", load_in_4bit=True,
                          dtype="bfloat16", max_length=640),
        pretrain=LMTrainConfig(steps=0),  # a hub model is already pre-trained
        sft=LMTrainConfig(steps=2_000, batch_size=32, lr=2e-4),
        sampling=SamplingConfig(temperature=0.9, max_new_tokens=53, batch_size=64),
        world_check=WorldCheckConfig(n_prompts=256, pool_size=256),
        device="cuda",
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
