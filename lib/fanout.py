"""Fan independent runs out over processes, GPUs or cluster jobs; the notebooks then read them back.

The M reward models of a pool are independent given the shared stages (data, SFT, the probed
head), and the artifact cache is content-addressed with atomic renames, so any number of
processes can fill one cache, each building its own share:

    python -m lib.fanout --profile gpu prepare                  # once: data, SFT, shared heads
    for i in 0 1 2 3; do                                         # one process per GPU
        CUDA_VISIBLE_DEVICES=$i python -m lib.fanout --profile gpu rms --shard $i/4 &
    done; wait
    ./run_all.sh --profile gpu                                   # every RM is read from the cache

On a cluster, run `prepare` as one job and `rms --shard $i/N` as a job array of N jobs, with
`REPRO_CACHE_DIR` on a shared filesystem; the notebooks run after the array. Shard i of N builds
the runs whose index in `jobs` is i modulo N, so the union of the shards is every run, each
built once.
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
    parser.add_argument("stage", choices=("prepare", "rms"))
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
    mine = shard(rm_jobs(pl), i, n)
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "-")
    for name, build in mine:
        print(f"[fanout {i}/{n}, GPU {gpu}] {name}", flush=True)
        build()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
