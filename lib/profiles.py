"""The three profiles (`smoke`, `default`, `gpu`: `default` is the config dataclasses' defaults, the
others list what they change), the named presets (sets of overrides) and the
one entry point to them, `get_profile`, which applies a preset and dotted-key overrides with
clear, one-line errors for bad input."""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import fields, replace
from typing import Any

from lib.config import (
    BestOfNConfig,
    GoldConfig,
    LMTrainConfig,
    ModelConfig,
    PairsConfig,
    Profile,
    RLConfig,
    RLSetup,
    RMPoolConfig,
    SamplingConfig,
    WARPConfig,
    WorldCheckConfig,
    WorldConfig,
)

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
        world_check=WorldCheckConfig(n_prompts=6, k=16),
        bon=BestOfNConfig(n_prompts=6, k=16),
        rl=RLSetup(run=RLConfig(steps=2, prompts_per_step=4, k=2, max_new_tokens=12, eval_every=2, n_eval_samples=2),
                   n_prompts=40, n_eval_prompts=6, betas=(0.01, 0.1)),
        warp=WARPConfig(run=RLConfig(steps=2, prompts_per_step=4, k=2, max_new_tokens=12, eval_every=2,
                                    n_eval_samples=2, anchor="ema", beta=0.1, lr=1e-4),
                        etas=(0.0, 0.5, 1.0), lambdas=(0.0, 0.5, 1.0)),
        pairs=PairsConfig(k=3, n_train_posts=60, n_validation_posts=30, n_ood_posts=30),
        rm=RMPoolConfig(m=4, n_seeds=2, epochs=1.0, batch_size=8, baklava=(None, 3),
                        probe_pairs=100, curve_posts=10, eval_every=4, eval_every_warmup=2,
                        corrupt_posts=30, corrupt_epochs=2.0),
        n_eval_posts=8,
    ),
    "default": Profile(name="default"),  # the dataclasses' defaults (lib.config)
    "gpu": Profile(
        name="gpu",
        world=WorldConfig(source="tldr"),
        model=ModelConfig(hub_name="EleutherAI/pythia-410m-deduped", dtype="bfloat16",
                          max_length=640),
        pretrain=LMTrainConfig(steps=0, eval_every=50),  # a hub model is already pre-trained
        sft=LMTrainConfig(steps=2_000, batch_size=32, lr=2e-4, eval_every=50, checkpoint_steps=(1_000, 1_500)),
        sampling=SamplingConfig(temperature=0.9, max_new_tokens=53, batch_size=64),
        # WARM's pool: 10 RMs (QLoRA), Baklava inits from the SFT checkpoints.
        # The human-labelled TL;DR comparisons (samples of many policies), not SFT samples.
        pairs=PairsConfig(source="dataset"),
        rm=RMPoolConfig(m=10, epochs=1.0, batch_size=16, warmup=0.1, lrs=(1e-5, 4e-5, 1e-4),
                        baklava=(None, 1_500, 1_000), mode="qlora", probe_pairs=4_000, ema_mu=1.0,
                        curve_posts=500, eval_every=200, eval_every_warmup=50,
                        corrupt_posts=None, corrupt_epochs=None),  # WARM: the whole training set
        world_check=WorldCheckConfig(n_prompts=256, k=256),
        bon=BestOfNConfig(n_prompts=512, k=64),
        # Policies are QLoRA too; the paper's KL strengths (WARM: β = 0.003 clean, WARP: 0.1 with
        # the EMA anchor), 64 samples per step (the paper: 128) and LoRA's larger learning rate.
        rl=RLSetup(run=RLConfig(steps=2_000, prompts_per_step=16, k=4, lr=1e-4, beta=0.003, max_new_tokens=53,
                                mode="qlora", eval_every=100, n_eval_samples=2),
                   n_prompts=20_000, n_eval_prompts=256, betas=(0.001, 0.003, 0.01)),
        warp=WARPConfig(run=RLConfig(steps=2_000, prompts_per_step=16, k=4, lr=1e-4, beta=0.1,
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

# Named sets of overrides, applied by `get_profile` where the overrides name one (`"preset": NAME`;
# `run_all.sh --preset NAME`, `benchmarks.substrate_probe --preset NAME`), before any other key.
# "no-replies": the world before the substrate search, a web without readers' replies, where
# WARM's premises fail. The search's chosen candidate (its preset `premises`: readers' replies
# after every TL;DR, each naming the summary's flaws) is now the defaults (docs/substrate.md).
PRESETS: dict[str, dict[str, Any]] = {
    "no-replies": {"world.pretrain_reply_fraction": 0.0, "world.pretrain_reply_generic": 0.3},
}


def apply_preset(overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` with the preset it names (key "preset") expanded in its place: the preset's keys
    first, the other overrides over them. An unknown preset is a `ValueError` naming the valid ones."""
    if "preset" not in overrides:
        return overrides
    name = overrides["preset"]
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return {**PRESETS[name], **{k: v for k, v in overrides.items() if k != "preset"}}


def _valid_keys(obj: Any, prefix: str = "") -> list[str]:
    keys = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += _valid_keys(value, f"{prefix}{f.name}.")
        elif f.name != "name":
            keys.append(prefix + f.name)
    return keys


def parse_set(items: list[str]) -> dict:
    """`--set key=value` pairs as overrides; each value is JSON (a number, a list, a string in
    quotes) or, failing that, a plain string."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes key=value (e.g. --set rm.epochs=3), got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def parse_overrides(overrides: dict[str, Any] | str | None) -> dict[str, Any]:
    """Overrides as given to a notebook: a dict, or its JSON text (papermill, `run_all.sh --set`)."""
    if overrides is None or overrides == "":
        return {}
    if isinstance(overrides, str):
        try:
            overrides = json.loads(overrides)
        except json.JSONDecodeError as err:
            raise ValueError(f"overrides must be a dict or its JSON text, got {overrides!r} ({err})") from None
    if not isinstance(overrides, dict):
        raise ValueError(f"overrides must be a dict of dotted config keys, got {type(overrides).__name__}")
    return overrides


def _expected_type(obj: Any, leaf: str) -> Any:
    return typing.get_type_hints(type(obj))[leaf]


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """`value` as the type `hint` of a config field (a JSON list for a tuple, an int for a float), or
    a `ValueError` naming the key and what it expects."""
    args = typing.get_args(hint)
    if value is None and type(None) in args:
        return None
    kinds = [a for a in args if a is not type(None)] if args and typing.get_origin(hint) in (
        typing.Union, types.UnionType) else [hint]
    for kind in kinds:
        origin = typing.get_origin(kind) or kind
        if origin is tuple and isinstance(value, (list, tuple)):
            item = (typing.get_args(kind) or (Any,))[0]
            return tuple(_coerce(key, v, item) if item is not Any else v for v in value)
        if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if origin in (int, str, bool) and type(value) is origin:
            return value
        if origin is Any:
            return value
    expects = " or ".join(getattr(k, "__name__", str(k)) for k in kinds) + (" or None" if type(None) in args else "")
    raise ValueError(f"config key {key!r} expects {expects}, got {value!r} ({type(value).__name__})")


def get_profile(name: str = "default", overrides: dict[str, Any] | None = None) -> Profile:
    """The profile `name` with dotted-key `overrides` (and the preset they name) applied; clear errors for bad input: an
    unknown key names its nearest valid keys, a value of the wrong type or range names what the
    key expects."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}")
    profile = PROFILES[name]
    valid = _valid_keys(profile)
    overrides = apply_preset(parse_overrides(overrides))
    sections: dict[str, Any] = {}  # the profile's fields as overridden so far
    for key, value in overrides.items():
        if key not in valid:
            near = difflib.get_close_matches(key, valid, n=3, cutoff=0.5) or \
                [k for k in valid if k.startswith(key.split(".")[0] + ".")][:3]
            raise ValueError(f"unknown config key {key!r} for profile {name!r}"
                             + (f"; nearest valid keys: {', '.join(near)}" if near else
                                f"; sections: {', '.join(sorted({k.split('.')[0] for k in valid}))}"))
        head, *path = key.split(".")
        if not path:
            sections[head] = _coerce(key, value, _expected_type(profile, head))
            continue
        *path, leaf = path
        section = sections.get(head, getattr(profile, head))
        holder = section
        for part in path:
            holder = getattr(holder, part)
        value = _coerce(key, value, _expected_type(holder, leaf))
        try:
            sections[head] = _replace_path(section, path, leaf, value)
        except ValueError as err:
            raise ValueError(f"config key {key!r}: {err}") from None
    try:  # checks across sections run once, on the whole set of overrides
        return replace(profile, **sections)
    except ValueError as err:
        raise ValueError(f"config keys {', '.join(map(repr, overrides))}: {err}") from None


def _replace_path(obj: Any, path: list[str], leaf: str, value: Any) -> Any:
    if not path:
        return replace(obj, **{leaf: value})
    head, *rest = path
    return replace(obj, **{head: _replace_path(getattr(obj, head), rest, leaf, value)})


