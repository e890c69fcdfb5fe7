"""The gold reward where the data have none: a control reward model (WARM §5, WARP §4).

The synthetic world scores any summary exactly (`lib.world.gold_reward`). Real TL;DR comparisons
come with human labels only, so both papers judge their policies with a *control* RM instead: a
larger model than the proxy RMs, trained separately on the same preference data, never used as a
training signal. `ControlRM` is that model for the `gpu` profile (`profile.gold`): its own base model
and tokenizer (`gold.hub_name`, a hub name or a local directory), a fresh scalar head, Bradley–Terry
fine-tuning (full, LoRA or 4-bit QLoRA) on every training comparison with its original labels.

Only the trained parameters are stored (for LoRA and QLoRA: the adapters and the head), in
safetensors; the base model is read again from `gold.hub_name` when the control RM is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, BitsAndBytesConfig, PreTrainedModel

from .cache import Artifact
from .config import GoldConfig
from .evaluate import choice_accuracy
from .models import exact_4bit_on_cpu, hub_error, load_tokenizer, lora_targets
from .rm import PairSet, RMConfig, encode, left_pad, score_pairs, train_reward_model

# Bump when the control RM's training changes in a way its config does not show.
GOLD_VERSION = 1


def control_rm_model(cfg: GoldConfig, pad_token_id: int, device: str = "cpu",
                     gradient_checkpointing: bool = False) -> PreTrainedModel:
    """The control RM before training (or the skeleton its trained weights are loaded into): the
    base model with a one-output head, plus LoRA adapters on every linear layer (LoRA, QLoRA)."""
    if cfg.mode not in ("full", "lora", "qlora"):
        raise ValueError(f"unknown gold.mode {cfg.mode!r}; valid: full, lora, qlora")
    dtype = getattr(torch, cfg.dtype)
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                               bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True) \
        if cfg.mode == "qlora" else None
    torch.manual_seed(cfg.seed)  # the fresh head
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(cfg.hub_name), num_labels=1, dtype=dtype, quantization_config=quant,
            use_safetensors=True, trust_remote_code=False,
            device_map={"": device} if quant else None)
    except OSError as err:
        raise hub_error("control RM base model", cfg.hub_name, err) from None
    model.config.pad_token_id = pad_token_id
    if quant is None:
        model.to(device)
    else:
        exact_4bit_on_cpu(model)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.mode == "full":
        return model
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=cfg.lora_r,
                                            lora_alpha=cfg.lora_alpha,
                                            target_modules=lora_targets(model)))


def trained_parameters(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The parameters fine-tuning changed: all of them (full) or the adapters and the head."""
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def last_position_scores(model: PreTrainedModel, seqs: Sequence[Sequence[int]], pad_id: int,
                         batch_size: int = 64) -> np.ndarray:
    """Reward of every sequence: the head on the hidden state of its last token (inputs are
    left-padded, so that is the last position). Reading the position directly, rather than letting
    the model find the last non-pad token, stays right when the pad token is the EOS token."""
    model.eval()
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    device = next(model.parameters()).device
    order = sorted(range(len(seqs)), key=lambda r: len(seqs[r]))
    scores = np.zeros(len(seqs))
    for i in range(0, len(order), batch_size):
        rows = order[i: i + batch_size]
        batch = left_pad([seqs[r] for r in rows], pad_id)
        hidden = hf.base_model(**{k: v.to(device) for k, v in batch.items()}).last_hidden_state
        scores[rows] = hf.score(hidden[:, -1]).squeeze(-1).float().cpu().numpy()
    return scores


class ControlRM:
    """The gold reward of a pipeline whose profile names a control RM (`profile.gold.hub_name`)."""

    def __init__(self, pipeline):
        self.pl = pipeline
        self.cfg: GoldConfig = pipeline.profile.gold
        if self.cfg.hub_name is None:
            raise ValueError("profile.gold.hub_name is None: this profile's gold reward is the "
                             "synthetic world's exact one (lib.world.gold_reward)")
        self._model: PreTrainedModel | None = None

    @property
    def key(self) -> dict:
        return {"world": self.pl.world_key, "gold": self.cfg,
                "max_length": self.pl.profile.model.max_length, "version": GOLD_VERSION}

    @property
    def tokenizer(self):
        if getattr(self, "_tok", None) is None:
            self._tok = load_tokenizer(self.cfg.hub_name)
        return self._tok

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

    def model(self) -> PreTrainedModel:
        """The trained control RM (loaded once)."""
        if self._model is None:
            art = self.artifact()
            model = control_rm_model(self.cfg, self.tokenizer.pad_token_id, self.pl.profile.device)
            trained = load_file(str(art.path / "control_rm.safetensors"))
            missing, unexpected = model.load_state_dict(trained, strict=False)
            if unexpected or set(trained) - set(dict(model.named_parameters())):
                raise ValueError(f"the stored control RM does not fit {self.cfg.hub_name!r}: "
                                 f"unexpected {sorted(unexpected)[:3]}")
            self._model = model.eval()
        return self._model

    def score(self, prompts: Sequence[str], summaries: Sequence[str]) -> np.ndarray:
        """Gold reward of each (prompt, summary)."""
        seqs = encode(self.tokenizer, prompts, summaries, self.pl.profile.model.max_length)
        return last_position_scores(self.model(), seqs, self.tokenizer.pad_token_id)
