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
    # No creation dates: a rerun that changes no number leaves the files byte-identical.
    fig.savefig(out / f"{name}.png", bbox_inches="tight", metadata={"Software": None})
    fig.savefig(out / f"{name}.pdf", bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
    return out / f"{name}.png"


setup_style()


def line_with_band(ax: plt.Axes, x, value, low, high, label: str | None = None, color=None,
                   style: str = "o-", alpha: float = 0.18, **kwargs) -> None:
    """A curve and its 95% interval as a shaded band (seeds and/or bootstrap, as the caller says)."""
    (line,) = ax.plot(x, value, style, ms=3, color=color, label=label, **kwargs)
    ax.fill_between(x, low, high, color=line.get_color(), alpha=alpha, linewidth=0)
