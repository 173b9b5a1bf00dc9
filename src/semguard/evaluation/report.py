"""Tables and plots of records (the CLI prints the table; the plot is a PNG)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from semguard.evaluation.records import Record

__all__ = ["pivot", "format_table", "plot_fidelity"]


def pivot(records: Sequence[Record], metric: str) -> dict[tuple[str, str], dict[float, float]]:
    """``{(codec, channel): {snr_db: value}}`` for one metric."""
    table: dict[tuple[str, str], dict[float, float]] = defaultdict(dict)
    for r in records:
        if r.metric == metric:
            table[(r.codec, r.channel)][r.snr_db] = r.value
    return dict(table)


def format_table(records: Sequence[Record], metric: str, fmt: str = "{:6.2f}") -> str:
    """A plain-text table: one row per (codec, channel), one column per SNR."""
    table = pivot(records, metric)
    if not table:
        return ""
    snrs = sorted({s for row in table.values() for s in row})
    head = f"{metric:<28}" + "".join(f"{s:>8g}dB" for s in snrs)
    lines = [head, "-" * len(head)]
    for (codec, channel), row in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        cells = "".join(f"{fmt.format(row[s]):>10}" if s in row else f"{'-':>10}" for s in snrs)
        lines.append(f"{codec + ' / ' + channel:<28}{cells}")
    return "\n".join(lines)


def plot_fidelity(records: Sequence[Record], path: str | Path, title: str = "") -> Path:
    """PSNR vs SNR per channel (one panel each) and, if present, task accuracy vs SNR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    psnr = pivot(records, "psnr")
    expected = pivot(records, "psnr_expected")  # the fading link's AMC expectation, dashed
    acc = pivot(records, "accuracy")
    bleu = pivot(records, "bleu1")
    channels = sorted({ch for _, ch in psnr})
    panels = len(channels) + (1 if acc else 0) + (1 if bleu else 0)
    fig, axes = plt.subplots(1, max(panels, 1), figsize=(5 * max(panels, 1), 4), squeeze=False)
    for ax, ch in zip(axes[0], channels, strict=False):
        for (codec, c), row in sorted(psnr.items()):
            if c != ch:
                continue
            xs = sorted(row)
            line, = ax.plot(xs, [row[x] for x in xs], marker="o", label=codec)
            if (codec, c) in expected:
                ex = sorted(expected[(codec, c)])
                ax.plot(ex, [expected[(codec, c)][x] for x in ex], ls="--", color=line.get_color(),
                        label=f"{codec} (AMC expectation)")
        ax.set(title=f"{ch}", xlabel="SNR (dB)", ylabel="PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if bleu:
        ax = axes[0][-1]
        for (codec, ch), row in sorted(bleu.items()):
            xs = sorted(row)
            ax.plot(xs, [row[x] for x in xs], marker="^", label=f"{codec} / {ch}")
        ax.set(title="text: WordNet sentences", xlabel="SNR (dB)", ylabel="BLEU-1", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if acc:
        ax = axes[0][len(channels)]
        for (codec, ch), row in sorted(acc.items()):
            xs = sorted(row)
            ax.plot(xs, [100 * row[x] for x in xs], marker="s", label=f"{codec} / {ch}")
        ax.set(title="task: Fashion-MNIST", xlabel="SNR (dB)", ylabel="accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
