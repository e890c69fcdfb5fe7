"""LoRA and full weights: peft adapters on, merged weights off, policies built from saved weights.

Weight averaging (WARM), task vectors and SLERP (WARP) act on *full* weights. For a LoRA model the
full weight of an adapted layer is W + B·A·scale, computed here explicitly: an average of A and B
separately would add cross terms, and `merge_and_unload` would re-quantize an NF4 base. For QLoRA
the base W is the dequantized NF4 weight, so merges use the dequantized base.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, PreTrainedModel

from lib.config import RLConfig
from lib.models.models import from_pretrained, is_4bit, lora_targets

StateDict = dict[str, torch.Tensor]


def is_peft(model: torch.nn.Module) -> bool:
    return hasattr(model, "get_base_model") and hasattr(model, "peft_config")


def unwrapped(model: PreTrainedModel) -> PreTrainedModel:
    """The transformers model inside a peft wrapper (the model itself if plain)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def lora_layers(model: PreTrainedModel) -> dict[str, torch.nn.Module]:
    """The LoRA-adapted linear layers of a peft model, by name inside the base model."""
    return {name: m for name, m in model.get_base_model().named_modules()
            if hasattr(m, "base_layer") and hasattr(m, "lora_A")}


@torch.no_grad()
def merged_lora_weight(module: torch.nn.Module) -> torch.Tensor:
    """W + B·A·scale of one LoRA-adapted linear layer, float32 (an NF4 base is dequantized)."""
    base = module.base_layer
    if type(base).__name__ == "Linear4bit":
        import bitsandbytes.functional as bnbf  # optional and heavy: only for 4-bit bases

        weight = bnbf.dequantize_4bit(base.weight.data, base.weight.quant_state).float()
    else:
        weight = base.weight.detach().float()
    for adapter in module.active_adapters:
        a, b = module.lora_A[adapter].weight.float(), module.lora_B[adapter].weight.float()
        weight = weight + (b @ a) * module.scaling[adapter]
    return weight


def merged_lora_weights(model: PreTrainedModel) -> StateDict:
    """W + B·A·scale (float32) of each adapted layer of a peft model: the only full weights that
    LoRA training changes (a subset of `lora_merged_state_dict`)."""
    return {f"{name}.weight": merged_lora_weight(m) for name, m in lora_layers(model).items()}


def _detached(value: torch.Tensor) -> torch.Tensor:
    return (value.detach().float() if value.is_floating_point() else value.detach()).contiguous()


def lora_merged_state_dict(model: PreTrainedModel) -> StateDict:
    """Full weights of a peft LoRA model: W + B·A·scale per adapted layer, plus its own heads."""
    inner = model.get_base_model()
    out = {key.replace(".modules_to_save.default.", "."): _detached(value)
           for key, value in inner.state_dict().items()
           if not ("lora_" in key or ".base_layer." in key or ".original_module." in key)}
    for name, module in lora_layers(model).items():
        out[f"{name}.weight"] = merged_lora_weight(module).contiguous()
        if getattr(module.base_layer, "bias", None) is not None:
            out[f"{name}.bias"] = _detached(module.base_layer.bias)
    return out


def merged_state_dict(model: PreTrainedModel) -> StateDict:
    """Full weights of any model, float32: a peft model is merged first (W + B·A·scale)."""
    if is_peft(model):
        return lora_merged_state_dict(model)
    return {k: _detached(v) for k, v in model.state_dict().items()}


# ---- policies ---------------------------------------------------------------------------------

def wrap_lora(policy: PreTrainedModel, cfg: RLConfig) -> PreTrainedModel:
    """The policy with fresh LoRA adapters (B = 0, A seeded by `cfg.seed`) on every linear layer
    of the backbone (`lib.models.models.lora_targets`)."""

    if cfg.mode == "qlora":
        if not is_4bit(policy):
            raise ValueError("mode 'qlora' needs a policy loaded in 4-bit; use policy_for(path, cfg)")
        policy = prepare_model_for_kbit_training(policy, use_gradient_checkpointing=False)
    torch.manual_seed(cfg.seed)
    lora = LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                      lora_dropout=0.0, target_modules=lora_targets(policy))
    return get_peft_model(policy, lora)


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


def lora_is_fresh(policy: PreTrainedModel) -> bool:
    """Whether every adapter of a peft policy is still at its init (B = 0)."""
    return all(bool((m.lora_B[a].weight == 0).all()) for m in lora_layers(policy).values()
               for a in m.active_adapters)
