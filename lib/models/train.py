"""Causal-LM training: pre-training on documents and SFT on prompt→summary (loss on the summary).

A plain loop (AdamW, linear warmup then cosine decay, gradient clipping) with a progress bar;
seeded so that two runs on a CPU give identical weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_cosine_schedule_with_warmup

from lib.config import LMTrainConfig


def encode_examples(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                    completions: Sequence[str] | None, max_length: int) -> list[tuple[list[int], int]]:
    """Token ids of prompt (+ ' ' + completion + EOS) and the number of prompt tokens.

    With `completions=None` the whole text is the target (pre-training) and ends with EOS.
    """
    eos = tokenizer.eos_token_id
    prompt_ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    if completions is None:
        return [((ids + [eos])[-max_length:], 0) for ids in prompt_ids]
    comp_ids = tokenizer([" " + c for c in completions], add_special_tokens=False)["input_ids"]
    out = []
    for p, c in zip(prompt_ids, comp_ids):
        full = p + c + [eos]
        cut = max(0, len(full) - max_length)  # truncate the post from the left, keep the summary
        out.append((full[cut:], max(0, len(p) - cut)))
    return out


def collate(examples: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels are -100 on padding and on prompt tokens."""
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(examples):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention[i, : len(ids)] = 1
        labels[i, n_prompt: len(ids)] = torch.tensor(ids[n_prompt:])
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def train_causal_lm(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                    prompts: Sequence[str], completions: Sequence[str] | None,
                    cfg: LMTrainConfig, max_length: int, desc: str = "train",
                    on_checkpoint: Callable[[int, PreTrainedModel], None] | None = None,
                    eval_fn: Callable[[PreTrainedModel], float] | None = None) -> dict[str, list]:
    """Train for `cfg.steps` steps on shuffled batches; returns the loss curve (and eval losses).

    `on_checkpoint(step, model)` is called at each of `cfg.checkpoint_steps`.
    """
    examples = encode_examples(tokenizer, prompts, completions, max_length)
    device = next(model.parameters()).device
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    sched = get_cosine_schedule_with_warmup(opt, cfg.warmup_steps, max(cfg.steps, 1))
    history: dict[str, list] = {"step": [], "loss": [], "eval_step": [], "eval_loss": []}
    order = rng.permutation(len(examples))
    cursor, running = 0, []
    model.train()
    bar = tqdm(range(1, cfg.steps + 1), desc=desc, leave=False, mininterval=2)
    for step in bar:
        if cursor + cfg.batch_size > len(order):
            order, cursor = rng.permutation(len(examples)), 0
        batch = collate([examples[i] for i in order[cursor: cursor + cfg.batch_size]],
                        tokenizer.pad_token_id)
        cursor += cfg.batch_size
        loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        running.append(loss.item())
        if step % cfg.log_every == 0 or step == cfg.steps:
            history["step"].append(step)
            history["loss"].append(float(np.mean(running)))
            bar.set_postfix(loss=f"{history['loss'][-1]:.3f}")
            running = []
        if eval_fn is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
            history["eval_step"].append(step)
            history["eval_loss"].append(eval_fn(model))
            model.train()
        if on_checkpoint is not None and step in cfg.checkpoint_steps:
            on_checkpoint(step, model)
    model.eval()
    return history


@torch.no_grad()
def mean_loss(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
              completions: Sequence[str] | None, max_length: int, batch_size: int = 64) -> float:
    """Token-averaged cross-entropy on held-out data (the target tokens only)."""
    model.eval()
    examples = encode_examples(tokenizer, prompts, completions, max_length)
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(examples), batch_size):
        batch = collate(examples[i: i + batch_size], tokenizer.pad_token_id)
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits[:, :-1]
        labels = batch["labels"][:, 1:].to(device)
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2).float(), labels,
                                                ignore_index=-100, reduction="sum")
        total += nll.item()
        count += int((labels != -100).sum())
    return total / max(count, 1) if count else math.nan
