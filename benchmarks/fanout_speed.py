"""Local fan-out on this machine: the same independent runs built by 1 process × T threads and by
T processes × 1 thread (`lib.fanout`), wall times and their ratio.

    python -m benchmarks.fanout_speed [--profile default] [--runs 4] [--threads 2]

Each mode builds `--runs` RL runs of notebook 04 (shortened with `--steps`) and as many RMs
(shortened with `--rm-epochs`) into the profile's cache; the two modes get configs that differ only
in a seed (RL) or in a warmup fraction that rounds to the same number of steps (RMs), so neither
reads the other's results and both do the same work.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from lib.config import ROOT
from lib.report.results import record_benchmark

BUILD = """
import json, os, sys, torch
torch.set_num_threads(int(sys.argv[1]))
os.environ["REPRO_RUN_THREADS"] = sys.argv[1]  # the runs' own thread count (lib.config.RUN_THREADS)
from lib.profiles import get_profile
from lib.fanout import JOBS, shard
from lib.pipeline import Pipeline
from lib.rm.control import ControlRM
profile, overrides, wave = sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
runs, i, n = (int(x) for x in sys.argv[5:8])
jobs = JOBS[wave](Pipeline(get_profile(profile, overrides), gold_rm=ControlRM))[:runs]
for name, build in shard(jobs, i, n):
    build()
"""


def timed(profile: str, overrides: dict, wave: str, runs: int, processes: int, threads: int) -> float:
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", BUILD, str(threads), profile, json.dumps(overrides), wave,
                               str(runs), str(i), str(processes)], cwd=ROOT) for i in range(processes)]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit(f"a {wave} build failed")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rm-epochs", type=float, default=0.25)
    args = parser.parse_args()
    t = args.threads
    rl = [{"rl.run.steps": args.steps, "rl.run.seed": seed} for seed in (901, 902)]
    rms = [{"rm.epochs": args.rm_epochs, "rm.warmup": warmup} for warmup in (0.301, 0.302)]
    for wave, modes in (("rl", rl), ("rms", rms)):
        one = timed(args.profile, modes[0], wave, args.runs, 1, t)
        many = timed(args.profile, modes[1], wave, args.runs, t, 1)
        print(record_benchmark(ROOT / "results", name=f"fan-out speed-up, {t} processes × 1 thread over 1 × {t} "
                               f"threads ({args.runs} {'RL runs' if wave == 'rl' else 'RMs'})",
                               ours=one / many, baseline=None, unit="ratio", profile=args.profile))


if __name__ == "__main__":
    main()
