"""Preprocessing and quantisation of channel measurements into bits.

* :func:`standardize`: remove the mean and scale each real component to unit variance (each end
  does it locally, which cancels gain mismatch and any static offset).
* :func:`decorrelation_step`: smallest lag at which the measurements' own autocorrelation falls
  below a threshold; probes are decimated by it so the quantised symbols are close to
  independent (Alice announces the step publicly).
* :func:`quantize`: multi-bit quantiser of the real and imaginary parts with equiprobable
  (empirical-quantile), mean or median thresholds, Gray-coded levels, and guard bands that drop
  components falling within ``guard`` of a threshold (Mathur et al., "Radio-telepathy", MobiCom
  2008; Jana et al., MobiCom 2009).  The real and imaginary parts are dropped independently (one
  ambiguous part does not cost the other); the components kept by both ends are agreed publicly
  (indices only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["standardize", "autocorrelation", "decorrelation_step", "gray_code", "gray_bits",
           "thresholds", "Quantized", "quantize", "THRESHOLDS"]

THRESHOLDS = ("quantile", "mean", "median")


def _as_components(z: np.ndarray) -> np.ndarray:
    """Complex ``[T]`` -> real ``[T, 2]`` (re, im)."""
    z = np.asarray(z)
    if z.ndim != 1 or not np.iscomplexobj(z):
        raise ValueError(f"measurements must be a complex 1-D array, got {z.dtype} {z.shape}")
    return np.stack([z.real, z.imag], axis=-1)


def standardize(z: np.ndarray) -> np.ndarray:
    """Complex ``[T]`` measurements -> real ``[T, 2]``, each column zero mean and unit variance."""
    x = _as_components(z)
    x = x - x.mean(axis=0, keepdims=True)
    sd = x.std(axis=0, keepdims=True)
    return x / np.where(sd > 0, sd, 1.0)


def autocorrelation(z: np.ndarray, max_lag: int) -> np.ndarray:
    """Normalised autocorrelation magnitude ``|sum z_k z*_{k+L}| / sum |z_k|^2`` for ``L = 0..max_lag``
    of the mean-removed complex sequence (computed by FFT)."""
    z = np.asarray(z, dtype=np.complex128)
    z = z - z.mean()
    n = z.size
    f = np.fft.fft(z, 2 * n)
    r = np.fft.ifft(f * np.conj(f))[: max_lag + 1]
    return np.abs(r) / max(np.abs(r[0]), 1e-300)


def decorrelation_step(z: np.ndarray, threshold: float = 0.3, max_step: int = 64) -> int:
    """Smallest lag ``L >= 1`` with autocorrelation below ``threshold`` (``max_step`` if none)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"decorrelation threshold must be in (0, 1), got {threshold}")
    ac = autocorrelation(z, min(max_step, len(z) - 1))
    below = np.nonzero(ac[1:] < threshold)[0]
    return int(below[0] + 1) if below.size else max_step


def gray_code(levels: np.ndarray) -> np.ndarray:
    """Binary-reflected Gray code of non-negative integers: ``g = n xor (n >> 1)``."""
    levels = np.asarray(levels, dtype=np.int64)
    return levels ^ (levels >> 1)


def gray_bits(levels: np.ndarray, bits: int) -> np.ndarray:
    """Levels ``[...]`` in ``[0, 2^bits)`` -> Gray-coded bits ``[..., bits]`` (MSB first), uint8."""
    g = gray_code(levels)
    shifts = np.arange(bits - 1, -1, -1)
    return ((g[..., None] >> shifts) & 1).astype(np.uint8)


def thresholds(x: np.ndarray, bits: int, kind: str = "quantile") -> np.ndarray:
    """Thresholds ``[2^bits - 1, D]`` for the columns of ``x [T, D]``.

    ``quantile``: empirical quantiles ``k / 2^bits`` (equiprobable levels); ``mean``/``median``:
    one threshold (``bits`` must be 1).
    """
    if kind not in THRESHOLDS:
        raise ValueError(f"threshold kind must be one of {THRESHOLDS}, got {kind!r}")
    if kind != "quantile" and bits != 1:
        raise ValueError(f"{kind!r} thresholds quantise to 1 bit; got bits={bits} (use 'quantile')")
    if kind == "mean":
        return x.mean(axis=0, keepdims=True)
    if kind == "median":
        return np.median(x, axis=0, keepdims=True)
    q = np.arange(1, 2 ** bits) / 2 ** bits
    return np.quantile(x, q, axis=0)


@dataclass(frozen=True)
class Quantized:
    """Levels ``[T, D]`` (int) and the guard-band mask ``keep [T, D]`` (True: the component is not ambiguous)."""

    levels: np.ndarray
    keep: np.ndarray
    bits: int


def quantize(x: np.ndarray, bits: int = 1, *, guard: float = 0.0, kind: str = "quantile",
             guard_unit: str = "sd") -> Quantized:
    """Quantise standardised components ``x [T, D]`` to ``2^bits`` levels per component.

    A component is dropped (``keep=False``) when it lies within ``guard`` of one of its thresholds, measured in that column's standard deviations (``guard_unit="sd"``) or in
    probability mass of its empirical CDF (``"prob"``, quantile thresholds only: each threshold
    removes the same mass ``2 guard``, so outer levels keep ``1/L - guard`` and inner ones
    ``1/L - 2 guard`` instead of the strong skew a fixed width gives in the Gaussian tails).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"quantize expects real components [T, D], got shape {x.shape}")
    if not 1 <= bits <= 8:
        raise ValueError(f"bits per component must be in 1..8, got {bits}")
    if guard < 0:
        raise ValueError(f"guard must be >= 0 standard deviations, got {guard}")
    if guard_unit not in ("sd", "prob"):
        raise ValueError(f"guard_unit must be 'sd' or 'prob', got {guard_unit!r}")
    if guard_unit == "prob" and kind != "quantile":
        raise ValueError("guard_unit='prob' needs quantile thresholds")
    th = thresholds(x, bits, kind)                                        # [K, D]
    levels = (x[None, :, :] > th[:, None, :]).sum(axis=0)                 # [T, D]
    if guard_unit == "sd":
        dist = np.abs(x[None, :, :] - th[:, None, :]).min(axis=0)         # [T, D]
        keep = dist >= guard * x.std(axis=0, keepdims=True)
    else:
        u = (np.argsort(np.argsort(x, axis=0), axis=0) + 0.5) / x.shape[0]  # empirical CDF (ranks)
        q = np.arange(1, 2 ** bits) / 2 ** bits
        keep = np.abs(u[None, :, :] - q[:, None, None]).min(axis=0) >= guard
    return Quantized(levels=levels.astype(np.int64), keep=keep, bits=bits)
