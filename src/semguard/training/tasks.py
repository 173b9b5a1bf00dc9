"""What a codec is trained on and judged by: image reconstruction, or classification."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.nn import functional as F

from semguard.channels.base import Channel
from semguard.codecs.base import SemanticCodec
from semguard.data.images import CropSampler
from semguard.evaluation.metrics import accuracy, psnr

__all__ = ["Task", "ImageTask", "ClassifyTask"]


class Task(Protocol):
    name: str

    def batch(self, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]: ...

    def loss(self, out: dict[str, Any], target: Tensor) -> Tensor: ...

    def validate(self, codec: SemanticCodec, channel: Channel, snr_db: float, device: torch.device,
                 generator: torch.Generator) -> float: ...


@dataclass
class ImageTask:
    """MSE on random crops; validation PSNR (dB) on held-out images."""

    sampler: CropSampler
    val_images: Sequence[Tensor]  # float [3, H, W], H and W multiples of 4
    name: str = "psnr"

    def batch(self, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = self.sampler.sample(size, generator)
        return x, x

    def loss(self, out: dict[str, Any], target: Tensor) -> Tensor:
        return F.mse_loss(out["x_hat"], target)

    @torch.no_grad()
    def validate(self, codec: SemanticCodec, channel: Channel, snr_db: float, device: torch.device,
                 generator: torch.Generator) -> float:
        vals = []
        for img in self.val_images:
            x = img.unsqueeze(0).to(device)
            vals.append(psnr(codec(x, channel, snr_db, generator=generator)["x_hat"], x))
        return float(torch.cat(vals).mean())


@dataclass
class ClassifyTask:
    """Cross-entropy on labelled images; validation accuracy on a held-out split."""

    images: Tensor  # float [N, C, H, W]
    labels: Tensor  # long [N]
    val_images: Tensor
    val_labels: Tensor
    name: str = "accuracy"

    def batch(self, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        idx = torch.randint(0, self.images.shape[0], (size,), generator=generator)
        return self.images[idx], self.labels[idx]

    def loss(self, out: dict[str, Any], target: Tensor) -> Tensor:
        return F.cross_entropy(out["logits"], target)

    @torch.no_grad()
    def validate(self, codec: SemanticCodec, channel: Channel, snr_db: float, device: torch.device,
                 generator: torch.Generator) -> float:
        correct = 0.0
        for i in range(0, self.val_images.shape[0], 1000):
            x = self.val_images[i:i + 1000].to(device)
            y = self.val_labels[i:i + 1000].to(device)
            correct += float(accuracy(codec(x, channel, snr_db, generator=generator)["logits"], y)) * len(y)
        return correct / self.val_images.shape[0]
