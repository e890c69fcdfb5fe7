"""Sampling summaries from a policy: one batched `generate` path for sample pools and RL alike.

`generate` uses the KV cache, pads the prompts on the left and stops each row at its EOS; samples
are drawn from softmax(logits / T) with top-k and top-p off. Each call is seeded, so a pool or an
RL step is reproducible on CPU.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib.seeds import batch_seed


class Temperature(Protocol):
    """What sampling reads of a config (`SamplingConfig` and `RLConfig` both have it)."""

    temperature: float
    max_new_tokens: int


def position_ids_of(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions of a left-padded batch, as `generate` computes them (padding at position 0)."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)


def response_mask_of(new_tokens: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1 on generated tokens up to and including the first EOS, 0 on the padding after it."""
    is_eos = (new_tokens == eos_id).long()
    return ((is_eos.cumsum(-1) - is_eos) == 0).long()


@torch.no_grad()
def sample_batch(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                 k: int, cfg: Temperature, generator_seed: int) -> dict:
    """`k` samples for each prompt in one batched `generate` call (rows prompt-major).

    Returns left-padded `input_ids` (prompt + response), `attention_mask` (0 on padding, including
    after the first EOS), `response_mask` (the generated tokens that are not padding), the
    flattened `prompts` and the decoded `texts`.
    """
    model.eval()
    device = next(model.parameters()).device
    flat = [p for p in prompts for _ in range(k)]
    if tokenizer.padding_side != "left":
        raise ValueError("sampling needs a tokenizer that pads on the left")
    enc = tokenizer(flat, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    torch.manual_seed(generator_seed)
    out = model.generate(**enc, do_sample=True, temperature=cfg.temperature, top_k=0, top_p=1.0,
                         max_new_tokens=cfg.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    new = out[:, enc["input_ids"].shape[1]:]
    generated = response_mask_of(new, tokenizer.eos_token_id)
    texts = [t.strip() for t in tokenizer.batch_decode(new.masked_fill(generated == 0, tokenizer.pad_token_id),
                                                       skip_special_tokens=True)]
    zeros = torch.zeros_like(enc["attention_mask"])
    return {"input_ids": out, "attention_mask": torch.cat([enc["attention_mask"], generated], 1),
            "response_mask": torch.cat([zeros, generated], 1), "prompts": flat, "texts": texts}


def sample_summaries(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                     prompts: Sequence[str], n: int, cfg, desc: str = "sampling") -> tuple[list[list[str]], dict]:
    """`n` samples per prompt (a `SamplingConfig`: temperature, length, batch size, seed), in
    batches of `cfg.batch_size` rows, batch b seeded with (cfg.seed, b); returns the texts shaped
    (prompts, n) and throughput stats."""
    flat = [p for p in prompts for _ in range(n)]
    texts: list[str] = []
    start, n_tokens = time.perf_counter(), 0
    for b, i in enumerate(tqdm(range(0, len(flat), cfg.batch_size), desc=desc, leave=False, mininterval=2)):
        batch = sample_batch(model, tokenizer, flat[i: i + cfg.batch_size], 1, cfg, batch_seed(cfg.seed, b))
        n_tokens += int(batch["response_mask"].sum())
        texts += batch["texts"]
    seconds = time.perf_counter() - start
    stats = {"samples": len(flat), "seconds": seconds, "samples_per_s": len(flat) / seconds, "tokens": n_tokens}
    return [texts[j * n: (j + 1) * n] for j in range(len(prompts))], stats
