"""Peak memory and throughput of RM training: full fine-tuning vs LoRA vs 4-bit QLoRA, same model.

    python -m benchmarks.train_memory [--profile default] [--device cpu|cuda] [--steps 10]

One model (a Llama built from a config, about 30M parameters, with the profile's tokenizer) is
trained with the Bradley–Terry loss on the profile's training pairs in each mode, each in its own
process so that no mode inherits another's allocations. Peak memory is the peak resident set size
of the process minus its size before the model was loaded (CPU), or the peak of
`torch.cuda.max_memory_allocated` (CUDA); it includes the activations, which dominate at this size
(LoRA keeps extra ones for its adapters). The model state (weights as stored, gradients, Adam
moments) is reported apart: that is what LoRA and 4-bit quantization shrink, and what dominates at
paper scale. Written to results/benchmarks.json with the device named.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lib.config import ROOT

MODES = ("full", "lora", "qlora")
SIZE = dict(hidden_size=512, num_layers=8, num_heads=8, intermediate_size=1376, max_length=160)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def child(model_dir: str, mode: str, device: str, steps: int, profile: str) -> dict:
    import torch

    from lib.config import GoldConfig, RMConfig
    from lib.pipeline import Pipeline
    from lib.rm.control import ControlRM, control_rm_model
    from lib.rm.rm import PairSet, train_reward_model

    pl = Pipeline(profile, gold_rm=ControlRM)
    pairs = PairSet(pl.tokenizer, pl.comparisons["train"].select(range(160 * steps)), SIZE["max_length"])
    cfg = GoldConfig(hub_name=model_dir, mode=mode, lora_r=16, lora_alpha=32,
                     dtype="bfloat16" if device == "cuda" else "float32")
    before = _rss_mib()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model = control_rm_model(cfg, pl.tokenizer.pad_token_id, device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    start = time.perf_counter()
    history = train_reward_model(model, pairs, RMConfig(steps=steps, batch_size=16, lr=1e-4, mode=mode),
                                 desc=mode)
    seconds = time.perf_counter() - start
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    # The model state training holds (weights as stored, NF4 packed for qlora; a gradient and two
    # Adam moments per trainable parameter), apart from activations.
    state = sum(p.numel() * p.element_size() for p in model.parameters()) + \
        sum(3 * p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return {"peak_mib": peak, "state_mib": state / 2**20, "pairs_per_s": sum(history["pairs"]) / seconds,
            "trainable": trainable}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--child", nargs=2, metavar=("MODEL_DIR", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.device, args.steps, args.profile)))
        return

    from lib.config import ModelConfig
    from lib.models.models import save_model, tiny_llama
    from lib.pipeline import Pipeline
    from lib.report.results import device_name, record_benchmark

    pl = Pipeline(args.profile)
    model = tiny_llama(ModelConfig(vocab_size=len(pl.tokenizer), **SIZE), pl.tokenizer, seed=0)
    n_params = sum(p.numel() for p in model.parameters())
    device = device_name() if args.device == "cpu" else __import__("torch").cuda.get_device_name()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        save_model(model, Path(tmp) / "model")
        for mode in MODES:
            run = subprocess.run([sys.executable, "-m", "benchmarks.train_memory", "--child",
                                  str(Path(tmp) / "model"), mode, "--device", args.device,
                                  "--steps", str(args.steps), "--profile", args.profile],
                                 cwd=ROOT, capture_output=True, text=True, check=True)
            out[mode] = json.loads(run.stdout.strip().splitlines()[-1])
    size = f"{n_params / 1e6:.0f}M-parameter Llama"
    for mode in MODES:
        print(record_benchmark(ROOT / "results", name=f"RM training peak memory, {mode} ({size})",
                               ours=out[mode]["peak_mib"], baseline=out["full"]["peak_mib"],
                               unit="MiB", profile=pl.profile.name, device=device))
        print(record_benchmark(ROOT / "results", name=f"RM training weights + gradients + Adam "
                               f"state, {mode} ({size})", ours=out[mode]["state_mib"],
                               baseline=out["full"]["state_mib"], unit="MiB",
                               profile=pl.profile.name, device=device))
        print(record_benchmark(ROOT / "results", name=f"RM training throughput, {mode} ({size})",
                               ours=out[mode]["pairs_per_s"], baseline=out["full"]["pairs_per_s"],
                               unit="pairs/s", profile=pl.profile.name, device=device))


if __name__ == "__main__":
    main()
