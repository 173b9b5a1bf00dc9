"""What a declared eavesdropper can know about Alice's measurements, and the key length it leaves.

The eavesdropper model (:class:`EveModel`) is one of: a minimum distance from Bob (the key is
secret against every Eve at least that far, so the correlation is the largest ``|J0(2 pi d)|``
beyond it, Jakes 1974), a maximum correlation, and Eve's SNR (None: a noiseless Eve, the
conservative default).  Eve's channel is ``h_E = rho h + sqrt(1 - rho^2) w`` with ``w`` an
independent process of the same spectrum (:mod:`semguard.channels.jakes`).

:func:`eve_information` bounds ``I(X_A^kept; X_E^all)`` for the jointly Gaussian, stationary
observations: in the DFT basis of an ``n``-probe block (circulant approximation) the bins are
independent, Alice's decimated sequence (every ``step``-th probe) collects the ``step`` bins that
alias onto each of its bins, and Eve sees all ``n`` of her probes.  With channel spectrum ``S_k``
(per bin, mean 1), Alice's noise ``N0`` and Eve's ``N0_E``, each decimated bin has coherence

    gamma_j = sum_m rho^2 S_k^2 / (S_k + N0_E)  /  sum_m (S_k + N0),   k = j + m n / step

and contributes ``-log2(1 - gamma_j)`` bits (complex) and an information-density variance of
``2 gamma_j (log2 e)^2`` bits^2 (``c^2`` nats^2 for a real Gaussian pair of correlation ``c``).
The quantised bits are functions of Alice's observation, so this bounds Eve's information about
them (data processing; the public guard-band mask is treated as independent of the values).

:func:`secret_length` sizes the key as

    l = floor(H_min(A) - I - Q^-1(eps) sqrt(V) - leaked - 2 log2(1/eps))

``I + Q^-1(eps) sqrt(V)`` is the normal (second-order) approximation of the eps-smooth
max-information of Eve's observation (Tomamichel & Hayashi, IEEE Trans. IT 2013), subtracted from
Alice's min-entropy as in the chain rule ``H_min^eps(A|E) >= H_min(A) - I_max^eps(A:E)``; the
last two terms are the public leakage and the leftover-hash-lemma margin.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtri

from semguard.channels.spectrum import jakes_bin_masses, spatial_correlation

__all__ = ["EveModel", "max_correlation_beyond", "channel_spectrum", "eve_information", "secret_length"]


def max_correlation_beyond(min_distance: float) -> float:
    """``sup_{d >= min_distance} |J0(2 pi d)|`` (``d`` in wavelengths)."""
    if not (math.isfinite(min_distance) and min_distance >= 0):
        raise ValueError(f"Eve's minimum distance must be a finite number of wavelengths >= 0, got {min_distance}")
    d = min_distance + np.arange(0.0, 20.0, 1e-4)
    best = float(np.abs(spatial_correlation(d)).max())
    tail = math.sqrt(2.0 / (math.pi * 2.0 * math.pi * (min_distance + 20.0)))  # |J0(x)| <= sqrt(2/(pi x))
    return max(best, tail)


@dataclass(frozen=True)
class EveModel:
    """The eavesdropper the key is sized against.

    Attributes:
        min_distance: Eve is at least this many wavelengths from Bob (and Alice).
        max_correlation: Eve's channel correlation is at most this (overrides ``min_distance``).
        snr_db: Eve's probing SNR in dB (None: noiseless Eve).
    """

    min_distance: float = 0.5
    max_correlation: float | None = None
    snr_db: float | None = None

    def __post_init__(self) -> None:
        max_correlation_beyond(self.min_distance)                         # validates the distance
        if self.max_correlation is not None and not 0.0 <= self.max_correlation <= 1.0:
            raise ValueError(f"EveModel.max_correlation must be in [0, 1], got {self.max_correlation}")
        if self.snr_db is not None and not math.isfinite(self.snr_db):
            raise ValueError(f"EveModel.snr_db must be finite or None (noiseless Eve), got {self.snr_db}")

    @property
    def correlation(self) -> float:
        """The largest channel correlation the model allows Eve."""
        if self.max_correlation is not None:
            return float(self.max_correlation)
        return max_correlation_beyond(self.min_distance)

    def describe(self) -> str:
        where = (f"|rho| <= {self.max_correlation:g}" if self.max_correlation is not None
                 else f"d >= {self.min_distance:g} wavelengths (|rho| <= {self.correlation:.3f})")
        snr = "noiseless" if self.snr_db is None else f"SNR {self.snr_db:g} dB"
        return f"passive Eve at {where}, {snr}"

    def to_dict(self) -> dict:
        return {**asdict(self), "correlation": self.correlation, "description": self.describe()}


def channel_spectrum(n: int, mode: str, doppler_hz: float, probe_rate_hz: float,
                     direct_power: float = 0.0) -> np.ndarray:
    """Per-bin channel spectrum ``S [n]`` (mean 1) of an ``n``-probe block.

    ``mobile``: Jakes, the exact arcsine mass of each bin (aliased when ``f_d`` exceeds half the
    probe rate); ``static``: all power at DC; ``ris``/``induced``: white (a fresh random
    configuration or phase per probe) with ``direct_power`` at DC.
    """
    if n < 1:
        raise ValueError(f"need n >= 1 probes, got {n}")
    s = np.zeros(n)
    if mode == "static" or (mode == "mobile" and doppler_hz == 0):
        s[0] = n
        return s
    if mode == "mobile":
        df = probe_rate_hz / n
        kmax = int(np.floor(doppler_hz / df + 0.5))
        k = np.arange(-kmax, kmax + 1)
        np.add.at(s, k % n, n * jakes_bin_masses(k, df, doppler_hz))
        return s
    if mode in ("ris", "induced"):
        s[:] = 1.0 - direct_power
        s[0] += n * direct_power
        return s
    raise ValueError(f"unknown probing mode {mode!r}")


def eve_information(spectrum: np.ndarray, step: int, rho: float, snr_db: float,
                    eve_snr_db: float | None) -> tuple[float, float]:
    """``(I, V)``: the Gaussian bound on Eve's information (bits) about Alice's decimated block and
    the variance of its information density (bits^2); see the module docstring."""
    if step < 1:
        raise ValueError(f"decimation step must be >= 1, got {step}")
    s = np.asarray(spectrum, dtype=np.float64)
    n = s.size - s.size % step
    s = s[:n].reshape(step, n // step)                                    # row m: bins j + m n/step
    n0 = 10.0 ** (-snr_db / 10.0)                                         # N0 of unit-power pilots
    n0e = 0.0 if eve_snr_db is None else 10.0 ** (-eve_snr_db / 10.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        explained = np.where(s > 0, rho * rho * s * s / (s + n0e), 0.0).sum(axis=0)
    gamma = np.clip(explained / (s + n0).sum(axis=0), 0.0, 1.0 - 1e-15)
    info = float(-np.log2(1.0 - gamma).sum())
    disp = float((2.0 * gamma).sum() * math.log2(math.e) ** 2)
    return info, disp


def secret_length(min_entropy_bits: float, eve_bits: float, eve_dispersion: float, leaked_bits: float,
                  eps: float) -> int:
    """``max(0, floor(H - I - Q^-1(eps) sqrt(V) - leaked - 2 log2(1/eps)))``."""
    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    eve = eve_bits - float(ndtri(eps)) * math.sqrt(max(eve_dispersion, 0.0))        # Q^-1(eps) = -Phi^-1(eps)
    return max(0, math.floor(min_entropy_bits - eve - leaked_bits - 2.0 * math.log2(1.0 / eps)))
