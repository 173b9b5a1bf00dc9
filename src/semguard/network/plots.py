"""Figures for the network experiments (matplotlib, Agg backend, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["bar_plot", "line_plot"]


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
    return _save(fig, path)


def bar_plot(values: dict[str, dict[str, float]], path: str | Path, *, title: str = "") -> Path:
    """One panel per metric (``metric -> {label: value}``), bars per label; writes ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(values), figsize=(3.2 * len(values), 3.4))
    axes = [axes] if len(values) == 1 else list(axes)
    for ax, (metric, d) in zip(axes, values.items()):
        ax.bar(range(len(d)), [0.0 if v is None else v for v in d.values()])
        ax.set_xticks(range(len(d)), list(d), rotation=60, ha="right", fontsize=7)
        ax.set_title(metric, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    """Lay out, write ``path`` (its folder made if missing) at 120 dpi, close the figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
