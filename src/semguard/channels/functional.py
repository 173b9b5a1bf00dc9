"""Channel maths in pure functions — the one definition of semguard's conventions.

Conventions (see ARCHITECTURE.md):

* symbols are complex64 ``[batch, n]``, each block normalised to ``E|x|^2 = 1``;
* ``snr_db = 10 log10(Es/N0)`` with ``Es = 1``, so ``N0 = 10^(-snr_db/10)`` and complex
  noise is ``CN(0, N0)``, i.e. variance ``N0/2`` per real dimension;
* fading coefficients have ``E|h|^2 = 1`` (Rayleigh, and Rician with K = LoS/scattered power);
* ``cbr = n / m``: complex channel uses per real source dimension;
* ``psr_db = 10 log10(P_perturbation / P_signal)`` per block, both powers measured **at the
  receiver** (``P_signal = mean |h x|^2`` over the block), so -10 dB is a perturbation with a
  tenth of the received signal's power.  A PSR budget is an l2 ball of radius
  ``sqrt(10^(psr_db/10) * P_signal * n)`` around the block.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "normalize_power",
    "snr_db_to_n0",
    "block_power",
    "psr_db",
    "psr_radius",
    "project_psr",
    "complex_noise",
    "complex_normal",
    "rayleigh_coefficients",
    "rician_coefficients",
    "expand_blocks",
    "equalize",
    "effective_snr_db",
    "cbr",
    "qfunc",
    "ber_qpsk_awgn",
    "ber_bpsk_rayleigh",
    "ber_bpsk_rician",
]


def normalize_power(z: Tensor, eps: float = 1e-12) -> Tensor:
    """Scale each block (last dim) of complex ``z [..., n]`` to mean power 1 per symbol."""
    if not torch.is_complex(z):
        raise TypeError(f"normalize_power expects complex symbols, got {z.dtype}")
    power = z.abs().square().mean(dim=-1, keepdim=True)
    return z / torch.sqrt(power + eps)


def snr_db_to_n0(snr_db: Tensor | float) -> Tensor:
    """Noise power spectral density for unit symbol energy: ``N0 = 10^(-snr_db/10)``."""
    snr_db = torch.as_tensor(snr_db, dtype=torch.float32)
    return torch.pow(10.0, -snr_db / 10.0)


def block_power(z: Tensor) -> Tensor:
    """Mean power per symbol of each block of complex ``z [B, n]``: ``[B]``."""
    if not torch.is_complex(z) or z.dim() != 2:
        raise ValueError(f"expected complex blocks [batch, n], got {z.dtype} {tuple(z.shape)}")
    return z.abs().square().mean(dim=-1)


def _check_psr(psr: Tensor | float) -> Tensor:
    t = torch.as_tensor(psr, dtype=torch.float32)
    if not torch.isfinite(t).all():
        raise ValueError(f"psr_db must be finite, got {psr}")
    return t


def psr_db(perturbation: Tensor, signal: Tensor) -> Tensor:
    """Measured per-block PSR in dB, ``10 log10(P_perturbation / P_signal)``, ``[B]``.

    ``signal`` is the signal as the receiver gets it (``h x``), ``perturbation`` the added
    interference at the same point; both complex ``[B, n]``."""
    if perturbation.shape != signal.shape:
        raise ValueError(f"perturbation {tuple(perturbation.shape)} and signal {tuple(signal.shape)} differ in shape")
    return 10.0 * torch.log10(block_power(perturbation).clamp_min(1e-30) / block_power(signal).clamp_min(1e-30))


def psr_radius(signal: Tensor, psr: Tensor | float) -> Tensor:
    """The l2 radius ``sqrt(10^(psr/10) P_signal n)`` of a PSR budget around each block, ``[B]``."""
    t = _check_psr(psr).to(signal.device)
    return torch.sqrt(10.0 ** (t / 10.0) * block_power(signal) * signal.shape[-1])


def project_psr(perturbation: Tensor, signal: Tensor, psr: Tensor | float, *, exact: bool = False) -> Tensor:
    """Project complex ``perturbation [B, n]`` onto the PSR budget of ``signal [B, n]``.

    ``exact=False``: onto the ball ``P_perturbation <= 10^(psr/10) P_signal`` (scaled down only when
    outside it); ``exact=True``: onto its sphere (every block at exactly the budget, e.g. for
    equal-power jamming).  ``psr`` is a scalar or ``[B]`` in dB."""
    if perturbation.shape != signal.shape or not torch.is_complex(perturbation):
        raise ValueError(f"perturbation must be complex of the signal's shape {tuple(signal.shape)}, got "
                         f"{perturbation.dtype} {tuple(perturbation.shape)}")
    radius = psr_radius(signal.detach(), psr)
    norm = torch.linalg.vector_norm(perturbation, dim=-1).clamp_min(1e-30)
    factor = radius / norm
    if not exact:
        factor = factor.clamp(max=1.0)
    return perturbation * factor.unsqueeze(-1)


def complex_normal(shape: tuple[int, ...], *, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> Tensor:
    """Samples of ``CN(0, 1)``: real and imaginary parts each ``N(0, 1/2)``."""
    re_im = torch.randn(*shape, 2, generator=generator, device=device) * math.sqrt(0.5)
    return torch.view_as_complex(re_im)


def complex_noise(shape: tuple[int, ...], n0: Tensor, *, generator: torch.Generator | None = None,
                  device: torch.device | str | None = None) -> Tensor:
    """``CN(0, N0)`` noise; ``n0`` broadcasts against ``shape`` (e.g. ``[batch, 1]``)."""
    return complex_normal(shape, generator=generator, device=device) * torch.sqrt(n0)


def rayleigh_coefficients(shape: tuple[int, ...], *, generator: torch.Generator | None = None,
                          device: torch.device | str | None = None) -> Tensor:
    """Rayleigh fading ``h ~ CN(0, 1)`` (so ``E|h|^2 = 1``)."""
    return complex_normal(shape, generator=generator, device=device)


def rician_coefficients(shape: tuple[int, ...], k_factor: float, *, los_phase: Tensor | float = 0.0,
                        generator: torch.Generator | None = None,
                        device: torch.device | str | None = None) -> Tensor:
    """Rician fading ``h = sqrt(K/(K+1)) e^{j phi} + sqrt(1/(K+1)) CN(0,1)``; ``E|h|^2 = 1``.

    ``k_factor`` is the linear ratio of line-of-sight to scattered power; K = 0 is Rayleigh and
    K -> inf tends to a fixed unit gain (AWGN).
    """
    if k_factor < 0 or not math.isfinite(k_factor):
        raise ValueError(f"k_factor must be a finite number >= 0, got {k_factor}")
    los = math.sqrt(k_factor / (k_factor + 1.0))
    nlos = math.sqrt(1.0 / (k_factor + 1.0))
    phase = torch.as_tensor(los_phase, dtype=torch.float32, device=device)
    los_term = los * torch.polar(torch.ones_like(phase), phase)
    return los_term + nlos * complex_normal(shape, generator=generator, device=device)


def expand_blocks(h_blocks: Tensor, n: int, coherence: int) -> Tensor:
    """Repeat one coefficient per coherence block ``[B, ceil(n/L)]`` to per-symbol ``[B, n]``."""
    return h_blocks.repeat_interleave(coherence, dim=-1)[..., :n]


def equalize(y: Tensor, h_est: Tensor, n0: Tensor, mode: str = "mmse") -> Tensor:
    """One-tap equalisation of ``y = h x + w`` with the receiver's estimate ``h_est``.

    ``zf``: ``y / h_est``.  ``mmse`` (for unit-power symbols): ``conj(h) y / (|h|^2 + N0)``.
    ``none``: ``y`` unchanged.
    """
    if mode == "none":
        return y
    if mode == "zf":
        return y / h_est
    if mode == "mmse":
        return h_est.conj() * y / (h_est.abs().square() + n0)
    raise ValueError(f"equalizer must be 'zf', 'mmse' or 'none', got {mode!r}")


def effective_snr_db(snr_db: Tensor, h_est: Tensor) -> Tensor:
    """Per-block post-equalisation SNR in dB, ``snr_db + 10 log10(mean |h_est|^2)``, shape ``[B]``.

    This is what a receiver with CSI knows about its block; SNR-adaptive decoders condition on it.
    """
    gain = h_est.abs().square().mean(dim=-1).clamp_min(1e-10)
    return snr_db + 10.0 * torch.log10(gain)


def cbr(n_symbols: int, source_dims: int) -> float:
    """Bandwidth ratio: complex channel uses per real source dimension."""
    return n_symbols / source_dims


def qfunc(x: Tensor | float) -> Tensor:
    """Gaussian tail ``Q(x) = 0.5 erfc(x / sqrt 2)``."""
    x = torch.as_tensor(x, dtype=torch.float64)
    return 0.5 * torch.special.erfc(x / math.sqrt(2.0))


def ber_qpsk_awgn(ebno_db: Tensor | float) -> Tensor:
    """Uncoded Gray-QPSK (and BPSK) BER over AWGN: ``Q(sqrt(2 Eb/N0))``."""
    ebno = torch.pow(10.0, torch.as_tensor(ebno_db, dtype=torch.float64) / 10.0)
    return qfunc(torch.sqrt(2.0 * ebno))


def ber_bpsk_rayleigh(ebno_db: Tensor | float) -> Tensor:
    """Coherent BPSK over flat Rayleigh with perfect CSI: ``0.5 (1 - sqrt(g/(1+g)))``."""
    g = torch.pow(10.0, torch.as_tensor(ebno_db, dtype=torch.float64) / 10.0)
    return 0.5 * (1.0 - torch.sqrt(g / (1.0 + g)))


def ber_bpsk_rician(ebno_db: float, k_factor: float) -> float:
    """Coherent BPSK over flat Rician fading (perfect CSI), exact.

    Craig's form of the Q function averaged with the Rician moment generating function
    (Simon & Alouini, *Digital Communication over Fading Channels*, eq. 5.6 with 2.17):
    ``P = 1/pi int_0^{pi/2} (1+K) s / ((1+K) s + g) exp(-K g / ((1+K) s + g)) dtheta``,
    ``s = sin^2 theta``, ``g = Eb/N0``.  K = 0 gives the Rayleigh closed form.
    """
    from scipy import integrate

    g = 10.0 ** (ebno_db / 10.0)
    k = float(k_factor)
    if k < 0:
        raise ValueError(f"k_factor must be >= 0, got {k}")

    def integrand(theta: float) -> float:
        s = (1.0 + k) * math.sin(theta) ** 2
        return s / (s + g) * math.exp(-k * g / (s + g))

    value, _ = integrate.quad(integrand, 0.0, math.pi / 2, epsabs=1e-14, epsrel=1e-10, limit=200)
    return value / math.pi
