"""NIST SP 800-22 rev. 1a statistical tests on key bits, via ``sp80022suite`` (NIST's C code).

:func:`monobit_pvalue` is an independent implementation of the frequency (monobit) test used to
cross-check the library: ``p = erfc(|S_n| / sqrt(2 n))`` with ``S_n = sum(2 e_i - 1)``
(SP 800-22 section 2.1).  Tests whose minimum input length (SP 800-22 section 2, "input size
recommendation") exceeds the sequence are reported as not applicable rather than run.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["monobit_pvalue", "NistResult", "run_nist", "ALPHA"]

log = logging.getLogger(__name__)

ALPHA = 0.01  # SP 800-22 significance level

# name -> (minimum length in bits, callable(bytes) -> p-value)
def _tests() -> dict[str, tuple[int, object]]:
    import sp80022suite as s

    return {
        "frequency": (100, s.frequency),
        "block_frequency": (100, lambda x: s.block_frequency(max(20, len(x) // 100), x)),
        "runs": (100, s.runs),
        "longest_run_of_ones": (128, s.longest_run_of_ones),
        "cumulative_sums": (100, s.cumulative_sums),
        "discrete_fourier_transform": (1000, s.discrete_fourier_transform),
        "approximate_entropy": (1000, lambda x: s.approximate_entropy(2, x)),
        "serial": (1000, lambda x: s.serial(3, x)),
        "rank": (38 * 32 * 32, s.rank),
        "linear_complexity": (1_000_000, lambda x: s.linear_complexity(500, x)),
        "overlapping_template_matchings": (1_000_000, lambda x: s.overlapping_template_matchings(9, x)),
        "universal": (387_840, s.universal),
    }


def monobit_pvalue(bits: np.ndarray) -> float:
    """SP 800-22 frequency test p-value, computed directly."""
    b = np.asarray(bits).ravel()
    if b.size == 0 or not np.isin(b, (0, 1)).all():
        raise ValueError("monobit test needs a non-empty 0/1 sequence")
    s = float(np.sum(2 * b.astype(np.int64) - 1))
    return math.erfc(abs(s) / math.sqrt(2.0 * b.size))


@dataclass(frozen=True)
class NistResult:
    """P-values per test (None: sequence too short for it), the pass verdict at ``ALPHA``."""

    n_bits: int
    p_values: dict[str, float | None]

    @property
    def passed(self) -> dict[str, bool]:
        return {k: p >= ALPHA for k, p in self.p_values.items() if p is not None}

    @property
    def all_passed(self) -> bool:
        return bool(self.passed) and all(self.passed.values())

    def to_dict(self) -> dict:
        return {"n_bits": self.n_bits, "alpha": ALPHA, "p_values": self.p_values, "passed": self.passed,
                "all_passed": self.all_passed}


def run_nist(bits: np.ndarray, tests: list[str] | None = None) -> NistResult:
    """Run the applicable SP 800-22 tests on a 0/1 sequence ``bits [n]``."""
    b = np.asarray(bits).ravel()
    if not np.isin(b, (0, 1)).all():
        raise ValueError("NIST tests need a 0/1 sequence")
    table = _tests()
    names = tests or list(table)
    unknown = set(names) - set(table)
    if unknown:
        raise ValueError(f"unknown NIST tests {sorted(unknown)}; available: {sorted(table)}")
    data = bytes(b.astype(np.uint8))
    out: dict[str, float | None] = {}
    for name in names:
        min_len, fn = table[name]
        out[name] = float(fn(data)) if b.size >= min_len else None  # type: ignore[operator]
    log.info("NIST SP 800-22 on %d bits: %s", b.size, out)
    return NistResult(n_bits=int(b.size), p_values=out)
