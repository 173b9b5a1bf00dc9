"""Security-utility operating envelopes: Pareto fronts over (fidelity, robustness, latency, energy,
secrecy) and the operating region where every constraint a user states holds.

The maths is in pure functions over plain dicts: :func:`configurations` folds records into one
point per (system, channel, SNR), :func:`pareto_front` keeps the points no other point dominates,
and :func:`operating_region` checks each system against the constraints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from semguard.evaluation.records import Record
from semguard.evaluation.scenario import Constraint

__all__ = ["OBJECTIVES", "configurations", "dominates", "pareto_front", "operating_region", "RegionRow"]

#: each objective and whether more is better ("max") or less ("min")
OBJECTIVES: dict[str, str] = {"psnr": "max", "robust_psnr": "max", "latency_ms": "min", "energy_mj": "min",
                              "psnr_eve": "min"}

Point = dict[str, float]


def configurations(records: Sequence[Record]) -> dict[tuple[str, str, float], Point]:
    """``{(system, channel, snr_db): {metric: value}}``.  Latency and energy are measured once per
    codec and SNR (over AWGN) and attach to that codec at the same SNR on every channel; a
    ciphered link (``codec+cipher``) takes Bob's PSNR as its ``psnr`` and its codec's cost."""
    points: dict[tuple[str, str, float], Point] = {}
    cost: dict[tuple[str, float], Point] = {}
    for r in records:
        if r.metric in ("latency_ms", "energy_mj"):
            cost.setdefault((r.codec, r.snr_db), {})[r.metric] = r.value
            continue
        if r.metric.endswith(("_under_attack", "_clean")) or r.metric == "measured_psr_db":
            continue                                         # budget on the x axis: the robustness figure
        metric = "psnr" if r.metric == "psnr_bob" else r.metric
        p = points.setdefault((r.codec, r.channel, r.snr_db), {})
        # robustness: the strongest attack at the reference budget
        p[metric] = min(p[metric], r.value) if metric.startswith("robust_") and metric in p else r.value
    for (system, _, snr), p in points.items():
        base = system.split("+")[0]
        p.update(cost.get((base, snr), {}))
    return points


def dominates(a: Point, b: Point, objectives: Sequence[str]) -> bool:
    """True when ``a`` is at least as good as ``b`` on every objective and better on one."""
    better = False
    for k in objectives:
        x, y = (a[k], b[k]) if OBJECTIVES[k] == "max" else (-a[k], -b[k])
        if x < y:
            return False
        better |= x > y
    return better


def pareto_front(points: Mapping[str, Point], objectives: Sequence[str]) -> list[str]:
    """The names of the points that have every objective and that no other such point dominates."""
    unknown = [k for k in objectives if k not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objectives {unknown}; known: {', '.join(OBJECTIVES)}")
    full = {n: p for n, p in points.items() if all(k in p for k in objectives)}
    return [n for n, p in full.items() if not any(dominates(q, p, objectives) for m, q in full.items() if m != n)]


@dataclass(frozen=True)
class RegionRow:
    """One system against the constraints: whether all hold, and the first that fails (or is unmeasured)."""

    system: str
    ok: bool
    reason: str


def operating_region(points: Mapping[tuple[str, str, float], Point],
                     constraints: Sequence[Constraint]) -> list[RegionRow]:
    """Every system that has a ``psnr`` point, with whether it meets every constraint at every
    (channel, SNR) the constraint covers.  A metric the system was not measured on fails it."""
    systems = sorted({s for (s, _, _), p in points.items() if "psnr" in p})
    rows = []
    for system in systems:
        reason = ""
        for c in constraints:
            cells = [(ch, snr, p) for (s, ch, snr), p in points.items() if s == system
                     and (c.snr_db is None or snr == c.snr_db) and (c.channel is None or ch == c.channel)]
            if not cells:
                reason = f"{c.describe()}: no measurement at that SNR / channel"
                break
            missing = [(ch, snr) for ch, snr, p in cells if c.metric not in p]
            if missing:
                reason = f"{c.describe()}: {c.metric} not measured ({missing[0][0]}, {missing[0][1]:g} dB)"
                break
            bad = [(ch, snr, p[c.metric]) for ch, snr, p in cells if not c.holds(p[c.metric])]
            if bad:
                ch, snr, v = bad[0]
                reason = f"{c.describe()}: {v:.2f} at {ch} {snr:g} dB"
                break
        rows.append(RegionRow(system, not reason, reason))
    return rows
