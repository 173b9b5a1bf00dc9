"""Task-oriented codec: the receiver decides a class directly from received symbols.

The transmitter is a small CNN that maps a greyscale image to ``n`` complex symbols; the
receiver is an MLP on the (equalised) symbols plus its post-equalisation SNR, ending in class
logits — no image is ever reconstructed (edge inference as in Shao, Mao, Zhang, "Learning
Task-Oriented Communication for Edge Inference", IEEE JSAC 2022, without the IB regulariser).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from semguard.channels.base import ChannelState, as_snr_tensor
from semguard.channels.functional import normalize_power
from semguard.codecs.base import SemanticCodec, symbols_from_real
from semguard.registry import register

__all__ = ["TaskCodec", "task_fmnist"]


class TaskCodec(SemanticCodec):
    """Image ``[B, C, H, W]`` in [0, 1] -> ``n_symbols`` complex symbols -> ``num_classes`` logits.

    Args:
        n_symbols: complex channel uses per image.
        in_channels, image_size: the source (1 x 28 x 28 for (Fashion-)MNIST).
        num_classes: number of classes.
        width: CNN width.
    """

    output_key = "logits"

    def __init__(self, *, n_symbols: int = 16, in_channels: int = 1, image_size: int = 28,
                 num_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        if n_symbols < 1:
            raise ValueError(f"n_symbols must be >= 1, got {n_symbols}")
        self.n = n_symbols
        self.in_channels, self.image_size = in_channels, image_size
        self.config = {"n_symbols": n_symbols, "in_channels": in_channels, "image_size": image_size,
                       "num_classes": num_classes, "width": width}
        w = width
        feat = 2 * w * ((image_size + 3) // 4) ** 2
        self.enc = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(inplace=True),
            nn.Flatten(), nn.Linear(feat, 256), nn.ReLU(inplace=True), nn.Linear(256, 2 * n_symbols),
        )
        self.dec = nn.Sequential(
            nn.Linear(2 * n_symbols + 1, 256), nn.ReLU(inplace=True),
            nn.Linear(256, 256), nn.ReLU(inplace=True), nn.Linear(256, num_classes),
        )

    def check_source(self, source: Tensor) -> None:
        want = (self.in_channels, self.image_size, self.image_size)
        if source.dim() != 4 or tuple(source.shape[1:]) != want:
            raise ValueError(f"task codec expects images [batch, {want[0]}, {want[1]}, {want[2]}], "
                             f"got {tuple(source.shape)}")

    def n_symbols(self, source_shape: tuple[int, ...]) -> int:
        return self.n

    def encode(self, source: Tensor, snr_db: Tensor | float) -> Tensor:
        self.check_source(source)
        as_snr_tensor(snr_db, source.shape[0], source.device)  # validates; the encoder is SNR-blind
        return normalize_power(symbols_from_real(self.enc(source - 0.5)))

    def decode(self, y: Tensor, state: ChannelState, **_: Any) -> Tensor:
        if not torch.is_complex(y) or y.dim() != 2 or y.shape[1] != self.n:
            raise ValueError(f"decode expects complex symbols [batch, {self.n}], got {y.dtype} {tuple(y.shape)}")
        feats = torch.cat([torch.view_as_real(y).flatten(1), (state.effective_snr_db / 20.0).unsqueeze(1)], 1)
        return self.dec(feats)


@register("codec", "task")
def task_fmnist(*, n_symbols: int = 16, **kw: Any) -> TaskCodec:
    """Fashion-MNIST / MNIST classifier over the channel (1x28x28 in, 10 classes out)."""
    return TaskCodec(n_symbols=n_symbols, **kw)
