"""Batched sampling of summaries with `generate` (never one sample at a time)."""

from __future__ import annotations

import time
from typing import Sequence

import torch
from tqdm import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .config import SamplingConfig


@torch.no_grad()
def sample_summaries(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                     prompts: Sequence[str], n: int, cfg: SamplingConfig,
                     desc: str = "sampling") -> tuple[list[list[str]], dict]:
    """`n` samples per prompt at `cfg.temperature`; returns texts shaped (prompts, n) and stats.

    Each batch is seeded from (cfg.seed, batch index), so a pool is reproducible on CPU.
    """
    model.eval()
    device = next(model.parameters()).device
    flat = [p for p in prompts for _ in range(n)]
    texts: list[str] = []
    start, n_tokens = time.perf_counter(), 0
    for b, i in enumerate(tqdm(range(0, len(flat), cfg.batch_size), desc=desc, leave=False,
                               mininterval=2)):
        enc = tokenizer(flat[i: i + cfg.batch_size], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(device)
        torch.manual_seed(cfg.seed * 1_000_003 + b)
        out = model.generate(**enc, do_sample=True, temperature=cfg.temperature, top_k=0,
                             top_p=1.0, max_new_tokens=cfg.max_new_tokens,
                             pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        n_tokens += int((new != tokenizer.pad_token_id).sum())
        texts += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    seconds = time.perf_counter() - start
    stats = {"samples": len(flat), "seconds": seconds, "samples_per_s": len(flat) / seconds,
             "tokens": n_tokens}
    return [texts[j * n: (j + 1) * n] for j in range(len(prompts))], stats
