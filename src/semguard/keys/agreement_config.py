"""Settings of the key-agreement pipeline (:class:`AgreementConfig`), the public-code-style
:data:`BASELINE` and the SNR-adaptive quantiser table (:func:`adaptive_config`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from semguard.keys.reconcile import choose_code
from semguard.keys.secrecy import EveModel

__all__ = ["AgreementConfig", "BASELINE", "QUANTIZER_TABLE", "adaptive_config"]


@dataclass(frozen=True)
class AgreementConfig:
    """Pipeline settings.

    Attributes:
        bits: quantisation bits per real component (2 components per probe).
        guard: guard band half-width in standard deviations (0: none).
        guard_unit: ``"sd"`` (standard deviations) or ``"prob"`` (CDF mass; keeps levels equiprobable).
        threshold: ``"quantile"`` (equiprobable), ``"mean"`` or ``"median"`` (1 bit).
        reconciliation: ``"cascade"`` or ``"bch"`` (syndromes via ``bchlib``).
        decorrelate: autocorrelation threshold for decimation (None: keep every probe).
        kdr_sample: bits disclosed (then discarded) to estimate the KDR.
        bch_m: the largest BCH field order tried (block length ``2^m - 1``); :meth:`bch_code` may take a
            shorter code that keeps more bits.
        fail_prob: target per-block decoding failure probability when choosing ``t``.
        eps: leftover-hash-lemma distance from uniform.
        entropy: ``"mcv"`` (min of the SP 800-90B most-common-value estimate and a predictive
            estimate from the sequence's past) or ``"none"`` (count every bit as one secret bit).
        amplifier: ``"toeplitz"`` (sized as below) or ``"sha256"`` (plain hash to 256 bits).
        eve_sizing: ``"gaussian"`` (subtract the declared Eve's information,
            :func:`~semguard.keys.secrecy.secret_length`) or ``"none"`` (Alice's unconditional
            min-entropy minus leakage only: secret against an Eve who observes nothing).
        eve_min_distance: the declared Eve is at least this many wavelengths from Bob (default 0.5:
            her channel correlation is then at most 0.403, the largest ``|J0|`` beyond it).
        eve_max_correlation: or: her channel correlation is at most this (overrides the distance).  In the
            ``induced`` mode Eve's distance does not bound her (she hears both random transmissions), so
            the correlation is 1 (no key) unless this is declared.
        eve_snr_db: her probing SNR in dB (None, the default: a noiseless Eve).
        min_key_bits: shortest key delivered (default 128): Bob's public confirmation tag lets Eve test
            guesses offline, so a short key is brute-forced whatever its entropy bound says.
    """

    bits: int = 2
    guard: float = 0.02
    guard_unit: str = "prob"
    threshold: str = "quantile"
    reconciliation: str = "cascade"
    decorrelate: float | None = 0.3
    kdr_sample: int = 128
    bch_m: int = 10
    fail_prob: float = 1e-3
    eps: float = 1e-6
    entropy: str = "mcv"
    amplifier: str = "toeplitz"
    eve_sizing: str = "gaussian"
    eve_min_distance: float = 0.5
    eve_max_correlation: float | None = None
    eve_snr_db: float | None = None
    min_key_bits: int = 128

    def __post_init__(self) -> None:
        if self.eve_sizing not in ("gaussian", "none"):
            raise ValueError(f"AgreementConfig.eve_sizing must be 'gaussian' or 'none', got {self.eve_sizing!r}")
        EveModel(self.eve_min_distance, self.eve_max_correlation, self.eve_snr_db)  # validates the Eve model
        if self.entropy not in ("mcv", "none"):
            raise ValueError(f"AgreementConfig.entropy must be 'mcv' or 'none', got {self.entropy!r}")
        if self.amplifier not in ("toeplitz", "sha256"):
            raise ValueError(f"AgreementConfig.amplifier must be 'toeplitz' or 'sha256', got {self.amplifier!r}")
        if self.reconciliation not in ("cascade", "bch"):
            raise ValueError(f"AgreementConfig.reconciliation must be 'cascade' or 'bch', got {self.reconciliation!r}")
        if self.min_key_bits < 8:
            raise ValueError(f"AgreementConfig.min_key_bits must be >= 8, got {self.min_key_bits}")
        if self.kdr_sample < 8:
            raise ValueError(f"AgreementConfig.kdr_sample must be >= 8, got {self.kdr_sample}")

    def bch_code(self, kdr_upper: float) -> tuple[int, int] | None:
        """``(m, t)`` of the BCH code for a disagreement upper bound: :func:`~semguard.keys.reconcile.choose_code`
        with ``m`` from :attr:`bch_m` down and :attr:`fail_prob`.  The one code choice of both
        :class:`~semguard.keys.KeyAgreement` and the runtime's PLKG (:mod:`semguard.runtime.plkg`); None: no
        code corrects ``kdr_upper`` and leaves bits beyond its parities."""
        return choose_code(kdr_upper, self.bch_m, self.fail_prob)


#: a pipeline built like public PLKG code: mean threshold, 1 bit, no guard band, no decimation,
#: every bit counted as secret, plain SHA-256 to a 256-bit key, no eavesdropper model
BASELINE = AgreementConfig(bits=1, guard=0.0, guard_unit="sd", threshold="mean", decorrelate=None, entropy="none",
                           amplifier="sha256", eve_sizing="none")


#: (lowest probing SNR in dB, bits per component, guard band in CDF mass): the best KGR per SNR band
#: among 1-3 bits and 2-20 % guards in side-by-side KeyAgreement runs on mobile Jakes traces
#: (f_d T = 0.4 and 0.8, 3 sessions x 2048 probes each); bench/keys.py reports the resulting rates
QUANTIZER_TABLE: tuple[tuple[float, int, float], ...] = (
    (22.0, 2, 0.02),
    (13.0, 2, 0.05),
    (8.0, 1, 0.15),
    (float("-inf"), 1, 0.2),
)


def adaptive_config(snr_db: float, mode: str = "mobile", **overrides: Any) -> AgreementConfig:
    """Quantiser settings for a probing SNR from :data:`QUANTIZER_TABLE` (more bits and a narrower
    guard band as the SNR rises).  Induced randomness puts the common randomness in the phase
    only, so it always uses 1 bit."""
    _, bits, guard = next(row for row in QUANTIZER_TABLE if snr_db >= row[0])
    if mode == "induced":
        bits, guard = 1, max(guard, 0.05)
    return AgreementConfig(**{**dict(bits=bits, guard=guard), **overrides})

