"""Offloading fidelity measured per delivery: every round each device's own images actually go
through the path its assignment chose, instead of being read off the SNR table.

* local: the device encodes its images and sends the features over its own Rayleigh link at its
  SNR (the features' uplink);
* offloaded to an honest node: the raw source goes up first, as analog pixels scaled to unit
  power through AWGN at the device-to-node SNR (no source or channel code on the raw uplink, the
  assumption the planner's table makes too), the node encodes the noisy image and sends the
  features over its Rayleigh link at ``edge_snr_db``;
* offloaded to an untrusted node: the node returns tampered features (random unit-power blocks)
  that go over the same link.

The accuracy a device gets in a round is the fraction of its ``per_device`` images the decoder
classifies right.  The mechanisms still *plan* with the measured table (a planner has no oracle),
and the audits' mismatch rates stay modelled (binomial draws at the table's rates).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from semguard.codecs.base import SemanticCodec
from semguard.registry import build

__all__ = ["MeasuredDelivery"]


class MeasuredDelivery:
    """``delivery(option, dev_snr, uplink_snr, tampered)`` -> per-device accuracy ``[D]`` (its own
    random streams: which images, the noise, so a mechanism's draws do not shift the others')."""

    def __init__(self, images: Tensor, labels: Tensor, *, codec: SemanticCodec | None = None,
                 edge_snr_db: float = 20.0, per_device: int = 8, seed: int = 0) -> None:
        if per_device < 1:
            raise ValueError(f"per_device must be >= 1, got {per_device}")
        if codec is None:
            from semguard.codecs.zoo import pretrained
            codec = pretrained("task-fmnist").eval()
        self.codec, self.images, self.labels = codec, images, labels
        self.edge_snr_db, self.per_device = edge_snr_db, per_device
        self.g = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.ray = build("channel", "rayleigh")
        self.awgn = build("channel", "awgn")
        self.deliveries = 0

    def _decide_features(self, z: Tensor, snr: Tensor) -> Tensor:
        st = self.ray.sample_state(z.shape[0], z.shape[1], snr, generator=self.g)
        y = self.ray.equalize(self.ray.apply(z, st, generator=self.g), st)
        return self.codec.decode(y, st).argmax(-1)

    def _raw_upload(self, x: Tensor, snr: Tensor) -> Tensor:
        """Pixels scaled to unit power per image, AWGN at ``snr`` per image, scaled back."""
        flat = x.flatten(1)
        rms = flat.square().mean(1, keepdim=True).sqrt().clamp_min(1e-6)
        s = (flat / rms).to(torch.complex64)
        st = self.awgn.sample_state(s.shape[0], s.shape[1], snr, generator=self.g)
        y = self.awgn.equalize(self.awgn.apply(s, st, generator=self.g), st).real
        return (y * rms).reshape(x.shape).clamp(0, 1)

    @torch.no_grad()
    def __call__(self, option: np.ndarray, dev_snr: np.ndarray, uplink_snr: np.ndarray,
                 tampered: np.ndarray) -> np.ndarray:
        D, k = option.shape[0], self.per_device
        idx = torch.as_tensor(self.rng.integers(0, self.images.shape[0], (D, k))).flatten()
        x, lab = self.images[idx], self.labels[idx]
        dev = torch.arange(D).repeat_interleave(k)
        local = torch.as_tensor(option < 0)[dev]
        bad = torch.as_tensor(np.asarray(tampered, dtype=bool))[dev] & ~local
        honest = ~local & ~bad
        pred = torch.empty_like(lab)
        if local.any():
            snr = torch.as_tensor(dev_snr, dtype=torch.float32)[dev[local]]
            pred[local] = self._decide_features(self.codec.encode(x[local], snr), snr)
        edge = torch.full((int(honest.sum()),), float(self.edge_snr_db))
        if honest.any():
            up = torch.as_tensor(uplink_snr, dtype=torch.float32)[dev[honest]]
            pred[honest] = self._decide_features(self.codec.encode(self._raw_upload(x[honest], up), edge), edge)
        if bad.any():
            junk = torch.randn(int(bad.sum()), self.codec.n, dtype=torch.complex64, generator=self.g)
            junk = junk / junk.abs().square().mean(1, keepdim=True).sqrt()
            pred[bad] = self._decide_features(junk, torch.full((int(bad.sum()),), float(self.edge_snr_db)))
        self.deliveries += D * k
        return (pred == lab).float().reshape(D, k).mean(1).numpy()
