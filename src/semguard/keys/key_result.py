"""The record of one key agreement (:class:`KeyResult`), which never prints nor exports key material."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["KeyResult"]


@dataclass(frozen=True)
class KeyResult:
    """One key agreement.  ``key`` and ``eve_key`` are never printed (``repr=False``) nor exported by :meth:`to_dict`.

    Rates are secret bits per probe sent and per second at the probe rate;
    ``min_entropy_per_symbol`` is the estimate per kept quantised component (``bits`` at most); KDRs are fractions of
    disagreeing bits (raw: after quantisation; reconciled: after Cascade or BCH); ``eve_*`` use Eve's bits on
    the same public positions, ``eve_kdr_reconciled`` and ``eve_key_match`` after her replay of every public
    message (:mod:`semguard.keys.replay`), ``eve_tag_confirmed``: Bob's public tag confirmed her key.
    ``eve_model`` says which eavesdropper the key is secret against; ``eve_info_bits`` (and the variance
    ``eve_info_dispersion``, bits^2) bound what she knows of Alice's bits; ``unconditional_key_bits`` is
    the length the unconditional sizing (no Eve model) would have given.  ``authenticated``: the public
    discussion carried MACs.
    """

    key: bytes | None = field(repr=False)
    success: bool
    key_bits: int
    n_probes: int
    step: int
    quantized_bits: int
    reconciled_bits: int
    kgr_bits_per_probe: float
    kgr_bits_per_second: float
    kdr_raw: float
    kdr_estimate: float
    kdr_reconciled: float
    eve_kdr_raw: float
    eve_kdr_aligned: float
    eve_kdr_reconciled: float
    eve_key_match: bool
    leaked_bits: int
    min_entropy_per_symbol: float
    min_entropy_bits: float
    bch_t: int | None
    failed_blocks: int
    eve_info_bits: float
    eve_info_dispersion: float
    unconditional_key_bits: int
    eve_tag_confirmed: bool
    eve_correlation_fit: float
    authenticated: bool
    eve_model: dict[str, Any]
    reason: str = ""
    #: the BCH field order of the code (with ``bch_t``; None: Cascade or no code chosen)
    bch_m: int | None = None
    #: the 99 % Clopper-Pearson upper bound on the disagreement from the disclosed sample (the code is chosen for it)
    kdr_upper: float = float("nan")
    config: dict[str, Any] = field(default_factory=dict)
    #: the key Eve derives by replaying every public step (seed, parities, indices) on her own bits
    eve_key: bytes | None = field(default=None, repr=False)
    #: per final key bit: Eve's bit, its log2 bias under her posteriors, tag confirmed (``[L, 3]``; for
    #: :mod:`semguard.keys.learned_eve`)
    eve_features: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """All fields except the key material (Alice's and Eve's keys and Eve's per-bit view)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("key", "eve_key", "eve_features")}
        return d

    @classmethod
    def failed(cls, common: dict[str, Any], reason: str, t: int | None) -> "KeyResult":
        """A session that produced no key: zero rates, NaN for what was never measured, and ``reason``."""
        return cls(key=None, success=False, key_bits=0, reconciled_bits=0, kgr_bits_per_probe=0.0,
                   kgr_bits_per_second=0.0, kdr_reconciled=float("nan"), eve_kdr_reconciled=float("nan"),
                   eve_key_match=False, leaked_bits=0, min_entropy_bits=0.0, bch_t=t, failed_blocks=0,
                   eve_info_bits=float("nan"), eve_info_dispersion=float("nan"), unconditional_key_bits=0,
                   eve_tag_confirmed=False, eve_correlation_fit=float("nan"), reason=reason, **common)
