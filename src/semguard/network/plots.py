"""Figures for the network experiments (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["line_plot"]


def line_plot(series: dict[str, tuple[Sequence[float], Sequence[float]]], path: str | Path, *, xlabel: str,
              ylabel: str, title: str = "", hline: float | None = None) -> Path:
    """One line per ``name -> (xs, ys)``; writes ``path`` (PNG) and returns it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, (xs, ys) in series.items():
        ax.plot(list(xs), [float("nan") if y is None else y for y in ys], marker="o", ms=3, label=name)
    if hline is not None:
        ax.axhline(hline, color="grey", ls=":", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
