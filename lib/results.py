"""Result files: `claims.json` (every claim a notebook tests, with its verdict),
`benchmarks.json` (performance numbers) and the `REPORT.md` that gathers claims and figures."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any

import torch

from .paper import PAPER_RESULTS

CLAIM_KEYS = ("id", "paper", "figure", "claim", "metric", "value", "holds", "notebook", "profile")
BENCH_KEYS = ("name", "ours", "baseline", "ratio", "unit", "device", "profile")
# Claims measured in wall-clock time: the only ones whose values differ between two runs.
TIMED_CLAIMS = frozenset({"warm-cost-flat"})


def _cell(text: Any) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|")


def _read(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.exists() else []


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


def record_claim(results: Path, *, id: str, paper: str, figure: str, claim: str, metric: str,
                 value: Any, holds: bool, notebook: str, profile: str) -> dict:
    """Insert or replace the claim `id` of `profile` in `results/claims.json`."""
    row = {"id": id, "paper": paper, "figure": figure, "claim": claim, "metric": metric,
           "value": _clean(value), "holds": bool(holds), "notebook": notebook, "profile": profile}
    path = Path(results) / "claims.json"
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
    rows = [r for r in _read(path) if (r["name"], r["profile"], r["device"]) != (name, profile, device)]
    _write(path, sorted(rows + [row], key=lambda r: (r["profile"], r["name"])))
    return row


def write_report(results: Path) -> Path:
    """`REPORT.md`: the claims table, the benchmarks and every figure under `results/figures`."""
    results = Path(results)
    claims, benches = _read(results / "claims.json"), _read(results / "benchmarks.json")
    lines = ["# Report", "", "Generated from `claims.json`, `benchmarks.json` and `figures/` "
             "by `python -m lib.results`. Do not edit by hand.", "", "## Claims", "",
             "The papers' results are at their scale (PaLM-XXS/XS reward models and policies for "
             "WARM, Gemma 7B for WARP) and ours at the profile's, so the verdicts compare "
             "directions, not magnitudes.", "",
             "| notebook | claim | paper | ours | holds |",
             "|---|---|---|---|---|"]
    for c in claims:
        value = c["value"] if not isinstance(c["value"], float) else f"{c['value']:.4g}"
        paper = f"{c['paper']}, {c['figure']}: {PAPER_RESULTS.get(c['id'], '—')}"
        lines.append(f"| {c['notebook']} | {_cell(c['claim'])} | {_cell(paper)} | "
                     f"{_cell(c['metric'])}: {value} | {'yes' if c['holds'] else '**no**'} |")
    held = sum(c["holds"] for c in claims)
    lines += ["", f"{held} of {len(claims)} claims hold at this scale.", "", "## Benchmarks", "",
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
    _update_readme(results, claims, benches)
    return path


README_BLOCKS = {"claims": ("<!-- claims:start -->", "<!-- claims:end -->"),
                 "benchmarks": ("<!-- benchmarks:start -->", "<!-- benchmarks:end -->")}


def _fmt(v: Any) -> str:
    return "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))


def _update_readme(results: Path, claims: list[dict], benches: list[dict] | None = None) -> None:
    """Refresh the README's claims and benchmarks tables from the committed (`default`) results."""
    from .config import ROOT

    readme = ROOT / "README.md"
    if results.resolve() != (ROOT / "results").resolve() or not readme.exists():
        return
    claim_rows = ["| notebook | paper, figure | claim | measured | holds |", "|---|---|---|---|---|"]
    for c in claims:
        if c["profile"] != "default":
            continue
        value = f"{c['value']:.4g}" if isinstance(c["value"], float) else c["value"]
        claim_rows.append(f"| {c['notebook']} | {c['paper']}, {c['figure']} | {_cell(c['claim'])} | "
                          f"{_cell(c['metric'])}: {value} | {'yes' if c['holds'] else '**no**'} |")
    bench_rows = ["| benchmark | ours | baseline | ratio | unit | device |", "|---|---|---|---|---|---|"]
    for b in benches or []:
        if b["profile"] == "default":
            bench_rows.append(f"| {_cell(b['name'])} | {_fmt(b['ours'])} | {_fmt(b['baseline'])} | "
                              f"{_fmt(b['ratio'])} | {b['unit']} | {b['device']} |")
    text = readme.read_text()
    for block, rows in (("claims", claim_rows), ("benchmarks", bench_rows)):
        start, end = README_BLOCKS[block]
        if start not in text or end not in text:
            continue
        head, rest = text.split(start, 1)
        text = head + start + "\n" + "\n".join(rows) + "\n" + end + rest.split(end, 1)[1]
    readme.write_text(text)


if __name__ == "__main__":
    import argparse

    from .config import results_dir

    parser = argparse.ArgumentParser(description="Write results/REPORT.md")
    parser.add_argument("--profile", default="default")
    print(write_report(results_dir(parser.parse_args().profile)))
