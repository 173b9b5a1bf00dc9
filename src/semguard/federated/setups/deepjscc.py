"""The image codec's setup: a small DeepJSCC on photo crops, PSNR (:mod:`semguard.federated.image`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from semguard.codecs.base import SemanticCodec
from semguard.federated.model import federated_codec
from semguard.federated.setups.base import CodecData, CodecSetup

if TYPE_CHECKING:
    from semguard.federated.engine import Federation, FLConfig

__all__ = ["DeepJSCCSetup"]


class DeepJSCCSetup(CodecSetup):
    """Crops of ``crop`` pixels of the training photos (``train_crops`` per photo) split by source
    photo; root crops of the same photos; held-out crops of other photos.  DeepJSCC of ``width``
    and ``cbr``."""

    name = "deepjscc"
    metrics = ("psnr",)
    options = ("cbr", "crop", "train_crops")

    def check(self, cfg: FLConfig) -> None:
        from semguard.codecs.deepjscc import latent_channels

        if cfg.crop < 8 or cfg.crop % 4:
            raise ValueError(f"--crop must be a multiple of 4 and >= 8, got {cfg.crop}")
        if cfg.train_crops < 1:
            raise ValueError(f"--train-crops must be >= 1, got {cfg.train_crops}")
        try:
            latent_channels(cfg.cbr)
        except ValueError as e:
            raise ValueError(f"--cbr: {e}") from None
        super().check(cfg)

    def data(self, cfg: FLConfig, generator: torch.Generator, images: Tensor | None,
             labels: Tensor | None) -> CodecData:
        from semguard.federated.image import photo_data

        d = photo_data(cfg.seed, crop=cfg.crop, train_per_photo=cfg.train_crops, root_size=cfg.root_size,
                       test_size=cfg.test_size)
        return CodecData(images=d.train, labels=d.source, pool=torch.arange(d.train.shape[0]),
                         test_x=d.test, test_y=d.test, root_x=d.root, root_y=d.root)

    def codec(self, cfg: FLConfig, data: CodecData) -> SemanticCodec:
        return federated_codec("deepjscc", seed=cfg.seed, width=cfg.width, cbr=cfg.cbr)

    def evaluate(self, fed: Federation, codec: SemanticCodec, generator: torch.Generator) -> dict[str, float]:
        from semguard.federated.image import image_metrics

        return image_metrics(codec, fed.test_x, fed.channel, fed.cfg.eval_snr_db, generator)
