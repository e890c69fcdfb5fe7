"""Wall time of each notebook from an empty cache, recorded in the committed results/benchmarks.json.

    python -m benchmarks.notebook_times --profile smoke [--only 00 ...]

The cache and the notebook's own outputs go to a temporary directory, so committed figures and
claims are untouched; only the timing rows are written (per profile and device).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from lib.config import ROOT
from lib.profiles import get_profile
from lib.report.results import record_benchmark
from lib.runner import TARGETS, notebooks, run_notebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["REPRO_CACHE_DIR"] = str(Path(tmp) / "cache")
        os.environ["REPRO_RESULTS_DIR"] = str(Path(tmp) / "results")
        (Path(tmp) / "results").mkdir()
        for nb in notebooks(args.only):
            # Each notebook starts from an empty cache: the time includes every stage it needs.
            shutil.rmtree(Path(tmp) / "cache", ignore_errors=True)
            seconds, _ = run_notebook(nb, profile.name, Path(tmp) / "results")
            number = nb.name[:2]
            row = record_benchmark(ROOT / "results",
                                   name=f"notebook {number} wall time (alone, from an empty cache)",
                                   ours=seconds, baseline=TARGETS.get((profile.name, number)),
                                   unit="s", profile=profile.name)
            print(row)


if __name__ == "__main__":
    main()
