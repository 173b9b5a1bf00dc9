"""A static link assisted by a reconfigurable intelligent surface (RIS) whose phases are redrawn at
random for every coherence block: the channel of RIS-induced randomness for key generation in a
static environment.

    h_k = sqrt(p_d) h_d + sqrt((1 - p_d) / N) sum_i c_i exp(j theta_ik)

``h_d ~ CN(0, 1)`` is the direct path and ``c_i ~ CN(0, 1)`` the cascaded transmitter-RIS-receiver
coefficients, both static over a transmitted block; ``theta_ik`` is uniform on ``[0, 2 pi)`` and
fresh in every coherence block ``k`` (a trusted controller drives the surface).  ``E|h|^2 = 1`` as in
:mod:`semguard.channels.functional`; the time spectrum is white with ``p_d`` of the power at DC.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from semguard.channels import functional as F
from semguard.channels.base import Channel, ChannelState
from semguard.registry import register

__all__ = ["RIS", "ris_coefficients"]


def _combine(h_d: Tensor, c: Tensor, theta: Tensor, direct_power: float) -> Tensor:
    """``sqrt(p_d) h_d [B, 1] + sqrt((1 - p_d)/N) (exp(j theta) [B, K, N] @ c [B, N, 1])`` -> ``[B, K]``."""
    cascaded = (torch.polar(torch.ones_like(theta), theta) @ c).squeeze(-1)
    return math.sqrt(direct_power) * h_d + math.sqrt((1.0 - direct_power) / c.shape[1]) * cascaded


def _draw(batch: int, n_blocks: int, elements: int, generator: torch.Generator | None,
          device: torch.device | str) -> tuple[Tensor, Tensor, Tensor]:
    h_d = F.rayleigh_coefficients((batch, 1), generator=generator, device=device)
    c = F.rayleigh_coefficients((batch, elements, 1), generator=generator, device=device)
    theta = torch.rand(batch, n_blocks, elements, generator=generator, device=device) * (2.0 * math.pi)
    return h_d, c, theta


def ris_coefficients(batch: int, n_blocks: int, elements: int, direct_power: float, *,
                     generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
    """``[batch, n_blocks]`` complex64 coefficients of the module docstring, one RIS configuration per block."""
    if elements < 1 or not 0.0 <= direct_power <= 1.0:
        raise ValueError(f"need elements >= 1 and direct_power in [0, 1], got {elements} and {direct_power}")
    return _combine(*_draw(batch, n_blocks, elements, generator, device), direct_power)


@register("channel", "ris")
class RIS(Channel):
    """Static direct path plus a randomly reconfigured RIS (module docstring).

    Args:
        elements: RIS elements ``N``.
        direct_power: share ``p_d`` of the mean channel power on the direct path.
        **kwargs: the :class:`~semguard.channels.base.Channel` options; ``coherence`` (default 1) is
            the symbols per RIS configuration.
    """

    def __init__(self, *, elements: int = 64, direct_power: float = 0.2, coherence: int | None = 1,
                 **kwargs) -> None:
        super().__init__(coherence=coherence, **kwargs)
        if not (isinstance(elements, int) and elements >= 1):
            raise ValueError(f"elements must be an integer >= 1, got {elements!r}")
        if not 0.0 <= direct_power <= 1.0:
            raise ValueError(f"direct_power must be in [0, 1], got {direct_power}")
        self.elements = elements
        self.direct_power = float(direct_power)

    def _block_coefficients(self, batch: int, n_blocks: int, generator: torch.Generator | None,
                            device: torch.device) -> Tensor:
        return ris_coefficients(batch, n_blocks, self.elements, self.direct_power, generator=generator,
                                device=device)

    def sample_with_eavesdropper(self, batch: int, n: int, snr_db: Tensor | float, eve_snr_db: Tensor | float, *,
                                 rho: float, generator: torch.Generator | None = None,
                                 device: torch.device | str = "cpu") -> tuple[ChannelState, ChannelState]:
        """The link's state and an eavesdropper's under the *same* surface configurations: her direct
        and cascaded coefficients are ``rho x + sqrt(1 - rho^2) w`` of the link's (``w`` independent),
        each receiver at its own SNR."""
        if not (-1.0 <= rho <= 1.0 and math.isfinite(rho)):
            raise ValueError(f"correlation rho must be in [-1, 1], got {rho}")
        device = torch.device(device)
        n_blocks = math.ceil(n / (self.coherence or n))
        h_d, c, theta = _draw(batch, n_blocks, self.elements, generator, device)
        w_d, w_c, _ = _draw(batch, 0, self.elements, generator, device)
        s = math.sqrt(1.0 - rho * rho)
        h = _combine(h_d, c, theta, self.direct_power)
        h_e = _combine(rho * h_d + s * w_d, rho * c + s * w_c, theta, self.direct_power)
        return (self.state_from_blocks(h, n, snr_db, generator=generator),
                self.state_from_blocks(h_e, n, eve_snr_db, generator=generator))

    def extra_repr(self) -> str:
        return f"elements={self.elements}, direct_power={self.direct_power}, " + super().extra_repr()
