"""Is φ1 hacked within an RL run at a given setting? The probe behind docs/rl-regime.md.

    python -m benchmarks.hacking_probe [--profile default] [--preset NAME] [--set KEY=VALUE ...]
        --run steps=100,lr=2e-4 [--run ...] [--jobs 2] [--record LABEL]

WARM's RL claims (its Fig. 1b, 8) compare policies in the regime where RL against one RM hacks it:
the gold reward rises, peaks, then falls while the proxy keeps rising. This probe trains pool 0's
members (cached stages of the profile, built `--jobs` at a time), ranks them as the chapters do,
and runs RL against φ1 once per `--run` (the profile's `rl.run` with those fields replaced, e.g.
`steps=150,beta=0.05`), each a cached stage too. For each run it prints gold, proxy and KL to SFT
at every eval step and the hacking detector's verdict (`lib.report.analysis.hacking`). With
`--record` each run becomes a row of docs/rl-regime-rows.jsonl.

It reads φ1 alone, never WARM or ENS: the RL regime is chosen on the single RM's curve, as the
substrate is chosen on the premises and the single-RM numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from benchmarks.substrate_probe import _build_one, _commit
from lib.config import ROOT
from lib.pipeline import Pipeline
from lib.plans import Run
from lib.profiles import get_profile, parse_set
from lib.report.analysis import hacking, per_prompt
from lib.rl.runs import RLRuns
from lib.rm.control import ControlRM
from lib.rm.pool import RewardModels

ROWS = ROOT / "docs" / "rl-regime-rows.jsonl"


def parse_run(spec: str) -> dict:
    """`steps=150,lr=2e-4` → {"rl.run.steps": 150, "rl.run.lr": 0.0002}: overrides of the profile's
    `rl.run`, values as `--set` reads them."""
    return parse_set([f"rl.run.{kv}" for kv in spec.split(",") if kv])


def fields(spec: dict) -> dict:
    """The `RLConfig` fields a `parse_run` spec replaces: {"steps": 150, "lr": 0.0002}."""
    return {k.removeprefix("rl.run."): v for k, v in spec.items()}


def probe(profile: str, overrides: dict, runs: list[dict], jobs: int = 2) -> list[dict]:
    pl = Pipeline(profile, overrides, gold_rm=ControlRM)
    rms = RewardModels(pl)
    _ = pl.comparisons  # world, tokenizer, pre-training, SFT, pairs: before the RMs' processes
    n = len(rms.pool(0.0, 0))
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as ex:
        list(ex.map(_build_one, [profile] * n, [overrides] * n, range(n)))
    phi1 = rms.ranked(0.0, 0)[0]
    rl = RLRuns(pl, rms)
    out = []
    for spec in runs:
        cfg = dataclasses.replace(pl.profile.rl.run, **fields(spec))
        started = time.perf_counter()
        h = rl.history(rl.run(Run((phi1,), cfg), desc=f"φ1 {fields(spec)}"))
        seconds = time.perf_counter() - started
        gold = per_prompt(h, len(rl.eval_prompts))
        found = hacking(gold, h["eval_proxy"])
        fall = found["fall"]
        out.append({"profile": profile, "overrides": overrides, "run": fields(spec),
                    "phi1 seed": phi1.seed, "eval_step": list(map(int, h["eval_step"])),
                    "gold": [round(float(g), 3) for g in h["eval_gold"]],
                    "proxy": [round(float(p), 3) for p in h["eval_proxy"]],
                    "kl": [round(float(k), 3) for k in h["eval_kl_init"]],
                    "peak step": int(h["eval_step"][found["peak"]]),
                    "final − peak gold": [round(fall.value, 3), round(fall.ci[0], 3), round(fall.ci[1], 3)],
                    "proxy rise after peak": round(found["proxy_rise"], 3), "hacked": found["hacked"],
                    "seconds": round(seconds, 1)})
        print(json.dumps(out[-1], ensure_ascii=False), flush=True)
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--preset", metavar="NAME", help="a named set of overrides (lib.profiles.PRESETS)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override")
    parser.add_argument("--run", action="append", default=[], metavar="FIELD=VALUE,...",
                        help="an RL run against φ1: fields of rl.run to replace (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="processes that train pool 0's RMs")
    parser.add_argument("--record", metavar="LABEL", help="add each run, named LABEL, to docs/rl-regime-rows.jsonl")
    args = parser.parse_args(argv)
    try:
        overrides = {**({"preset": args.preset} if args.preset else {}), **parse_set(args.set)}
        runs = [parse_run(r) for r in args.run] or [{}]
        for spec in runs:
            get_profile(args.profile, {**overrides, **spec})
        if args.jobs < 1:
            raise ValueError(f"--jobs must be ≥ 1, got {args.jobs}")
    except ValueError as err:
        parser.exit(2, f"hacking_probe: error: {err}\n")
    commit = _commit()
    rows = probe(args.profile, overrides, runs, args.jobs)
    if args.record:
        with open(ROWS, "a") as f:
            for row in rows:
                f.write(json.dumps({"label": args.record, "commit": commit, **row}, ensure_ascii=False) + "\n")
    return rows


if __name__ == "__main__":
    main()
