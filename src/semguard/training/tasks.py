"""What a codec is trained on and judged by: image reconstruction, classification, or text."""

from __future__ import annotations

import math

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.nn import functional as F

from semguard.channels.base import Channel
from semguard.codecs._text_tokenizer import PAD_ID
from semguard.codecs.base import SemanticCodec
from semguard.data.images import CropSampler
from semguard.metrics.image import accuracy, psnr

__all__ = ["Task", "ImageTask", "ClassifyTask", "TextTask", "masked_token_ce", "token_hits"]


class Task(Protocol):
    name: str

    def batch(self, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]: ...

    def loss(self, out: dict[str, Any], target: Tensor) -> Tensor: ...

    def validate(self, codec: SemanticCodec, channel: Channel, snr_db: float, device: torch.device,
                 generator: torch.Generator) -> float: ...


IMAGE_OBJECTIVES = ("mse", "psnr")


def mse_loss(out: dict[str, Any], target: Tensor) -> Tensor:
    """Batch MSE of the reconstruction ``out["x_hat"]``."""
    return F.mse_loss(out["x_hat"], target)


def neg_psnr_loss(out: dict[str, Any], target: Tensor) -> Tensor:
    """Minus the mean per-crop PSNR (peak 1), i.e. the batch mean of ``10 log10(mse_i)``."""
    return -psnr(out["x_hat"], target).mean()


@dataclass
class ImageTask:
    """MSE (or mean per-crop PSNR) on random crops; validation PSNR (dB) on held-out images.

    ``objective="mse"`` minimises the batch MSE, in which crops sent at low SNR (large errors)
    dominate.  ``"psnr"`` maximises the mean per-crop PSNR, i.e. minimises the mean of
    ``10 log10(mse_i)``: every crop counts the same in dB, whatever its SNR, which is what a
    PSNR-vs-SNR curve averages.
    """

    sampler: CropSampler
    val_images: Sequence[Tensor]  # float [3, H, W], H and W multiples of ALIGN (16)
    name: str = "psnr"
    objective: str = "mse"

    def __post_init__(self) -> None:
        if self.objective not in IMAGE_OBJECTIVES:
            raise ValueError(f"objective must be one of {IMAGE_OBJECTIVES}, got {self.objective!r}")

    def batch(self, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = self.sampler.sample(size, generator)
        return x, x

    def loss(self, out: dict[str, Any], target: Tensor) -> Tensor:
        if self.objective == "psnr":
            return neg_psnr_loss(out, target)
        return mse_loss(out, target)

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
    """Cross-entropy on labelled images; validation accuracy on a held-out split.

    ``noise_sigma > 0`` is Gaussian data augmentation (Cohen et al. 2019): every training and
    validation image gets ``N(0, noise_sigma^2)`` per pixel, unclipped, the noise that randomized
    smoothing (:class:`semguard.defenses.smoothing.SmoothedClassifier`) certifies with, so the
    validation accuracy is the base classifier's under that noise."""

    images: Tensor  # float [N, C, H, W]
    labels: Tensor  # long [N]
    val_images: Tensor
    val_labels: Tensor
    name: str = "accuracy"
    noise_sigma: float = 0.0

    def __post_init__(self) -> None:
        if not (self.noise_sigma >= 0 and math.isfinite(self.noise_sigma)):
            raise ValueError(f"noise_sigma must be finite and >= 0, got {self.noise_sigma}")

    def _noisy(self, x: Tensor, generator: torch.Generator) -> Tensor:
        if self.noise_sigma == 0:
            return x
        return x + self.noise_sigma * torch.randn(x.shape, generator=generator).to(x.device)

    def batch(self, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        idx = torch.randint(0, self.images.shape[0], (size,), generator=generator)
        return self._noisy(self.images[idx], generator), self.labels[idx]

    def loss(self, out: dict[str, Any], target: Tensor) -> Tensor:
        return F.cross_entropy(out["logits"], target)

    @torch.no_grad()
    def validate(self, codec: SemanticCodec, channel: Channel, snr_db: float, device: torch.device,
                 generator: torch.Generator) -> float:
        correct = 0.0
        for i in range(0, self.val_images.shape[0], 1000):
            x = self._noisy(self.val_images[i:i + 1000].to(device), generator)
            y = self.val_labels[i:i + 1000].to(device)
            correct += float(accuracy(codec(x, channel, snr_db, generator=generator)["logits"], y)) * len(y)
        return correct / self.val_images.shape[0]


def masked_token_ce(logits: Tensor, tokens: Tensor, pad_id: int = PAD_ID) -> Tensor:
    """Mean cross-entropy (nats) over the real token slots: ``logits [B, T, V]``, ``tokens [B, T]``."""
    mask = tokens != pad_id
    return F.cross_entropy(logits[mask], tokens[mask])


def token_hits(logits: Tensor, tokens: Tensor, pad_id: int = PAD_ID) -> tuple[int, int]:
    """(greedy ``argmax`` ids equal to ``tokens`` over real slots, number of real slots)."""
    mask = tokens != pad_id
    return int((logits.argmax(-1)[mask] == tokens[mask]).sum()), int(mask.sum())


def _check_ids(ids: Tensor, what: str) -> Tensor:
    if ids.dim() != 2 or ids.dtype != torch.long or ids.shape[0] == 0:
        raise ValueError(f"TextTask {what} must be non-empty token ids LongTensor[N, T], got {ids.dtype} "
                         f"{tuple(ids.shape)}")
    lengths = (ids != PAD_ID).sum(1)
    if lengths.min() < 1:
        raise ValueError(f"TextTask {what}: row {int(lengths.argmin())} has no real token")
    return lengths


@dataclass
class TextTask:
    """Token ids of sentences (DeepSC): cross-entropy over real token slots; validation token accuracy.

    ``train_ids`` / ``val_ids``: LongTensor ``[N, T]`` right-padded with ``PAD_ID`` (from
    ``TextTokenizer.encode``), the training and validation parts of the corpus hash split.  Batches
    are drawn uniformly with replacement and cut to their longest sentence.  ``validate`` returns
    the fraction of real tokens of the whole validation set decoded correctly (greedy argmax).
    """

    train_ids: Tensor
    val_ids: Tensor
    val_batch: int = 256
    name: str = "token_accuracy"

    def __post_init__(self) -> None:
        self._train_len = _check_ids(self.train_ids, "train_ids")
        val_len = _check_ids(self.val_ids, "val_ids")
        self.val_ids = self.val_ids[torch.argsort(val_len, stable=True)]  # less padding per chunk

    def batch(self, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        idx = torch.randint(0, self.train_ids.shape[0], (size,), generator=generator)
        x = self.train_ids[idx, :int(self._train_len[idx].max())]
        return x, x

    def loss(self, out: dict[str, Any], target: Tensor) -> Tensor:
        return masked_token_ce(out["logits"], target)

    @torch.no_grad()
    def validate(self, codec: SemanticCodec, channel: Channel, snr_db: float, device: torch.device,
                 generator: torch.Generator) -> float:
        hits = total = 0
        for i in range(0, self.val_ids.shape[0], self.val_batch):
            x = self.val_ids[i:i + self.val_batch]
            x = x[:, :int((x != PAD_ID).sum(1).max())].to(device)
            h, n = token_hits(codec(x, channel, snr_db, generator=generator)["logits"], x)
            hits, total = hits + h, total + n
        return hits / total
