"""The exponential moving average of a model's weights along its training, shared by RM training
(`RMConfig.ema_mu`, `lib.rm.rm`) and RL (WARP's KL anchor, `RLConfig.anchor`, `lib.rl.rl`)."""

from __future__ import annotations

import copy

import torch
from transformers import PreTrainedModel

from lib.models.lora import is_peft, lora_merged_state_dict, merged_lora_weights
from lib.models.policy import plain_model_like


class Ema:
    """An exponential moving average of a model's weights, θ_ema ← (1−μ)·θ_ema + μ·θ after every
    optimizer step, from θ_ema = θ_0: WARP's KL anchor for RL policies (`RLConfig.anchor`), and the
    weights a reward model keeps (`RMConfig.ema_mu`). `model` carries the averaged weights.

    Full models: a frozen copy whose floating parameters are moved towards the trained model's.
    LoRA models (policies): a plain float32 model carrying the merged weights (W + B·A·scale),
    whose adapted layers track the EMA of the trained model's *merged* weights (the base W is frozen,
    so this is W + EMA(B·A·scale); an EMA of A and B separately would not be). For QLoRA the base
    is the dequantized NF4 weight, so the anchor computes in float32 with the same W.
    """

    def __init__(self, trained: PreTrainedModel, mu: float):
        self.mu, self.lora = mu, is_peft(trained)
        if self.lora:
            self.model = plain_model_like(trained, lora_merged_state_dict(trained))
            keys = list(merged_lora_weights(trained))
        else:
            self.model = copy.deepcopy(trained).requires_grad_(False).eval()
            keys = [n for n, p in self.model.named_parameters() if p.is_floating_point()]
        params = dict(self.model.named_parameters())
        self.params = {k: params[k] for k in keys}

    def targets(self, trained: PreTrainedModel) -> dict[str, torch.Tensor]:
        """The weights of the trained model the EMA tracks (merged weights of adapted layers for LoRA)."""
        if self.lora:
            return merged_lora_weights(trained)
        return {n: p.detach() for n, p in trained.named_parameters() if n in self.params}

    @torch.no_grad()
    def update(self, trained: PreTrainedModel) -> None:
        targets = self.targets(trained)
        keys = list(self.params)
        torch._foreach_lerp_([self.params[k].data for k in keys], [targets[k] for k in keys], self.mu)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: p.detach().clone().contiguous() for k, p in self.params.items()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if set(state) != set(self.params):
            raise ValueError("EMA state does not match the trained model's parameters")
        for k, p in self.params.items():
            p.data.copy_(state[k])
