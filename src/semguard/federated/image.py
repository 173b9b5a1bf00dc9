"""The image federation: a small DeepJSCC trained across clients on photo crops.

Clients hold crops of scikit-image's bundled colour photos (:data:`TRAIN_PHOTOS`), split non-IID
by source photo (per-photo Dirichlet proportions, as the task federation splits by class); the
server's FLTrust root set is further crops of the same photos; the global model is scored by
PSNR on crops of two other photos (:data:`TEST_PHOTOS`), which no client holds, through AWGN.
The codec is the registry's ``deepjscc`` (PReLU, no normalisation layers: a model is exactly
its parameters, as :mod:`semguard.federated.model` needs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from semguard.channels.base import Channel
from semguard.codecs.base import SemanticCodec
from semguard.data.images import crops_by_source
from semguard.data.photos import skimage_photos
from semguard.metrics.image import psnr

__all__ = ["TEST_PHOTOS", "TRAIN_PHOTOS", "PhotoData", "image_metrics", "photo_data"]

TRAIN_PHOTOS = ("astronaut", "coffee", "hubble_deep_field", "immunohistochemistry", "retina")
TEST_PHOTOS = ("chelsea", "rocket")


@dataclass(frozen=True)
class PhotoData:
    """Client pool ``train`` ``[N, 3, s, s]`` with its source photo ``source`` ``[N]``; the server's
    ``root`` crops; the held-out ``test`` crops (other photos)."""

    train: Tensor
    source: Tensor
    root: Tensor
    test: Tensor


def photo_data(seed: int, *, crop: int, train_per_photo: int, root_size: int, test_size: int) -> PhotoData:
    """Crops of ``crop`` pixels (photos at a 256-pixel shorter side) drawn from ``seed``."""
    g = torch.Generator().manual_seed(seed * 7919 + 17)
    train_imgs = skimage_photos(*TRAIN_PHOTOS)
    train, source = crops_by_source(train_imgs, train_per_photo, crop, g)
    root, _ = crops_by_source(train_imgs, -(-root_size // len(TRAIN_PHOTOS)), crop, g)
    test, _ = crops_by_source(skimage_photos(*TEST_PHOTOS), -(-test_size // len(TEST_PHOTOS)), crop, g)
    return PhotoData(train, source, root[:root_size], test[:test_size])


@torch.no_grad()
def image_metrics(codec: SemanticCodec, images: Tensor, channel: Channel, snr_db: float,
                  generator: torch.Generator) -> dict[str, float]:
    """Mean per-crop PSNR (dB, peak 1) of ``codec`` on ``images`` through ``channel`` at ``snr_db``."""
    codec.eval()
    x_hat = codec(images, channel, snr_db, generator=generator)["x_hat"]
    return {"psnr": float(psnr(x_hat.clamp(0, 1), images).mean())}
