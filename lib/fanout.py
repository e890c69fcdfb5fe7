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
previous array, with `REPRO_CACHE_DIR` on a shared filesystem; the notebooks run last. Shard i of
N builds the runs whose index in the wave's job list is i modulo N, so the union of the shards is
every run, each built once.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable

from .config import get_profile
from .pipeline import Pipeline


def rm_jobs(pl: Pipeline) -> list[tuple[str, Callable[[], Any]]]:
    """Every RM of the clean and the corrupt pool (WARM §4), as (name, build) pairs."""
    from .rm import RewardModels

    rms = RewardModels(pl)
    return [(f"RM {cfg.seed} (corruption {c})", lambda cfg=cfg: rms.artifact(cfg))
            for c in (0.0, pl.profile.rm.corruption) for cfg in rms.pool(c)]


def rl_jobs(pl: Pipeline) -> list[tuple[str, Callable[[], Any]]]:
    """The RL runs that need only the RM pools: notebook 04's, WARP's stage 1 and first iteration."""
    from . import plans
    from .rl import RLRuns
    from .rm import RewardModels

    rms = RewardModels(pl)
    runs = RLRuns(pl, rms)
    named = [(f"RL {group} {name}", run) for group, by_name in plans.rl_with_warm(rms).items()
             for name, run in by_name.items()]
    named += [(f"WARP stage 1, {name}", run) for name, run in plans.warp_anchors(rms).items()]
    named += [(f"WARP iteration 1, run {m}", run)
              for m, run in enumerate(plans.warp_iteration(rms, 0, plans.warp_first_runs(pl.profile)))]
    unique = {}  # a run listed twice (e.g. the β sweep at the base β) is built once
    for name, (members, cfg, kind) in named:
        unique.setdefault(pl.cache.key("rl", runs.key(members, kind, cfg)), (name, (members, cfg, kind)))
    return [(name, lambda run=run, name=name: runs.run(*run, desc=name)) for name, run in unique.values()]


def warp2_jobs(pl: Pipeline) -> list[tuple[str, Callable[[], Any]]]:
    """WARP's second iteration: M runs from the LITI model of the first (which must be built)."""
    from . import plans
    from .rl import RLRuns
    from .rm import RewardModels

    rms = RewardModels(pl)
    runs = RLRuns(pl, rms)
    first = [runs.finished(*run) for run in plans.warp_iteration(rms, 0)]
    if any(art is None for art in first):
        raise SystemExit("warp2 starts from WARP's first iteration: build the `rl` wave first")
    merge = plans.warp_merge(runs, first)
    return [(f"WARP iteration 2, run {m}",
             lambda run=run, m=m: runs.run(*run, init=(merge["key"], merge["init"]),
                                           desc=f"WARP iteration 2, run {m}"))
            for m, run in enumerate(plans.warp_iteration(rms, 1))]


JOBS = {"rms": rm_jobs, "rl": rl_jobs, "warp2": warp2_jobs}


def prepare(pl: Pipeline) -> None:
    """The stages every run shares, built once before the runs fan out."""
    from .rm import RewardModels

    rms = RewardModels(pl)
    pl.sft_artifact()
    for c in (0.0, pl.profile.rm.corruption):
        rms.head(c)
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
    return jobs[i::n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("prepare", *JOBS))
    parser.add_argument("--profile", default="default")
    parser.add_argument("--shard", default="0/1", help="i/N: build the i-th of N shares")
    args = parser.parse_args(argv)
    try:
        i, n = parse_shard(args.shard)
    except ValueError as err:
        parser.error(str(err))
    pl = Pipeline(get_profile(args.profile))
    if args.stage == "prepare":
        prepare(pl)
        return 0
    mine = shard(JOBS[args.stage](pl), i, n)
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "-")
    for name, build in mine:
        print(f"[fanout {i}/{n}, GPU {gpu}] {name}", flush=True)
        build()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
