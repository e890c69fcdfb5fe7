"""One figure style for every notebook: labelled axes, a colour-blind-safe palette, PNG + PDF."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

# Okabe & Ito (2008), safe for the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def setup_style() -> None:
    plt.rcParams.update({
        "figure.dpi": 110, "savefig.dpi": 150, "figure.figsize": (6.0, 4.0),
        "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
        "axes.spines.right": False, "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
        "legend.frameon": False, "font.size": 10, "figure.constrained_layout.use": True,
    })


def save_figure(fig: plt.Figure, name: str, results: Path) -> Path:
    """Write `results/figures/<name>.png` and `.pdf`; every axis must carry labels."""
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>" or not ax.has_data():
            continue
        if not ax.get_xlabel() or not ax.get_ylabel():
            raise ValueError(f"figure {name!r}: every axis needs an x and a y label")
    out = Path(results) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{name}.png", bbox_inches="tight")
    fig.savefig(out / f"{name}.pdf", bbox_inches="tight")
    return out / f"{name}.png"


setup_style()
