"""Building blocks: GDN (Balle et al. 2016) and the SNR attention module of ADJSCC."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["GDN", "SNRAttention"]


class GDN(nn.Module):
    """Generalised divisive normalisation ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)``.

    ``inverse=True`` gives IGDN (multiplies instead).  Parameters are kept non-negative by
    squaring a reparameterisation, as in Balle et al.
    """

    def __init__(self, channels: int, *, inverse: bool = False, beta_min: float = 1e-6,
                 gamma_init: float = 0.1) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_min = beta_min
        self._pedestal = 2.0 ** -36
        self.beta = nn.Parameter(torch.sqrt(torch.ones(channels) + self._pedestal))
        self.gamma = nn.Parameter(torch.sqrt(gamma_init * torch.eye(channels) + self._pedestal))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        beta = self.beta.clamp_min((self.beta_min + self._pedestal) ** 0.5).square() - self._pedestal
        gamma = self.gamma.clamp_min(self._pedestal ** 0.5).square() - self._pedestal
        norm = F.conv2d(x * x, gamma.view(c, c, 1, 1), beta)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


class SNRAttention(nn.Module):
    """Channel-wise feature scaling by SNR (the AF module of ADJSCC, Xu et al. 2021).

    Pools features to ``[B, C]``, appends the SNR (dB / 20), and maps through a small MLP to a
    sigmoid gain per channel — one set of weights serves a whole SNR range.
    """

    def __init__(self, channels: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or max(channels // 4, 8)
        self.mlp = nn.Sequential(nn.Linear(channels + 1, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: Tensor, snr_db: Tensor) -> Tensor:
        ctx = torch.cat([x.mean(dim=(2, 3)), (snr_db / 20.0).unsqueeze(1).to(x.dtype)], dim=1)
        return x * self.mlp(ctx)[:, :, None, None]
