"""SNR-adaptive emergency text: the sender picks, per SNR, uniform DeepSC or a priority scheme.

Every scheme of :mod:`~semguard.network.emergency_text` is fixed in advance.  A real emergency
link knows its SNR (CSI feedback) and adapts.  The rule here is fitted on sentences held out of
the evaluation (the training split) and then applied unchanged to the test rows:

* at each SNR of the fitting rows, among the schemes (uniform included) whose channel uses are at
  most ``max_uses`` times uniform's and whose critical recall there is at least ``threshold``,
  send the one that keeps the most other words (highest other-word accuracy): where uniform
  already delivers the critical words that is uniform, so nothing is taken from the other words;
* where none reaches ``threshold`` (uniform has lost the critical words, and so has every
  cheaper scheme), send the one with the highest critical recall.

:func:`fit_rule` gives the rule as ``{snr: scheme}`` over the fitting grid; :func:`choose` applies
it at any SNR (the choice of the nearest fitted SNR at or below it; the lowest one below the
grid); :func:`adaptive_rows` builds the adaptive scheme's rows from the test rows by copying the
chosen scheme's row at each SNR, so its per-sentence hits are measured, not interpolated, and
:func:`~semguard.network.emergency_text.gain_ci` bootstraps it like any other scheme.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["adaptive_rows", "choose", "fit_rule", "uses_ratio"]


def _by(rows: Sequence[dict]) -> dict[tuple[float, str], dict]:
    return {(float(r["snr_db"]), r["scheme"]): r for r in rows}


def uses_ratio(rows: Sequence[dict], scheme: str, baseline: str = "uniform") -> float:
    """Channel uses of ``scheme`` over ``baseline``'s (the mean over the SNRs both have)."""
    by = _by(rows)
    ratios = [by[k]["channel_uses"] / by[(k[0], baseline)]["channel_uses"]
              for k in by if k[1] == scheme and (k[0], baseline) in by]
    if not ratios:
        raise ValueError(f"no SNR with rows for both {scheme!r} and {baseline!r}")
    return sum(ratios) / len(ratios)


def fit_rule(rows: Sequence[dict], candidates: Sequence[str], *, threshold: float = 0.9,
             max_uses: float = float("inf"), baseline: str = "uniform") -> dict[float, str]:
    """``{snr: scheme}`` for every SNR of ``rows`` (the fitting rows) with a ``baseline`` row (rule
    in the module doc).  Ties go to the baseline, then to the earlier candidate."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    by = _by(rows)
    allowed = [baseline] + [c for c in candidates
                            if c != baseline and uses_ratio(rows, c, baseline) <= max_uses + 1e-9]
    rule = {}
    for snr in sorted({s for s, sc in by if sc == baseline}):
        here = [(c, by[(snr, c)]) for c in allowed if (snr, c) in by]
        good = [(c, r) for c, r in here if r["critical_recall"] >= threshold]
        key = "other_word_accuracy" if good else "critical_recall"
        best, best_v = None, -1.0
        for c, r in good or here:
            if r[key] > best_v:
                best, best_v = c, r[key]
        rule[snr] = best
    if not rule:
        raise ValueError(f"no {baseline!r} rows to fit the rule on")
    return rule


def choose(rule: dict[float, str], snr: float) -> str:
    """The scheme ``rule`` sends at ``snr``: that of the nearest fitted SNR at or below it (the
    lowest fitted SNR's below the grid)."""
    if not rule:
        raise ValueError("empty rule")
    grid = sorted(rule)
    below = [s for s in grid if s <= snr + 1e-9]
    return rule[below[-1] if below else grid[0]]


def adaptive_rows(rows: Sequence[dict], rule: dict[float, str], *, name: str = "adaptive",
                  baseline: str = "uniform") -> list[dict]:
    """Rows of the adaptive scheme at every SNR of ``rows`` (test rows) with a ``baseline`` row:
    the chosen scheme's row, renamed ``name``, with ``chosen`` naming it.  Refuses an SNR whose
    chosen scheme has no row."""
    by = _by(rows)
    out = []
    for snr in sorted({s for s, sc in by if sc == baseline}):
        c = choose(rule, snr)
        if (snr, c) not in by:
            raise ValueError(f"the rule sends {c!r} at {snr} dB but the test rows have no such row")
        out.append(dict(by[(snr, c)], scheme=name, chosen=c))
    return out
