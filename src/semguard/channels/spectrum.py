"""The Clarke/Jakes correlation maths in NumPy alone: autocorrelation, spatial correlation, the
spectrum's bin masses and one realisation by the spectral (IDFT) method.

:mod:`semguard.channels.jakes` (the registered torch channel) draws its realisations from the same
grid (:func:`spectrum_grid`); this module exists so that what needs only the maths (the keys
package's secrecy bounds, the runtime's probe channel) loads without torch.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import j0

__all__ = ["jakes_autocorrelation", "spatial_correlation", "jakes_bin_masses", "spectrum_grid",
           "jakes_realisation_np"]


def jakes_autocorrelation(fd_tau: np.ndarray | float) -> np.ndarray:
    """Clarke/Jakes autocorrelation ``J0(2 pi f_d tau)`` as a function of ``f_d * tau``."""
    return j0(2.0 * np.pi * np.asarray(fd_tau, dtype=np.float64))


def spatial_correlation(distance_wavelengths: np.ndarray | float) -> np.ndarray:
    """Correlation ``J0(2 pi d / lambda)`` of channels seen ``d`` wavelengths apart."""
    d = np.asarray(distance_wavelengths, dtype=np.float64)
    if np.any(d < 0):
        raise ValueError(f"distance must be >= 0 wavelengths, got {d}")
    return j0(2.0 * np.pi * d)


def jakes_bin_masses(k: np.ndarray, df: float, doppler_hz: float) -> np.ndarray:
    """Mass of the Jakes spectrum in the bins ``[(k - 1/2) df, (k + 1/2) df]`` (sums to 1)."""
    lo = np.clip((k - 0.5) * df / doppler_hz, -1.0, 1.0)
    hi = np.clip((k + 0.5) * df / doppler_hz, -1.0, 1.0)
    return (np.arcsin(hi) - np.arcsin(lo)) / np.pi


def spectrum_grid(n: int, dt_s: float, doppler_hz: float) -> tuple[int, float, np.ndarray, np.ndarray]:
    """FFT length (period >= 2 n dt), bin spacing, bin indices touching ``[-f_d, f_d]`` and their masses."""
    length = 1 << int(np.ceil(np.log2(2 * n)))
    df = 1.0 / (length * dt_s)
    kmax = int(np.floor(doppler_hz / df + 0.5))
    k = np.arange(-kmax, kmax + 1)
    return length, df, k, jakes_bin_masses(k, df, doppler_hz)


def jakes_realisation_np(n: int, doppler: float, offsets: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """One Jakes process sampled at ``offset + i`` (``i < n``) for every offset: complex128
    ``[len(offsets), n]``, ``E|h|^2 = 1``, ``E[h(o_1 + i) h*(o_0 + i)] = J0(2 pi doppler (o_1 - o_0))``.

    The NumPy twin of :func:`semguard.channels.jakes.jakes_realisation` (same grid and masses; times
    in sample periods, ``doppler = f_d T``; 0 gives one constant Rayleigh coefficient)."""
    if n < 1 or not (doppler >= 0 and math.isfinite(doppler)):
        raise ValueError(f"need n >= 1 and a finite doppler >= 0, got {n} and {doppler}")
    if not offsets or not all(math.isfinite(o) for o in offsets):
        raise ValueError(f"need at least one finite time offset, got {offsets}")
    if doppler == 0:
        h = (rng.standard_normal() + 1j * rng.standard_normal()) * math.sqrt(0.5)
        return np.full((len(offsets), n), h, dtype=np.complex128)
    length, df, k, mass = spectrum_grid(n, 1.0, doppler)
    amp = (rng.standard_normal(k.size) + 1j * rng.standard_normal(k.size)) * np.sqrt(mass / 2.0)
    out = np.empty((len(offsets), n), dtype=np.complex128)
    for j, off in enumerate(offsets):                                 # a delay is a phase ramp in frequency
        spec = np.zeros(length, dtype=np.complex128)
        np.add.at(spec, k % length, amp * np.exp(2j * np.pi * k * df * off))   # aliased bins add up
        out[j] = np.fft.ifft(spec)[:n] * length
    return out
