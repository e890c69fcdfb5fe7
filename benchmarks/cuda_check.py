"""The gpu profile's QLoRA path on a tiny model built from a config: checked, timed and measured.

    python -m benchmarks.cuda_check [--device cuda] [--steps 5]

A GPT-NeoX (the Pythia architecture of the gpu profile) of about 4M parameters is built from a
config with the smoke profile's tokenizer (no hub access needed) and taken through the gpu
profile's path, each stage with the library's own functions:

1. loaded in 4-bit NF4 (bf16 compute on CUDA) as an RM with LoRA adapters, trained with the
   Bradley–Terry loss on packed pairs, with gradient checkpointing;
2. two RL policies, loaded in 4-bit with fresh adapters, trained by REINFORCE with the EMA anchor
   and gradient checkpointing (the reward is a stand-in: the number of words);
3. their WARP merge: SLERP of the task vectors from the weights the runs started from, then LITI;
4. a policy started from the merged weights (quantized to NF4 again), trained for the same steps.

Each stage's throughput (and, on CUDA, peak allocated memory) goes to results/benchmarks.json with
the device named. Off a GPU it runs the same path on CPU, which is how the tests run it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from lib.config import ROOT
from lib.models.models import is_4bit

SIZE = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
            max_position_embeddings=512)


class Stage:
    """Wall time and (CUDA) peak allocated memory of a block."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def __enter__(self) -> Stage:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.start
        self.peak_mib = torch.cuda.max_memory_allocated() / 2**20 if self.cuda else None


def words(prompts: list[str], texts: list[str]) -> np.ndarray:
    """A stand-in reward for the throughput check: the number of words of each response."""
    return np.array([len(t.split()) for t in texts], dtype=float)


def check(device: str, steps: int, results: Path) -> list[dict]:
    """Run the path on `device`; returns the benchmark rows written to `results`."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from lib.config import GoldConfig, RLConfig, RMConfig, WARPConfig
    from lib.merge import liti
    from lib.models.lora import merged_state_dict
    from lib.models.policy import policy_for, policy_from_state
    from lib.pipeline import Pipeline
    from lib.report.results import device_name, record_benchmark
    from lib.rl.rl import Hooks, train_policy
    from lib.rl.warp import merge_policies
    from lib.rm.control import control_rm_model
    from lib.rm.rm import PairSet, train_reward_model
    from lib.world import data as D

    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible")
    pl = Pipeline("smoke")
    tok = pl.tokenizer
    torch.manual_seed(0)
    base = GPTNeoXForCausalLM(GPTNeoXConfig(
        vocab_size=len(tok), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.eos_token_id, **SIZE))
    n_params = sum(p.numel() for p in base.parameters())
    what = f"tiny GPT-NeoX, {n_params / 1e6:.0f}M parameters"
    dtype = "bfloat16" if device == "cuda" else "float32"
    rows = []

    def record(name: str, stage: Stage, amount: float, unit: str) -> None:
        label = device_name() if device == "cpu" else torch.cuda.get_device_name()
        rows.append(record_benchmark(results, name=f"QLoRA path: {name} ({what})",
                                     ours=amount / stage.seconds, baseline=None, unit=unit,
                                     profile="gpu", device=label))
        if stage.peak_mib is not None:
            rows.append(record_benchmark(results, name=f"QLoRA path: {name}, peak memory ({what})",
                                         ours=stage.peak_mib, baseline=None, unit="MiB",
                                         profile="gpu", device=label))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "base"
        base.save_pretrained(path)
        tok.save_pretrained(path)

        # 1. A QLoRA RM: BT loss on pairs packed by prompt, gradient checkpointing.
        pairs = PairSet(tok, pl.world.comparisons["train"].select(range(16 * steps)), 160)
        with Stage(device) as rm_stage:
            rm = control_rm_model(GoldConfig(hub_name=str(path), mode="qlora", lora_r=8,
                                             lora_alpha=16, dtype=dtype),
                                  tok.pad_token_id, device, gradient_checkpointing=True)
            history = train_reward_model(rm, pairs, RMConfig(steps=steps, batch_size=16, lr=1e-4,
                                                             mode="qlora"), desc="QLoRA RM")
        assert is_4bit(rm) and all(np.isfinite(history["loss"])), "the QLoRA RM did not train"
        record("RM training", rm_stage, sum(history["pairs"]), "pairs/s")

        # 2. Two QLoRA policies: REINFORCE with the EMA anchor, gradient checkpointing.
        prompts = D.prompts_of(pl.world.sft["train"].select(range(64)))
        rl = RLConfig(steps=steps, prompts_per_step=8, k=4, lr=1e-4, beta=0.1, anchor="ema",
                      max_new_tokens=24, mode="qlora", lora_r=8, lora_alpha=16, eval_every=steps)
        start = merged_state_dict(policy_for(path, rl, device))  # NF4 base, fresh adapters
        thetas = []
        for seed in (0, 1):
            cfg = replace(rl, seed=seed)
            policy = policy_for(path, cfg, device)
            with Stage(device) as rl_stage:
                train_policy(policy, tok, prompts, words, cfg, gradient_checkpointing=True,
                             hooks=Hooks(desc=f"QLoRA policy {seed}"))
            assert is_4bit(policy)
            thetas.append(merged_state_dict(policy))
        record("RL training", rl_stage, steps * rl.prompts_per_step * rl.k, "samples/s")

        # 3. WARP's merge of the two policies: SLERP from their start, then LITI.
        with Stage(device) as merge_stage:
            init = liti(start, merge_policies(start, thetas, WARPConfig(run=rl)), 0.3)
        moved = [k for k in start if not torch.equal(start[k], init[k])]
        assert moved and all(torch.isfinite(init[k]).all() for k in moved), "the merge moved nothing"
        record("WARP merge (SLERP + LITI) of 2 policies", merge_stage, 1, "merges/s")

        # 4. The next iteration starts from the merged weights, quantized to NF4 again.
        cfg = replace(rl, seed=2)
        with Stage(device) as next_stage:
            policy = policy_from_state(path, init, cfg, device)
            train_policy(policy, tok, prompts, words, cfg, gradient_checkpointing=True,
                         hooks=Hooks(desc="QLoRA policy from the merge"))
        assert is_4bit(policy)
        record("RL training from merged weights (incl. re-quantization)", next_stage,
               steps * rl.prompts_per_step * rl.k, "samples/s")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        choices=("cpu", "cuda"))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    args = parser.parse_args(argv)
    for row in check(args.device, args.steps, args.results):
        print(row)


if __name__ == "__main__":
    main()
