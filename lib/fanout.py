"""Fan independent runs out over processes, GPUs or cluster jobs; the notebooks then read them back.

Runs are independent given the stages before them, and the artifact cache is content-addressed
with atomic renames, so any number of processes can fill one cache, each building its own share.
Four waves, each needing the one before:

- `prepare`: data, SFT, the shared probed heads (and the control RM on real data); one process.
- `rms`: the M reward models of the clean and the corrupt pool (WARM §4).
- `rl`: the RL runs of notebook 04 and WARP's stage 1 and first iteration (notebook 05), as
  listed in `lib.plans`; they need the RM pools.
- `warp2`: the runs of WARP's second iteration, which start from the merge of the first.

    python -m lib.fanout --profile gpu prepare
    for wave in rms rl warp2; do
        for i in 0 1 2 3; do                                     # one process per GPU
            CUDA_VISIBLE_DEVICES=$i python -m lib.fanout --profile gpu $wave --shard $i/4 &
        done; wait
    done
    ./run_all.sh --profile gpu                                   # every run is read from the cache

On a cluster, run `prepare` as one job and each wave as a job array of N jobs depending on the
previous array, with `REPRO_CACHE_DIR` on a shared filesystem; the notebooks run last. The N
shards deal the wave's job list in a snake (`shard`), so the union of the shards is every run,
each built once.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import submitit

from lib import plans
from lib.config import PREPARE_THREADS, cache_dir
from lib.pipeline import Pipeline
from lib.profiles import get_profile, parse_set
from lib.rl.runs import RLRuns
from lib.rl.warp import merge_iteration
from lib.rm.control import ControlRM
from lib.rm.pool import RewardModels
from lib.threads import torch_threads


def rm_jobs(pl: Pipeline) -> list[tuple[str, Callable[[], Any]]]:
    """Every RM: the clean and the corrupt pool and their seeded repeats (WARM §4), each trained and
    scored on the pair sets the notebooks read, the two random-init controls of notebook 01 and
    the random-init controls of notebook 02's pre-training premise, as (name, build) pairs."""
    rms = RewardModels(pl)
    jobs = [(f"RM {cfg.seed} (pool {p}, corruption {c})", lambda cfg=cfg: rms.build(cfg))
            for p in range(pl.profile.rm.n_seeds) for c in (0.0, pl.profile.rm.corruption)
            for cfg in rms.pool(c, p)]
    jobs += [(f"RM control {i}", lambda cfg=cfg: rms.artifact(cfg))
             for i, cfg in enumerate(plans.random_init_controls(rms))]
    jobs += [(f"RM premise control (pool {p})", lambda cfg=cfg: rms.artifact(cfg))
             for p, cfg in enumerate(plans.premise_controls(rms))]
    return jobs


def rl_jobs(pl: Pipeline) -> list[tuple[str, Callable[[], Any]]]:
    """The RL runs that need only the RM pools: notebook 04's, WARP's stage 1 and first iteration."""
    rms = RewardModels(pl)
    runs = RLRuns(pl, rms)
    named = [(f"RL {group} {name}", run) for group, by_name in plans.rl_with_warm(rms).items()
             for name, run in by_name.items()]
    named += [(f"WARP stage 1, {name}", run) for name, run in plans.warp_anchors(rms).items()]
    named += [(f"WARP iteration 1, run {m}", run)
              for m, run in enumerate(plans.warp_iteration(rms, 0, plans.warp_first_runs(pl.profile)))]
    unique = {}  # a run listed twice (e.g. the β sweep at the base β) is built once
    for name, run in named:
        unique.setdefault(pl.cache.key("rl", runs.key(run)), (name, run))
    return [(name, lambda run=run, name=name: runs.run(run, desc=name)) for name, run in unique.values()]


