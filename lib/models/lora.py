"""LoRA and full weights: peft adapters on, merged weights off.

Weight averaging (WARM), task vectors and SLERP (WARP) act on *full* weights. For a LoRA model the
full weight of an adapted layer is W + B·A·scale, computed here explicitly: an average of A and B
separately would add cross terms, and `merge_and_unload` would re-quantize an NF4 base. For QLoRA
the base W is the dequantized NF4 weight, so merges use the dequantized base.
"""

from __future__ import annotations

import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import PreTrainedModel

from lib.config import RLConfig
from lib.models.models import is_4bit, lora_targets

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


def lora_is_fresh(policy: PreTrainedModel) -> bool:
    """Whether every adapter of a peft policy is still at its init (B = 0)."""
    return all(bool((m.lora_B[a].weight == 0).all()) for m in lora_layers(policy).values()
               for a in m.active_adapters)
