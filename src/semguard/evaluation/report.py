"""Tables and plots of records (the CLI prints the table; the plot is a PNG)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from semguard.evaluation.records import Record
from semguard.evaluation.stats import Gap, paired_gap

__all__ = ["variant", "pivot", "format_table", "plot_fidelity", "gaps", "format_gaps"]


def variant(record: Record) -> str:
    """The codec's row label: its name, plus the attack, budget and defence of a robustness record
    (``switched-cbr1_6 pgd -10dB``), so records that differ only in those never share a cell."""
    c = record.config
    parts = [record.codec]
    if c.get("attack"):
        parts.append(str(c["attack"]))
    if c.get("psr_db") is not None and c.get("attack"):
        parts.append(f"{float(c['psr_db']):g}dB")
    if c.get("defense"):
        parts.append(f"+{c['defense']}")
    return " ".join(parts)


def pivot(records: Sequence[Record], metric: str) -> dict[tuple[str, str], dict[float, float]]:
    """``{(row label, channel): {snr_db: value}}`` for one metric (row label: :func:`variant`).

    Raises ``ValueError`` if two records would fill one cell: a table never silently keeps one."""
    table: dict[tuple[str, str], dict[float, float]] = defaultdict(dict)
    for r in records:
        if r.metric == metric:
            row = table[(variant(r), r.channel)]
            if r.snr_db in row:
                raise ValueError(f"two {metric} records for {variant(r)} / {r.channel} at {r.snr_db:g} dB")
            row[r.snr_db] = r.value
    return dict(table)


def format_table(records: Sequence[Record], metric: str, fmt: str = "{:6.2f}") -> str:
    """A plain-text table: one row per (codec, channel), one column per SNR."""
    table = pivot(records, metric)
    if not table:
        return ""
    snrs = sorted({s for row in table.values() for s in row})
    head = f"{metric:<36}" + "".join(f"{s:>8g}dB" for s in snrs)
    lines = [head, "-" * len(head)]
    for (codec, channel), row in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        cells = "".join(f"{fmt.format(row[s]):>10}" if s in row else f"{'-':>10}" for s in snrs)
        lines.append(f"{codec + ' / ' + channel:<36}{cells}")
    return "\n".join(lines)


def gaps(records: Sequence[Record], ours: str, references: Sequence[str], *, metric: str = "psnr",
         reference_metric: str | None = None, level: float = 0.95) -> dict[str, dict[float, Gap]]:
    """``{channel: {snr_db: Gap}}``: ``ours`` minus the best of ``references`` at each channel and
    SNR (the reference with the highest mean ``reference_metric``, default ``metric``), paired
    image by image when both records carry their samples (otherwise the difference of the means,
    with a ``nan`` interval).  Channels or SNRs that miss either side are left out."""
    ref_metric = reference_metric or metric
    mine = {(r.channel, r.snr_db): r for r in records if r.codec == ours and r.metric == metric}
    theirs: dict[tuple[str, float], Record] = {}
    for r in records:
        if r.codec in references and r.metric == ref_metric:
            best = theirs.get((r.channel, r.snr_db))
            if best is None or r.value > best.value:
                theirs[(r.channel, r.snr_db)] = r
    out: dict[str, dict[float, Gap]] = defaultdict(dict)
    for key in sorted(mine.keys() & theirs.keys()):
        a, b = mine[key], theirs[key]
        draws = int(a.config.get("realizations", 1))
        if a.samples is not None and b.samples is not None and len(a.samples) == len(b.samples):
            out[key[0]][key[1]] = paired_gap(a.samples, b.samples, draws=draws, level=level)
        else:
            out[key[0]][key[1]] = Gap(a.value - b.value, float("nan"), 0, level)
    return dict(out)


def format_gaps(table: dict[str, dict[float, Gap]], title: str) -> str:
    """A plain-text table of gaps under ``title``: ``mean ± half-width`` per SNR, one row per channel."""
    if not table:
        return ""
    snrs = sorted({s for row in table.values() for s in row})
    head = f"{'gap (dB)':<16}" + "".join(f"{s:>11g}dB" for s in snrs)
    lines = [title, head, "-" * len(head)]
    for channel, row in sorted(table.items()):
        cells = []
        for s in snrs:
            g = row.get(s)
            if g is None:
                cells.append("-")
            elif math.isnan(g.half_width):
                cells.append(f"{g.mean:+.2f}")
            else:
                cells.append(f"{g.mean:+.2f}±{g.half_width:.2f}")
        lines.append(f"{channel:<16}" + "".join(f"{c:>13}" for c in cells))
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
