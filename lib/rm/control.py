"""The gold reward where the data have none: a control reward model (WARM §5, WARP §4).

The synthetic world scores any summary exactly (`lib.world.world.gold_reward`). Real TL;DR comparisons
come with human labels only, so both papers judge their policies with a *control* RM instead: a
larger model than the proxy RMs, trained separately on the same preference data, never used as a
training signal. `ControlRM` is that model for the `gpu` profile (`profile.gold`): its own base model
and tokenizer (`gold.hub_name`, a hub name or a local directory), a fresh scalar head, Bradley–Terry
fine-tuning (full, LoRA or 4-bit QLoRA) on every training comparison with its original labels.

Only the trained parameters are stored (for LoRA and QLoRA: the adapters and the head), in
safetensors; the base model is read again from `gold.hub_name` when the control RM is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from lib.cache import Artifact
from lib.config import MODES, GoldConfig, RMConfig
from lib.measure.evaluate import choice_accuracy
from lib.models.models import from_pretrained, load_tokenizer, lora_targets
from lib.pipeline import Pipeline
from lib.rm.rm import PairSet, score_pairs, score_texts, train_reward_model

# Bump when the control RM's training changes in a way its config does not show.
GOLD_VERSION = 1


def control_rm_model(cfg: GoldConfig, pad_token_id: int, device: str = "cpu",
                     gradient_checkpointing: bool = False) -> PreTrainedModel:
    """The control RM before training (or the skeleton its trained weights are loaded into): the
    base model with a one-output head, plus LoRA adapters on every linear layer (LoRA, QLoRA)."""
    if cfg.mode not in MODES:
        raise ValueError(f"unknown gold.mode {cfg.mode!r}; valid: {', '.join(MODES)}")
    torch.manual_seed(cfg.seed)  # the fresh head
    model = from_pretrained(AutoModelForSequenceClassification, cfg.hub_name, dtype=cfg.dtype,
                            load_in_4bit=cfg.mode == "qlora", device=device,
                            what="control RM base model", num_labels=1)
    model.config.pad_token_id = pad_token_id
    if gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if cfg.mode == "full":
        return model

    return get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=cfg.lora_r,
                                            lora_alpha=cfg.lora_alpha,
                                            target_modules=lora_targets(model)))


def trained_parameters(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The parameters fine-tuning changed: all of them (full) or the adapters and the head."""
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


class ControlRM:
    """The gold reward of a pipeline whose profile names a control RM (`profile.gold.hub_name`)."""

    def __init__(self, pipeline: Pipeline):
        self.pl = pipeline
        self.cfg: GoldConfig = pipeline.profile.gold
        if self.cfg.hub_name is None:
            raise ValueError("profile.gold.hub_name is None: this profile's gold reward is the "
                             "synthetic world's exact one (lib.world.world.gold_reward)")

    @property
    def key(self) -> dict:
        return {"world": self.pl.world_key, "gold": self.cfg,
                "max_length": self.pl.profile.model.max_length, "version": GOLD_VERSION}

    @cached_property
    def tokenizer(self):
        return load_tokenizer(self.cfg.hub_name)

    def _rm_config(self) -> RMConfig:
        return RMConfig(seed=self.cfg.seed, lr=self.cfg.lr, mode=self.cfg.mode,
                        steps=self.cfg.steps, batch_size=self.cfg.batch_size,
                        lora_r=self.cfg.lora_r, lora_alpha=self.cfg.lora_alpha)

    def artifact(self) -> Artifact:
        """Train (or read back) the control RM: its trained parameters and its accuracy."""
        def build(tmp: Path) -> dict:
            tok, max_length = self.tokenizer, self.pl.profile.model.max_length
            model = control_rm_model(self.cfg, tok.pad_token_id, self.pl.profile.device,
                                     self.pl.profile.gradient_checkpointing)
            comparisons = self.pl.world.comparisons
            history = train_reward_model(model, PairSet(tok, comparisons["train"], max_length),
                                         self._rm_config(), desc="control RM")
            save_file(trained_parameters(model), str(tmp / "control_rm.safetensors"))
            accuracy = {}
            for split in ("validation", "test_ood"):
                pairs = PairSet(tok, comparisons[split], max_length)
                s = score_pairs(model, pairs)
                accuracy[split] = choice_accuracy(s[0], s[1], pairs.choice)
            return {"history": history, "accuracy": accuracy}

        return self.pl.cache.stage("gold-rm", self.key, build)

    @cached_property
    def model(self) -> PreTrainedModel:
        """The trained control RM (loaded once)."""
        art = self.artifact()
        model = control_rm_model(self.cfg, self.tokenizer.pad_token_id, self.pl.profile.device)
        trained = load_file(str(art.path / "control_rm.safetensors"))
        _, unexpected = model.load_state_dict(trained, strict=False)
        if unexpected or set(trained) - set(dict(model.named_parameters())):
            raise ValueError(f"the stored control RM does not fit {self.cfg.hub_name!r}: "
                             f"unexpected {sorted(unexpected)[:3]}")
        return model.eval()

    def score(self, prompts: Sequence[str], summaries: Sequence[str]) -> np.ndarray:
        """Gold reward of each (prompt, summary)."""
        return score_texts(self.model, self.tokenizer, prompts, summaries,
                           self.pl.profile.model.max_length)