def warp2_jobs(pl: Pipeline) -> list[tuple[str, Callable[[], Any]]]:
    """WARP's second iteration: M runs from the LITI model of the first (which must be built)."""
    rms = RewardModels(pl)
    runs = RLRuns(pl, rms)
    w = pl.profile.warp
    read = plans.cached_warp_run(runs, build=False)
    first = merge_iteration([read(0, m, None) for m in range(w.m)], w)
    train_run = plans.cached_warp_run(runs)
    return [(f"WARP iteration 2, run {m}", lambda m=m: train_run(1, m, (first["key"], first["init"])))
            for m in range(w.m)]


JOBS = {"rms": rm_jobs, "rl": rl_jobs, "warp2": warp2_jobs}


def prepare(pl: Pipeline) -> None:
    """The stages every run shares, built once before the runs fan out."""
    rms = RewardModels(pl)
    pl.sft_artifact()
    for c in (0.0, pl.profile.rm.corruption):
        for block in sorted({rms.pairs.block(c, p) for p in range(pl.profile.rm.n_seeds)}):
            rms.head(c, block=block)
    if pl.gold_key is not None:
        pl.control_rm.artifact()


def parse_shard(text: str) -> tuple[int, int]:
    """'i/N' → (i, N), with 0 ≤ i < N."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes i/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= i < N")
    return i, n


def shard(jobs: list, i: int, n: int) -> list:
    """Shard i of n, dealt in a snake (0, 1, …, n−1, n−1, …, 1, 0, 0, 1, …): the runs that are
    slow for their place in a pool (the RM with dropout is member 3 of every pool) then alternate
    between the shards instead of all landing on one (dealt round-robin, the odd shard of the
    `default` RM wave ran 142 s longer than the even one, 8% of the wave)."""
    return [job for k, job in enumerate(jobs) if (k % n if (k // n) % 2 == 0 else n - 1 - k % n) == i]


def build_shard(profile: str, overrides: dict, wave: str, i: int = 0, n: int = 1,
                threads: int | None = None) -> list[str]:
    """Build shard i of N of `wave` ("prepare" is one shard) in this process, with `threads` torch
    threads (restored on return, so a caller in-process keeps its own count: prepare's floats
    depend on it); returns the names of its runs. The picklable entry point of every executor."""
    with torch_threads(threads) if threads else nullcontext():
        return _build_shard(profile, overrides, wave, i, n)


def _build_shard(profile: str, overrides: dict, wave: str, i: int, n: int) -> list[str]:
    pl = Pipeline(get_profile(profile, overrides), gold_rm=ControlRM)
    if wave == "prepare":
        prepare(pl)
        return ["prepare"]
    mine = shard(JOBS[wave](pl), i, n)
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES") or ""  # submitit local sets it, empty on a CPU
    where = f", GPU {gpu}" if gpu else ""
    for name, build in mine:
        print(f"[fanout {i}/{n}{where}] {name}", flush=True)
        build()
    return [name for name, _ in mine]


# The lines of a job's logs that reach the terminal: the runs it starts, and every repair or resume
# (a corrupted artifact rebuilt, a killed build's leftovers removed, an RL run resumed from its saved
# step), which would otherwise be seen only in the job's log files.
NOTICES = ("[fanout ", "[cache] rebuilding ", "[cache] removing ", "[rl] ")


def _lines(job, stream: str) -> list[str]:
    return ((job.stdout() if stream == "stdout" else job.stderr()) or "").splitlines()


def _follow(jobs: list, every: float = 5.0) -> int:
    """Echo the runs the jobs start and their repairs and resumes, from their logs, until they all
    finish; returns how many cached stages they built."""
    seen = {(k, stream): 0 for k in range(len(jobs)) for stream in ("stdout", "stderr")}
    while True:
        done = all(job.done() for job in jobs)
        for (k, stream), n in seen.items():
            lines = [line for line in _lines(jobs[k], stream) if line.startswith(NOTICES)]
            for line in lines[n:]:
                print(line if line.startswith("[fanout ") else f"[fanout {k}/{len(jobs)}] {line}", flush=True)
            seen[k, stream] = len(lines)
        if done:
            return sum(line.startswith("[cache] built ") for job in jobs for line in _lines(job, "stderr"))
        time.sleep(every)


def _exit(signum, frame):
    raise SystemExit(128 + signum)


def submit_waves(profile: str, overrides: dict, jobs: int, executor: str = "local",
                 folder: str | os.PathLike | None = None, waves: tuple[str, ...] = ("prepare", *JOBS),
                 threads: int = 1, slurm: dict | None = None,
                 timings: dict[str, float] | None = None) -> dict[str, list[str]]:
    """Every wave in order through submitit: `prepare` as one job, each other wave as `jobs` jobs
    (a Slurm job array, or local processes), each building one shard with `threads` threads
    (`prepare`, one job, gets `lib.config.PREPARE_THREADS`);
    a wave starts when the previous one has finished. Returns the runs each wave built; with
    `timings`, also fills it with each wave's wall time in seconds."""
    folder = folder or cache_dir(profile) / "submitit"
    ex = submitit.AutoExecutor(folder=str(folder), cluster=executor)
    params = {"timeout_min": 24 * 60, "cpus_per_task": threads}
    if executor == "slurm":
        params |= {f"slurm_{k}": v for k, v in (slurm or {}).items() if k != "gpus_per_job" and v is not None}
        params["gpus_per_node"] = (slurm or {}).get("gpus_per_job", 0)
    ex.update_parameters(**params)
    # A `kill` (SIGTERM) stops the jobs too, as Ctrl-C does: submitit's workers ignore SIGTERM, and
    # left running they would go on writing into the cache.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit) if main_thread else None
    try:
        return _waves(ex, profile, overrides, jobs, waves, threads, timings)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _waves(ex, profile: str, overrides: dict, jobs: int, waves: tuple[str, ...], threads: int,
           timings: dict[str, float] | None) -> dict[str, list[str]]:
    built = {}
    for wave in waves:
        n, start = 1 if wave == "prepare" else jobs, time.perf_counter()
        per_job = PREPARE_THREADS if wave == "prepare" else threads  # its stages' own count
        ex.update_parameters(cpus_per_task=per_job)
        futures = ex.map_array(build_shard, [profile] * n, [overrides] * n, [wave] * n, list(range(n)),
                               [n] * n, [per_job] * n)
        try:
            new = _follow(futures)
        except BaseException:  # Ctrl-C, a kill or a failed job: stop the wave's other jobs too
            for f in futures:
                f.cancel(check=False)
            raise
        built[wave] = [name for f in futures for name in f.result()]
        if timings is not None:
            timings[wave] = time.perf_counter() - start
        print(f"[fanout] wave {wave}: {len(built[wave])} runs in {n} job(s), "
              f"{new} stage{'s' * (new != 1)} built", flush=True)
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("prepare", *JOBS, "all"),
                        help="a wave, or all of them in order (with --executor)")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override")
    parser.add_argument("--shard", default="0/1", help="i/N: build the i-th of N shares in this process")
    parser.add_argument("--executor", choices=("local", "slurm"), help="submit through submitit instead")
    parser.add_argument("--jobs", type=int, default=2, help="with --executor: jobs per wave")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPUs) per job")
    parser.add_argument("--partition", help="Slurm partition")
    parser.add_argument("--gpus-per-job", type=int, default=1, help="Slurm GPUs per job")
    parser.add_argument("--time", type=int, default=24 * 60, help="Slurm time limit per job, minutes")
    args = parser.parse_args(argv)

    try:
        i, n = parse_shard(args.shard)
        overrides = parse_set(args.set)
        get_profile(args.profile, overrides)
    except ValueError as err:
        parser.error(str(err))
    if args.executor:
        waves = ("prepare", *JOBS) if args.stage == "all" else (args.stage,)
        submit_waves(args.profile, overrides, args.jobs, args.executor, waves=waves, threads=args.threads,
                     slurm={"partition": args.partition, "gpus_per_job": args.gpus_per_job,
                            "timeout_min": args.time})
        return 0
    if args.stage == "all":
        parser.error("'all' runs the waves through an executor: add --executor local or slurm")
    build_shard(args.profile, overrides, args.stage, i, n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
