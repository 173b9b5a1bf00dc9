"""The main job's report: one self-contained HTML page (figures embedded as PNG data, no network at
view time), plus the same results as JSON and CSV.

Figures are drawn to be read: panels that compare share their axes, every panel has a title,
codecs whose lines coincide are told apart by marker and dash, and image fidelity carries its 95 %
interval over the photos (draws averaged per image first, as the gaps are).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


from semguard.evaluation.envelope import configurations, operating_region, pareto_front
from semguard.evaluation.records import Record
from semguard.evaluation.report import pivot
from semguard.evaluation.scenario import Scenario
from semguard.evaluation.stats import Gap, paired_gap

__all__ = ["write_report", "write_csv", "strict_json", "figure_fidelity", "figure_secrecy", "figure_envelope",
           "figure_robustness"]

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
DASHES = ("-", "--", "-.", ":")
FONT = 11


def strict_json(obj: Any) -> Any:
    """``obj`` with NaN and infinities as None (strict parsers such as jq reject bare NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    return obj


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": FONT, "axes.titlesize": FONT + 1, "legend.fontsize": FONT - 2})
    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _interval(samples: list[float] | None, draws: int) -> float:
    """95 % Student-t half-width over images of the per-image means (``samples`` draw-major)."""
    if not samples or draws < 1 or len(samples) % draws or len(samples) // draws < 2:
        return 0.0
    hw = paired_gap(samples, [0.0] * len(samples), draws=draws).half_width   # the gaps' own interval
    return 0.0 if math.isnan(hw) else hw


def figure_fidelity(records: Sequence[Record]) -> str | None:
    """PSNR against SNR, one panel per channel with a shared y axis, 95 % intervals drawn."""
    rows = [r for r in records if r.metric == "psnr" and r.samples]
    if not rows:
        return None
    plt = _plt()
    channels = sorted({r.channel for r in rows})
    systems = sorted({r.codec for r in rows})
    fig, axes = plt.subplots(1, len(channels), figsize=(6.5 * len(channels), 5), sharey=True, squeeze=False)
    for ax, ch in zip(axes[0], channels, strict=True):
        for i, system in enumerate(systems):
            pts = sorted((r.snr_db, r.value, _interval(r.samples, int(r.config.get("realizations", 1))))
                         for r in rows if r.codec == system and r.channel == ch)
            if not pts:
                continue
            xs, ys, es = zip(*pts, strict=True)
            ax.errorbar(xs, ys, yerr=es, marker=MARKERS[i % len(MARKERS)], ls=DASHES[i % len(DASHES)],
                        capsize=3, label=system, alpha=0.9)
        ax.set(title=f"image fidelity over {ch}", xlabel="SNR (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("PSNR (dB), mean and 95 % interval over the photos")
    axes[0][-1].legend(loc="lower right")
    return _png(fig)


def figure_secrecy(records: Sequence[Record]) -> str | None:
    """Bob's and Eve's PSNR through the cipher against SNR, one panel per channel, shared axes."""
    rows = [r for r in records if r.metric in ("psnr_bob", "psnr_eve")]
    if not rows:
        return None
    plt = _plt()
    channels = sorted({r.channel for r in rows})
    fig, axes = plt.subplots(1, len(channels), figsize=(6.5 * len(channels), 4.5), sharey=True, squeeze=False)
    for ax, ch in zip(axes[0], channels, strict=True):
        for i, (metric, who) in enumerate((("psnr_bob", "Bob (key)"), ("psnr_eve", "Eve (no key, own channel)"))):
            for j, system in enumerate(sorted({r.codec for r in rows})):
                pts = sorted((r.snr_db, r.value) for r in rows if r.metric == metric and r.channel == ch
                             and r.codec == system)
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(xs, ys, marker=MARKERS[(i + j) % len(MARKERS)], ls=DASHES[i], label=f"{who}: {system}")
        ax.set(title=f"Bob against Eve over {ch}", xlabel="SNR (dB)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("PSNR (dB)")
    axes[0][-1].legend(loc="center right")
    return _png(fig)


ROBUSTNESS_PANELS = (("psnr", "image PSNR (dB)"), ("ms_ssim", "image MS-SSIM"), ("bleu1", "DeepSC BLEU-1"),
                     ("similarity", "DeepSC sentence similarity"))


def figure_robustness(records: Sequence[Record]) -> str | None:
    """Fidelity under each attack against its PSR budget (the record's ``config["psr_db"]``), one
    panel per metric (image PSNR and MS-SSIM, DeepSC BLEU-1 and similarity), with the clean
    fidelity on the same channel draws as a dotted line."""
    panels = [(m, label) for m, label in ROBUSTNESS_PANELS if any(r.metric == f"{m}_under_attack" for r in records)]
    if not panels:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.6), sharex=True, squeeze=False)
    r0 = next(r for r in records if r.metric.endswith("_under_attack"))
    for ax, (metric, label) in zip(axes[0], panels, strict=True):
        rows = [r for r in records if r.metric == f"{metric}_under_attack"]
        for i, name in enumerate(sorted({r.codec for r in rows})):
            pts = sorted((r.config["psr_db"], r.value) for r in rows if r.codec == name)
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], ls=DASHES[i % len(DASHES)], label=name)
        clean = {r.codec.split(" vs ")[0]: r.value for r in records if r.metric == f"{metric}_clean"}
        for system, value in sorted(clean.items()):
            ax.axhline(value, color="grey", ls=":", lw=1.2)
            ax.annotate(f"{system}, no attack", (ax.get_xlim()[0], value), fontsize=8, color="grey",
                        xytext=(2, 3), textcoords="offset points")
        ax.set(title=f"{label} under attack", xlabel="PSR at the receiver (dB)", ylabel=label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"robustness over {r0.channel} at {r0.snr_db:g} dB SNR")
    return _png(fig)


