"""Policies built from saved weights, for full fine-tuning, LoRA and QLoRA alike.

`policy_for` loads a saved causal LM ready for its `RLConfig.mode`; `policy_from_state` does the
same with other full weights in place of the saved ones (WARP's LITI model, a resumed run);
`plain_model_like` is a frozen float32 copy carrying full weights (a KL reference, an anchor).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from lib.config import RLConfig
from lib.models.lora import unwrapped, wrap_lora
from lib.models.models import from_pretrained

StateDict = dict[str, torch.Tensor]


def policy_for(path: Path | str, cfg: RLConfig, device: str = "cpu") -> PreTrainedModel:
    """A causal LM loaded from a saved directory, ready for `cfg.mode`: full weights, or fresh
    LoRA adapters on a float (lora) or NF4 4-bit base (qlora, compute in float32)."""
    model = from_pretrained(AutoModelForCausalLM, path, load_in_4bit=cfg.mode == "qlora",
                            double_quant=False, device=device)
    return model if cfg.mode == "full" else wrap_lora(model, cfg)


def load_full_weights(model: PreTrainedModel, state: StateDict) -> None:
    """Load full weights into a plain causal LM (a tied output embedding may be absent)."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = getattr(model.config, "tie_word_embeddings", False)
    missing = [k for k in missing if not (tied and k == "lm_head.weight")]
    if missing or unexpected:
        raise ValueError(f"state dict does not fit the policy: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")


def policy_from_state(path: Path | str, state: StateDict, cfg: RLConfig,
                      device: str = "cpu") -> PreTrainedModel:
    """`policy_for(path, cfg)` with the full weights `state` in place of those saved at `path`
    (e.g. WARP's LITI model). For lora/qlora, `state` becomes the base under fresh adapters; for
    qlora it is quantized to NF4 like any saved model (so the base holds `state` up to NF4 error)."""
    if cfg.mode == "full":
        policy = policy_for(path, cfg, device)
        load_full_weights(policy, state)
        return policy
    plain = from_pretrained(AutoModelForCausalLM, path)
    load_full_weights(plain, state)
    with tempfile.TemporaryDirectory() as tmp:
        plain.save_pretrained(tmp, safe_serialization=True)
        return policy_for(tmp, cfg, device)


def plain_model_like(policy: PreTrainedModel, state: StateDict) -> PreTrainedModel:
    """A frozen float32 causal LM of the policy's architecture carrying the full weights `state`
    (e.g. `lora_merged_state_dict(policy)`), on the policy's device."""
    config = copy.deepcopy(unwrapped(policy).config)
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attr):
            delattr(config, attr)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    load_full_weights(model, state)
    return model.to(next(policy.parameters()).device).requires_grad_(False).eval()
