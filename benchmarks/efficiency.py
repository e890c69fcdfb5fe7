"""Per-phase efficiency: each phase's achieved GFLOP/s against this machine's fwd+bwd peak.

    python -m benchmarks.efficiency [--profile default] [--steps 20]

The peak is a micro-benchmark on the profile's model shape: forward + backward of the tiny Llama
on full-length, unpadded batches of 32 sequences, the best this model can do here. Each phase then
runs a short, real workload through the library's own code path (the functions the pipeline
calls), once under `torch.utils.flop_counter.FlopCounterMode` to count its floating-point
operations and once timed without it. Achieved GFLOP/s = counted FLOPs / timed seconds; the ratio
is achieved / peak. Counted FLOPs are the matrix products torch dispatches, padding included: work
on padding is spent work, so a phase that pads a lot shows it as a lower useful share (the
`useful` column below: real tokens / tokens computed on).

Rows go to `results/benchmarks.json` ("efficiency, <phase>", unit GFLOP/s, baseline = the peak).
A bare matrix product of the model's largest shape is printed for context (what the hardware does
with one big GEMM).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from lib.config import results_dir
from lib.models.models import tiny_llama
from lib.models.policy import policy_for
from lib.models.sampling import sample_summaries
from lib.models.train import train_causal_lm
from lib.pipeline import Pipeline
from lib.report.results import record_benchmark
from lib.rl.rl import Hooks, train_policy
from lib.rl.runs import RLRuns
from lib.rm.control import ControlRM
from lib.rm.pool import RewardModels
from lib.rm.rm import reward_model_from, sequence_scores, train_reward_model
from lib.world import data as D


class TokenCount:
    """Real and computed tokens of every forward call of the Llama backbone inside `model` (a
    pre-hook): padding counts as computed, not real (2D masks: their zeros; packed 4D masks: pad
    ids)."""

    def __init__(self, model: torch.nn.Module, pad_id: int):
        self.real = self.computed = 0
        self.pad_id = pad_id
        backbone = next(m for m in model.modules() if type(m).__name__ == "LlamaModel")
        self.handle = backbone.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            return
        mask = kwargs.get("attention_mask")
        self.computed += ids.numel()
        if mask is not None and mask.dim() == 2:
            self.real += int(mask[:, -ids.shape[1]:].sum())
        else:
            self.real += int((ids != self.pad_id).sum())


def measure(work) -> tuple[float, float]:
    """(FLOPs, seconds) of `work()`: counted once, then timed once (the same deterministic work)."""
    with FlopCounterMode(display=False) as counter:
        work()
    start = time.perf_counter()
    work()
    return float(counter.get_total_flops()), time.perf_counter() - start


def peak(pl: Pipeline, batch: int = 32, steps: int = 5) -> float:
    """GFLOP/s of forward + backward of the profile's model on full, unpadded batches."""
    model = tiny_llama(pl.profile.model, pl.tokenizer)
    ids = torch.randint(0, pl.profile.model.vocab_size, (batch, pl.profile.model.max_length))

    def work():
        for _ in range(steps):
            model(input_ids=ids, labels=ids).loss.backward()

    work()  # warm-up
    flops, seconds = measure(work)
    return flops / seconds / 1e9


def phases(pl: Pipeline, steps: int):
    """Each phase: a name, the model whose forward calls are counted, and its workload."""
    P, tok = pl.profile, pl.tokenizer
    rms = RewardModels(pl)
    sft_data = pl.world.sft["train"]
    lm = pl.load("pretrain")
    yield "pre-training", lm, lambda: train_causal_lm(
        lm, tok, pl.world.pretrain["text"], None, replace(P.pretrain, steps=steps, checkpoint_steps=()),
        P.model.max_length, desc="pre-train")
    yield "SFT", lm, lambda: train_causal_lm(
        lm, tok, D.prompts_of(sft_data), sft_data["summary"], replace(P.sft, steps=steps, checkpoint_steps=()),
        P.model.max_length, desc="SFT")
    rm = reward_model_from(pl.model_path("sft"), rms.head(0.0))
    rm_cfg = replace(rms.member(0), steps=steps, checkpoint_steps=())
    yield "RM training", rm, lambda: train_reward_model(rm, rms.pairs.pairset("train-0.0"), rm_cfg, desc="RM")
    val = rms.pairs.pairset("validation")
    yield "RM scoring", rm, lambda: sequence_scores(rm.eval(), val)
    sft = pl.load("sft")
    posts = pl.world.sft["validation"]
    prompts = D.prompts_of(posts.select(range(min(64, len(posts)))))
    yield "sampling", sft, lambda: sample_summaries(sft, tok, prompts, 8, P.sampling, desc="sampling")
    runs = RLRuns(pl, rms)
    rl_cfg = replace(P.rl.run, steps=max(2, steps // 5), eval_every=10 ** 6)
    policy = policy_for(pl.model_path("sft"), rl_cfg)
    reward = runs.reward_fn(rms.pool(0.0)[:1])
    yield "RL step", policy, lambda: train_policy(policy, tok, runs.prompts, reward, rl_cfg,
                                                   hooks=Hooks(eval_prompts=runs.prompts[:1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--steps", type=int, default=20, help="training steps per phase")
    args = parser.parse_args()
    pl = Pipeline(args.profile, gold_rm=ControlRM)
    d, i = pl.profile.model.hidden_size, pl.profile.model.intermediate_size
    a, b = torch.randn(4096, d), torch.randn(d, i)
    a @ b
    start = time.perf_counter()
    for _ in range(20):
        a @ b
    gemm = 20 * 2 * a.shape[0] * d * i / (time.perf_counter() - start) / 1e9
    top = peak(pl)
    print(f"bare GEMM ({a.shape[0]}×{d} @ {d}×{i}): {gemm:.1f} GFLOP/s; "
          f"model fwd+bwd peak: {top:.1f} GFLOP/s on {torch.get_num_threads()} threads")
    record_benchmark(results_dir(pl.profile), name="efficiency, peak: model fwd+bwd (full batches)", ours=top,
                     baseline=gemm, unit="GFLOP/s", profile=pl.profile.name)
    for name, model, work in phases(pl, args.steps):
        tokens = TokenCount(model, pl.tokenizer.pad_token_id)
        flops, seconds = measure(work)
        tokens.handle.remove()
        achieved = flops / seconds / 1e9
        useful = tokens.real / max(tokens.computed, 1)
        print(f"{name:>14}: {achieved:6.1f} GFLOP/s = {achieved / top:5.1%} of peak "
              f"({seconds:.1f} s; real tokens {useful:.0%} of those computed on)")
        record_benchmark(results_dir(pl.profile), name=f"efficiency, {name}",
                         ours=achieved, baseline=top, unit="GFLOP/s", profile=pl.profile.name)


if __name__ == "__main__":
    main()
