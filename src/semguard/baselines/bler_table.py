"""Codeword error rates for the AMC: Clopper-Pearson bounds, sizing, and the shipped BLER table.

The AMC accepts an MCS when a one-sided Clopper-Pearson upper bound on its codeword error rate
(BLER) is at most the per-codeword rate an image-error target allows (Clopper & Pearson 1934):
with ``e`` errors in ``n`` codewords, the upper bound at confidence ``c`` is the ``p`` with
``P(Binomial(n, p) <= e) = 1 - c``, i.e. the ``c`` quantile of ``Beta(e + 1, n - e)``; for
``e = 0`` it is ``1 - (1 - c)^(1/n)``.  :func:`codewords_needed` is the smallest ``n`` whose
zero-error bound reaches a given rate.

The table (``data/bler_table.json``, written by ``scripts/make_bler_table.py``) holds, per MCS
and codeword length, error counts on an SNR grid measured over AWGN with the link's own
encoder/QAM/demapper/decoder chain -- the link-to-system mapping of 3GPP system simulators, so the
AMC reads a table instead of simulating at run time.  Its sha256 is checked on load.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

__all__ = ["BlerEstimate", "clopper_pearson_upper", "clopper_pearson_lower", "codewords_needed",
           "allowed_bler", "BlerTable", "load_bler_table", "shipped_bler_table", "SHIPPED_BLER_SHA256",
           "CONFIDENCE"]

CONFIDENCE = 0.95  # one-sided confidence of the AMC's BLER bound
# sha256 of the shipped data/bler_table.json (scripts/make_bler_table.py rewrites this line)
SHIPPED_BLER_SHA256 = "b6a60ef85f12b6a3b1eb02db953ceb5ef6723b05ca4150257a7d3f04dc2dcbc2"


@dataclass(frozen=True)
class BlerEstimate:
    """Monte-Carlo codeword error count: ``errors`` failed codewords out of ``trials``."""

    errors: int
    trials: int

    @property
    def bler(self) -> float:
        return self.errors / self.trials if self.trials else float("nan")

    def upper(self, confidence: float = CONFIDENCE) -> float:
        """One-sided Clopper-Pearson upper bound on the BLER."""
        return clopper_pearson_upper(self.errors, self.trials, confidence)


def _check(errors: int, trials: int, confidence: float) -> None:
    if trials < 0 or not 0 <= errors <= trials:
        raise ValueError(f"need 0 <= errors <= trials, got errors={errors}, trials={trials}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _binom_cdf(e: int, n: int, p: float) -> float:
    """``P(Binomial(n, p) <= e)`` by summing log-space terms (exact to float rounding)."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if e >= n else 0.0
    lp, lq = math.log(p), math.log1p(-p)
    terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
             for i in range(e + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def _solve(f, target: float) -> float:
    """The ``p`` in [0, 1] with decreasing ``f(p) = target``, by bisection to 1e-15."""
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if f(mid) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return 0.5 * (lo + hi)


def clopper_pearson_upper(errors: int, trials: int, confidence: float = CONFIDENCE) -> float:
    """One-sided upper bound: ``P(Binomial(trials, p) <= errors) = 1 - confidence``; 1 if ``trials == 0``
    or ``errors == trials``.  Memoised: the AMC asks for the same table counts in every cell."""
    _check(errors, trials, confidence)
    return _cp_upper(int(errors), int(trials), float(confidence))


@lru_cache(maxsize=65536)
def _cp_upper(errors: int, trials: int, confidence: float) -> float:
    if trials == 0 or errors == trials:
        return 1.0
    if errors == 0:
        return 1.0 - (1.0 - confidence) ** (1.0 / trials)
    return _solve(lambda p: _binom_cdf(errors, trials, p), 1.0 - confidence)


def clopper_pearson_lower(errors: int, trials: int, confidence: float = CONFIDENCE) -> float:
    """One-sided lower bound: ``P(Binomial(trials, p) >= errors) = 1 - confidence``; 0 if ``errors == 0``."""
    _check(errors, trials, confidence)
    if errors == 0:
        return 0.0
    if errors == trials:
        return (1.0 - confidence) ** (1.0 / trials)
    return _solve(lambda p: _binom_cdf(errors - 1, trials, p), confidence)


def codewords_needed(p_max: float, confidence: float = CONFIDENCE) -> int:
    """Fewest error-free codewords whose Clopper-Pearson upper bound is <= ``p_max``:
    ``ceil(ln(1 - c) / ln(1 - p_max))``."""
    if not 0 < p_max < 1:
        raise ValueError(f"p_max must be in (0, 1), got {p_max}")
    _check(0, 1, confidence)
    n = math.ceil(math.log(1.0 - confidence) / math.log1p(-p_max) - 1e-9)
    while clopper_pearson_upper(0, n, confidence) > p_max:  # guard the float rounding
        n += 1
    return n


def allowed_bler(target_image_error: float, num_cw: int) -> float:
    """Per-codeword error rate at which an image of ``num_cw`` codewords is lost with probability
    ``target_image_error``: ``1 - (1 - target)^(1/num_cw)``."""
    if not 0 < target_image_error < 1:
        raise ValueError(f"target_image_error must be in (0, 1), got {target_image_error}")
    if num_cw < 1:
        raise ValueError(f"num_cw must be >= 1, got {num_cw}")
    return 1.0 - (1.0 - target_image_error) ** (1.0 / num_cw)


class BlerTable:
    """Error counts per (MCS name, codeword length) on an SNR grid; see the module docstring.

    ``lookup`` rounds the SNR DOWN to the grid (conservative); below the first measured point it
    returns "every codeword failed", above the last the last point's counts (BLER falls with SNR).
    """

    def __init__(self, data: dict) -> None:
        try:
            self.meta = {k: v for k, v in data.items() if k != "entries"}
            self.num_iter = int(data["num_iter"])
            self.grid_db = float(data["grid_db"])
            self._rows: dict[tuple[str, int], dict[float, BlerEstimate]] = {}
            self._thresholds: dict[tuple[str, int, float, float], float] = {}
            for row in data["entries"]:
                pts = {round(float(s), 4): BlerEstimate(int(e), int(t))
                       for s, e, t in zip(row["snr_db"], row["errors"], row["trials"], strict=True)}
                self._rows[(str(row["mcs"]), int(row["n_cw"]))] = pts
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"BLER table is malformed: {err}") from err

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._rows

    def keys(self) -> list[tuple[str, int]]:
        return list(self._rows)

    def points(self, mcs_name: str, n_cw: int) -> dict[float, BlerEstimate]:
        return dict(self._rows[(mcs_name, n_cw)])

    def lookup(self, mcs_name: str, n_cw: int, snr_db: float) -> BlerEstimate | None:
        """The estimate at the largest grid SNR <= ``snr_db``; None when the row is not in the table."""
        pts = self._rows.get((mcs_name, n_cw))
        if pts is None:
            return None
        below = [s for s in pts if s <= snr_db + 1e-9]
        if not below:
            return BlerEstimate(1, 1)
        return pts[max(below)]

    def threshold_db(self, mcs_name: str, n_cw: int, p_max: float, confidence: float = CONFIDENCE) -> float | None:
        """Lowest tabulated SNR whose upper bound is <= ``p_max`` (``inf`` if none; None if the row is absent)."""
        key = (mcs_name, n_cw, float(p_max), float(confidence))
        if key not in self._thresholds:  # pure in its arguments: each cell of a sweep asks again
            pts = self._rows.get((mcs_name, n_cw))
            if pts is None:
                return None
            ok = [s for s, est in pts.items() if est.upper(confidence) <= p_max]
            self._thresholds[key] = min(ok) if ok else math.inf
        return self._thresholds[key]


def load_bler_table(path: str | Path, sha256: str | None) -> BlerTable:
    """Read a table file; with ``sha256`` given, refuse (ValueError) a file whose digest differs."""
    raw = Path(path).read_bytes()
    if sha256 is not None:
        got = hashlib.sha256(raw).hexdigest()
        if got != sha256:
            raise ValueError(f"BLER table {path}: sha256 {got} does not match the expected {sha256}")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"BLER table {path} is not JSON: {err}") from err
    return BlerTable(data)


def shipped_table_path() -> Path:
    return Path(str(resources.files("semguard.baselines") / "data" / "bler_table.json"))


@lru_cache(maxsize=1)
def shipped_bler_table() -> BlerTable | None:
    """The shipped table (sha256-checked), or None when the package has none."""
    path = shipped_table_path()
    if not path.is_file():
        return None
    return load_bler_table(path, SHIPPED_BLER_SHA256)
