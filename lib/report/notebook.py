"""What every chapter (notebook) starts from: its pipeline, where its results go, and one-line
helpers to record a claim or a benchmark and to save a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from lib.config import results_dir
from lib.measure.stats import Estimate, fmt
from lib.pipeline import Pipeline
from lib.profiles import parse_overrides
from lib.report.plots import save_figure
from lib.report.results import claims_of, record_benchmark, record_claim
from lib.rm.control import ControlRM


def printable(text: str) -> str:
    """A sample as a reader can see it: the replacement characters of a decoded broken byte sequence
    and control characters (a tiny model's samples have both) shown as '?'."""
    return "".join("?" if ch == "\ufffd" or (not ch.isprintable() and ch not in " \n") else ch for ch in text)


class Chapter:
    """Notebook `number` on `profile` with `overrides` (a dict, or its JSON text)."""

    def __init__(self, number: str, profile: str = "default", overrides: dict | str | None = None):
        self.number = number
        self.pl = Pipeline(profile, parse_overrides(overrides), gold_rm=ControlRM)
        self.P = self.pl.profile
        self.results: Path = results_dir(self.P)
        if self.P.name == "smoke":
            print("smoke profile: a plumbing check on models too small to learn anything. Curves are "
                  "flat and verdicts meaningless here; the `default` profile shows the science.")

    def claim(self, *, id: str, paper: str, figure: str, claim: str, metric: str,
              estimate: Estimate, threshold: float, direction: str) -> dict:
        """Record a claim with its interval and three-way verdict; prints one line."""
        row = record_claim(self.results, id=id, paper=paper, figure=figure, claim=claim,
                           metric=metric, estimate=estimate, threshold=threshold,
                           direction=direction, notebook=self.number, profile=self.P.name)
        print(f"{id}: {estimate:.4g} → {row['verdict']} ({direction} {threshold:g})")
        return row

    def benchmark(self, *, name: str, ours: float, baseline: float | None, unit: str) -> dict:
        return record_benchmark(self.results, name=name, ours=ours, baseline=baseline, unit=unit,
                                profile=self.P.name)

    def save(self, fig: plt.Figure, name: str) -> Path:
        if self.P.name == "smoke":  # a flat smoke figure must not pass for a result
            fig.suptitle("smoke profile: a plumbing check, not a result (run `default` for the science)",
                         fontsize=9, color="C3")
        return save_figure(fig, name, self.results)

    def verdicts(self):
        """This chapter's claims, grouped by verdict, as Markdown: what held decisively, what
        failed, and what the data cannot decide at this scale (intervals straddling the threshold)."""
        from IPython.display import Markdown

        mine = [c for c in claims_of(self.results) if c["notebook"] == self.number and c["profile"] == self.P.name]
        lines = []
        for verdict, title in (("holds", "Held decisively"), ("fails", "Failed"),
                               ("inconclusive", "Not decided at this scale")):
            rows = [c for c in mine if c["verdict"] == verdict]
            lines.append(f"**{title}** ({len(rows)}):" + ("" if rows else " none."))
            lines += [f"- {c['claim']}: {fmt(c['value'], '.3g')} [{fmt(c['ci'][0], '.3g')}, {fmt(c['ci'][1], '.3g')}] "
                      f"(threshold {c['direction']} {c['threshold']:g}; `{c['id']}`)" for c in rows]
        return Markdown("\n".join(lines))

    def describe(self) -> dict[str, Any]:
        return {"profile": self.P.name, "results": str(self.results), "cache": str(self.pl.cache.root)}