def figure_envelope(points: dict[tuple[str, str, float], dict[str, float]], channel: str, snr: float) -> str | None:
    """The envelope at one (channel, SNR): PSNR against latency and against energy, Pareto front marked."""
    here = {s: p for (s, ch, x), p in points.items() if ch == channel and x == snr and "psnr" in p and "+" not in s}
    if not any("latency_ms" in p for p in here.values()):
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
    front = set(pareto_front(here, ("psnr", "latency_ms", "energy_mj")))
    for ax, metric, label in ((axes[0], "latency_ms", "latency per photo (ms, measured on this machine)"),
                              (axes[1], "energy_mj", "energy per photo (mJ, estimate: FLOPs x J/FLOP + transmit)")):
        for i, (s, p) in enumerate(sorted(here.items())):
            if metric not in p:
                continue
            ax.scatter(p[metric], p["psnr"], marker=MARKERS[i % len(MARKERS)], s=90 if s in front else 45,
                       edgecolors="black" if s in front else "none", label=s + (" (Pareto)" if s in front else ""))
        ax.set(title=f"envelope at {snr:g} dB over {channel}", xlabel=label)
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("PSNR (dB)")
    axes[1].legend(loc="lower right")
    return _png(fig)


def write_csv(records: Sequence[Record], path: str | Path) -> Path:
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["system", "channel", "snr_db", "metric", "value", "attack", "psr_db", "defense"])
        for r in records:
            c = r.config
            w.writerow([r.codec, r.channel, r.snr_db, r.metric, r.value if math.isfinite(r.value) else "",
                        c.get("attack", ""), c.get("psr_db", "") if c.get("attack") else "", c.get("defense", "")])
    return path


def _table(records: Sequence[Record], metric: str) -> dict[str, Any] | None:
    p = pivot(records, metric)
    if not p:
        return None
    snrs = sorted({s for row in p.values() for s in row})
    rows = [{"system": sys_, "channel": ch, "values": [row.get(s) for s in snrs]} for (sys_, ch), row in sorted(p.items())]
    return {"metric": metric, "snrs": snrs, "rows": rows}


def write_report(out: str | Path, scenario: Scenario, records: Sequence[Record],
                 gaps: dict[str, dict[str, dict[float, Gap]]], meta: dict[str, Any]) -> Path:
    """Write ``report.html`` (self-contained), ``results.csv`` into ``out``; returns the page's path."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    out = Path(out)
    points = configurations(records)
    channels = sorted({ch for (_, ch, _) in points})
    snrs = sorted({x for (_, _, x) in points})
    ref_snr = 10.0 if 10.0 in snrs else (snrs[len(snrs) // 2] if snrs else 0.0)
    figures = [("Image fidelity against SNR", figure_fidelity(records),
                "Each line is one system; bars are 95 % intervals over the photos. Shared y axis across channels.")]
    figures += [(f"Envelope over {ch} at {ref_snr:g} dB", figure_envelope(points, ch, ref_snr),
                 "Outlined points are the Pareto front over (PSNR up, latency down, energy down); energy is an "
                 "estimate from the stated model.") for ch in channels]
    figures.append(("Robustness against budget", figure_robustness(records),
                    "Each attack knows the link (white-box on the received block, through any defence) except "
                    "Gaussian jamming, the equal-power control; PSR is measured at the receiver. Dotted: the "
                    "same photos and sentences on the same channel draws without attack."))
    figures.append(("Bob against Eve", figure_secrecy(records),
                    "Eve listens on her own channel without the key; the gap between the lines is what the cipher "
                    "buys."))
    figures = [(t, img, cap) for t, img, cap in figures if img]
    gap_rows = [{"title": title, "channel": ch, "cells": [(snr, g.mean, g.half_width if g.n else None)
                                                          for snr, g in sorted(row.items())]}
                for title, rows in gaps.items() for ch, row in rows.items()]
    region = operating_region(points, scenario.constraints) if scenario.constraints else []
    env = Environment(loader=PackageLoader("semguard.evaluation", "templates"), autoescape=select_autoescape())
    page = env.get_template("report.html.j2").render(
        scenario=scenario, scenario_json=json.dumps(strict_json(scenario.to_json()), indent=1), meta=meta,
        figures=figures, tables=[t for t in (_table(records, m) for m in
                                             ("psnr", "ms_ssim", "latency_ms", "energy_mj", "robust_psnr",
                                              "robust_ms_ssim", "robust_bleu1", "robust_similarity",
                                              "psnr_bob", "psnr_eve",
                                              "accuracy", "bleu1", "similarity")) if t],
        gaps=gap_rows, region=region, constraints=scenario.constraints)
    path = out / "report.html"
    path.write_text(page)
    write_csv(records, out / "results.csv")
    return path
