"""Result files: `claims.json` (every claim a notebook tests, with its verdict),
`benchmarks.json` (performance numbers) and the `REPORT.md` that gathers claims and figures."""

from __future__ import annotations

import json
import math
import os
import platform
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from lib import config
from lib.config import results_dir
from lib.measure.stats import CI_KINDS, DIRECTIONS, Estimate, fmt, verdict
from lib.report.paper import PAPER_RESULTS

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

CLAIM_KEYS = ("id", "paper", "figure", "claim", "metric", "value", "ci", "ci_kind", "threshold",
              "direction", "verdict", "holds", "n", "seeds", "notebook", "profile")
BENCH_KEYS = ("name", "ours", "baseline", "ratio", "unit", "device", "profile")
# Claims measured in wall-clock time: the only ones whose values differ between two runs.
TIMED_CLAIMS = frozenset({"warm-cost-flat"})


def _cell(text: Any) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|")


def _read(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.exists() else []


def claims_of(results: Path) -> list[dict]:
    """The claims recorded in `results/claims.json` (an empty list before the first)."""
    return _read(Path(results) / "claims.json")


@contextmanager
def _locked(folder: Path):
    """Hold an exclusive lock on `folder` around a read-modify-write of one of its records (two
    notebooks may record claims at once); a no-op where `fcntl` does not exist (Windows)."""
    if fcntl is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _write(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(rows, indent=1) + "\n")
    os.replace(tmp, path)


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


class ClaimError(ValueError):
    """A claim record that cannot be written (a missing field, an empty evaluation set, a bad
    interval or direction); the message names the claim and the field."""


def check_claim(row: dict) -> dict:
    """Validate one claim record; returns it. Raises `ClaimError` naming the claim and the field."""
    name = row.get("id", "<no id>")
    missing = [k for k in CLAIM_KEYS if k not in row]
    if missing:
        raise ClaimError(f"claim {name!r}: missing field {missing[0]!r} (a claim needs "
                         f"{', '.join(CLAIM_KEYS)})")
    ci = row["ci"]
    if not (isinstance(ci, (list, tuple)) and len(ci) == 2 and all(
            isinstance(x, (int, float)) and math.isfinite(x) for x in ci)):
        raise ClaimError(f"claim {name!r}: field 'ci' must be a finite [low, high], got {ci!r}")
    if ci[0] > ci[1]:
        raise ClaimError(f"claim {name!r}: field 'ci' has low {ci[0]} > high {ci[1]}")
    if row["ci_kind"] not in CI_KINDS:
        raise ClaimError(f"claim {name!r}: field 'ci_kind' must be one of {', '.join(CI_KINDS)}, "
                         f"got {row['ci_kind']!r}")
    if row["direction"] not in DIRECTIONS:
        raise ClaimError(f"claim {name!r}: field 'direction' must be '>' or '<', got "
                         f"{row['direction']!r}")
    if not isinstance(row["n"], int) or row["n"] < 1:
        raise ClaimError(f"claim {name!r}: field 'n' must count at least one evaluation item "
                         f"(an empty evaluation set decides nothing), got {row['n']!r}")
    if not isinstance(row["seeds"], int) or row["seeds"] < 1:
        raise ClaimError(f"claim {name!r}: field 'seeds' must be ≥ 1, got {row['seeds']!r}")
    if row["verdict"] != verdict(ci, row["threshold"], row["direction"]):
        raise ClaimError(f"claim {name!r}: field 'verdict' is {row['verdict']!r} but the interval "
                         f"{ci} against {row['direction']} {row['threshold']} gives "
                         f"{verdict(ci, row['threshold'], row['direction'])!r}")
    if row["holds"] != (row["verdict"] == "holds"):
        raise ClaimError(f"claim {name!r}: field 'holds' must equal verdict == 'holds'")
    return row


def record_claim(results: Path, *, id: str, paper: str, figure: str, claim: str, metric: str,
                 estimate: Estimate, threshold: float, direction: str, notebook: str,
                 profile: str) -> dict:
    """Insert or replace the claim `id` of `profile` in `results/claims.json`, with its interval
    and its three-way verdict (`lib.measure.stats.verdict`). Nothing is written for a bad record."""
    if not isinstance(estimate, Estimate):
        raise ClaimError(f"claim {id!r}: field 'estimate' must be a lib.measure.stats.Estimate, got "
                         f"{type(estimate).__name__}")
    if estimate.n < 1:
        raise ClaimError(f"claim {id!r}: field 'n' must count at least one evaluation item")
    if direction not in DIRECTIONS:
        raise ClaimError(f"claim {id!r}: field 'direction' must be '>' or '<', got {direction!r}")
    ci = [_clean(float(estimate.ci[0])), _clean(float(estimate.ci[1]))]
    if None in ci or ci[0] > ci[1]:
        raise ClaimError(f"claim {id!r}: field 'ci' must be a finite [low, high], got {list(estimate.ci)}")
    call = verdict(ci, threshold, direction)
    row = {"id": id, "paper": paper, "figure": figure, "claim": claim, "metric": metric,
           "value": _clean(estimate.value), "ci": ci, "ci_kind": estimate.kind,
           "threshold": threshold, "direction": direction, "verdict": call,
           "holds": call == "holds", "n": int(estimate.n), "seeds": int(estimate.seeds),
           "notebook": notebook, "profile": profile}
    check_claim(row)
    path = Path(results) / "claims.json"
    with _locked(path.parent):
        rows = [r for r in _read(path) if (r["id"], r["profile"]) != (id, profile)] + [row]
        _write(path, sorted(rows, key=lambda r: (r["notebook"], r["id"])))
    return row


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({os.cpu_count()} cores, {platform.machine()})"


def record_benchmark(results: Path, *, name: str, ours: float, baseline: float | None, unit: str,
                     profile: str, device: str | None = None) -> dict:
    """Insert or replace the benchmark `name` (per profile and device); ratio = ours / baseline."""
    device = device or device_name()
    ratio = ours / baseline if baseline else None
    row = {"name": name, "ours": _clean(float(ours)), "baseline": _clean(baseline),
           "ratio": _clean(ratio), "unit": unit, "device": device, "profile": profile}
    path = Path(results) / "benchmarks.json"
    with _locked(path.parent):
        rows = [r for r in _read(path) if (r["name"], r["profile"], r["device"]) != (name, profile, device)]
        _write(path, sorted(rows + [row], key=lambda r: (r["profile"], r["name"])))
    return row


def _claim_cells(c: dict) -> tuple[str, str, str]:
    """The measured value, its interval (kind, items, seeds) and the verdict, for tables."""
    value = fmt(c["value"]) if isinstance(c["value"], float) else str(c["value"])
    seeds = f", {c['seeds']} seeds" if c["seeds"] > 1 else ""
    interval = f"[{fmt(c['ci'][0])}, {fmt(c['ci'][1])}] ({c['ci_kind']}, n={c['n']}{seeds})"
    call = {"holds": "holds", "fails": "**fails**", "inconclusive": "*inconclusive*"}[c["verdict"]]
    return value, interval, f"{call} ({c['direction']} {c['threshold']:g})"


def tally(claims: list[dict]) -> str:
    """'H hold, F fail, I inconclusive of T'."""
    count = {v: sum(c["verdict"] == v for c in claims) for v in ("holds", "fails", "inconclusive")}
    return (f"{count['holds']} hold, {count['fails']} fail, {count['inconclusive']} inconclusive "
            f"of {len(claims)}")


SMOKE_CAVEAT = ("**Smoke profile: a plumbing check on models too small to learn anything. Its figures are "
                "flat and its verdicts mean nothing; the `default` profile (`results/`) shows the science.**")


def write_report(results: Path) -> Path:
    """`REPORT.md`: the claims table, the benchmarks and every figure under `results/figures`; a
    smoke report opens with the caveat that its verdicts mean nothing."""
    results = Path(results)
    claims = [check_claim(c) for c in _read(results / "claims.json")]
    benches = _read(results / "benchmarks.json")
    smoke = any(row["profile"] == "smoke" for row in claims + benches)
    lines = ["# Report", "", *([SMOKE_CAVEAT, ""] if smoke else []),
             "Generated from `claims.json`, `benchmarks.json` and `figures/` by `python -m lib.report.results`. "
             "Do not edit by hand.", "", "## Claims", "",
             "The papers' results are at their scale (PaLM-XXS/XS reward models and policies for "
             "WARM, Gemma 7B for WARP) and ours at the profile's, so the verdicts compare "
             "directions, not magnitudes. Each measured value has a 95% interval (bootstrap over "
             "evaluation items, across seeds, or both: nested); a claim holds if the whole "
             "interval is on the paper's side of the threshold, fails if it is wholly on the "
             "other side, and is inconclusive otherwise.", "", f"**{tally(claims)}.**", "",
             "| notebook | claim | paper | measured | 95% interval | verdict (threshold) |",
             "|---|---|---|---|---|---|"]
    for c in claims:
        value, interval, call = _claim_cells(c)
        paper = f"{c['paper']}, {c['figure']}: {PAPER_RESULTS.get(c['id'], '—')}"
        lines.append(f"| {c['notebook']} | {_cell(c['claim'])} | {_cell(paper)} | "
                     f"{_cell(c['metric'])}: {value} | {interval} | {call} |")
    lines += ["", "## Benchmarks", "",
              "| name | ours | baseline | ratio | unit | device | profile |",
              "|---|---|---|---|---|---|---|"]
    for b in benches:
        lines.append(f"| {b['name']} | {_fmt(b['ours'])} | {_fmt(b['baseline'])} | {_fmt(b['ratio'])} "
                     f"| {b['unit']} | {b['device']} | {b['profile']} |")
    lines += ["", "## Figures", ""]
    for png in sorted((results / "figures").glob("*.png")):
        lines += [f"### {png.stem}", "", f"![{png.stem}](figures/{png.name})", ""]
    path = results / "REPORT.md"
    path.write_text("\n".join(lines) + "\n")
    _update_readme(results, claims)
    return path


README_BLOCK = ("<!-- claims:start -->", "<!-- claims:end -->")
# The claims the README's one generated block shows (at most 10): the papers' headline results,
# WARM's premises and method first, then best-of-N, RL and WARP. The rest are in REPORT.md.
HEADLINE = ("warm-lmc", "warm-wa-approx-ens", "warm-less-memorization", "warm-m-beats-best-single",
            "warm-bon-beats-ens-equal-n", "warm-bon-beats-single-and-ens-clean",
            "rl-warm-delays-hacking", "rl-warm-wins-vs-phi1", "warp-liti-front-dominates",
            "warp-wins-at-matched-kl")


def _fmt(v: Any) -> str:
    return "" if v is None else (fmt(v) if isinstance(v, float) else str(v))


def _update_readme(results: Path, claims: list[dict]) -> None:
    """Refresh the README's one generated block, the tally and the headline claims, from the
    committed (`default`) results."""

    readme = config.ROOT / "README.md"  # read at call time: tests point it elsewhere
    if results.resolve() != (config.ROOT / "results").resolve() or not readme.exists():
        return
    default = {c["id"]: c for c in claims if c["profile"] == "default"}
    rows = [f"**{tally(list(default.values()))}** (`default` profile; every claim, with the "
            "papers' numbers beside ours, in [`results/REPORT.md`](results/REPORT.md)).", "",
            "| claim | paper, figure | measured | 95% interval | verdict |", "|---|---|---|---|---|"]
    for key in HEADLINE:
        if key in default:
            c = default[key]
            value, interval, call = _claim_cells(c)
            rows.append(f"| `{c['id']}`: {_cell(c['claim'])} | {c['paper']}, {c['figure']} | "
                        f"{_cell(c['metric'])}: {value} | {interval} | {call} |")
    text = readme.read_text()
    start, end = README_BLOCK
    if start in text and end in text:
        head, rest = text.split(start, 1)
        readme.write_text(head + start + "\n" + "\n".join(rows) + "\n" + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write results/REPORT.md")
    parser.add_argument("--profile", default="default")
    print(write_report(results_dir(parser.parse_args().profile)))
