"""Execute the numbered notebooks with papermill: `python -m lib.runner --profile smoke`.

Stops at the first failing notebook, names it and the failing cell, and exits non-zero. The
executed copies go to `<results>/executed/`; wall times go to `benchmarks.json`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .config import PROFILES, ROOT, cache_dir, get_profile, results_dir
from .cache import ArtifactCache
from .results import record_benchmark, write_report

NOTEBOOKS = ROOT / "notebooks"
# Wall-time targets in seconds (issues' "Targets") for a run that starts from an empty cache;
# None where no target is set.
TARGETS = {("smoke", "00"): 30, ("default", "00"): 300, ("default", "01+02"): 600,
           ("default", "all"): 2400}


def notebooks(only: list[str] | None = None) -> list[Path]:
    """Numbered notebooks in order, optionally only those whose number is in `only`."""
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        unknown = set(only) - {p.name[:2] for p in found}
        if unknown:
            raise SystemExit(f"error: no notebook numbered {sorted(unknown)}; have "
                             f"{[p.name[:2] for p in found]}")
        found = [p for p in found if p.name[:2] in only]
    return found


def run_notebook(path: Path, profile: str, out_dir: Path, overrides: dict | None = None) -> float:
    """Execute one notebook with papermill (`overrides`: its dotted config keys); returns seconds;
    raises on a failing cell."""
    import papermill as pm

    start = time.perf_counter()
    parameters = {"profile": profile, **({"overrides": overrides} if overrides else {})}
    pm.execute_notebook(str(path), str(out_dir / path.name), parameters=parameters,
                        cwd=str(NOTEBOOKS), kernel_name="python3", progress_bar=False,
                        log_output=False, request_save_on_cell_execute=False)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default", help=f"one of {', '.join(PROFILES)}")
    parser.add_argument("--only", nargs="*", help="notebook numbers to run, e.g. --only 00 02")
    parser.add_argument("--fresh", action="store_true", help="delete the profile's cache first")
    args = parser.parse_args(argv)
    try:
        profile = get_profile(args.profile)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from papermill.exceptions import PapermillExecutionError

    cache = ArtifactCache(cache_dir(profile))
    if args.fresh:
        print(f"[run] --fresh: deleting the cache {cache.root}")
        cache.clear()
    results = results_dir(profile)
    out_dir = results / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    selected = notebooks(args.only)
    empty = not cache.root.exists() or not any(cache.root.iterdir())
    state = "in a run from an empty cache" if empty else "cache present"
    times: dict[str, float] = {}
    for i, nb in enumerate(selected, 1):
        print(f"[run] ({i}/{len(selected)}) {nb.name} on profile {profile.name} ...", flush=True)
        try:
            seconds = run_notebook(nb, profile.name, out_dir)
        except PapermillExecutionError as err:
            print(f"[run] FAILED: {nb.name}, cell {err.cell_index} (execution count "
                  f"{err.exec_count}): {err.ename}: {err.evalue}\n"
                  f"[run] the executed notebook with the traceback: {out_dir / nb.name}",
                  file=sys.stderr)
            return 1
        number = nb.name[:2]
        times[number] = seconds
        record_benchmark(results, name=f"notebook {number} wall time ({state})", ours=seconds,
                         baseline=TARGETS.get((profile.name, number)) if empty else None,
                         unit="s", profile=profile.name)
        print(f"[run] done {nb.name} in {seconds:.0f} s ({state})", flush=True)
    if empty:  # the issues' targets on groups of notebooks, measured in one run from scratch
        groups = {"01+02": ["01", "02"], "all": [p.name[:2] for p in notebooks()]}
        for group, members in groups.items():
            if all(n in times for n in members):
                record_benchmark(results, name=f"notebooks {group} wall time ({state})",
                                 ours=sum(times[n] for n in members),
                                 baseline=TARGETS.get((profile.name, group)), unit="s",
                                 profile=profile.name)
    print(f"[run] report: {write_report(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
