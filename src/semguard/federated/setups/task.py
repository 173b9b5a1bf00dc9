"""The task codec's setup: Fashion-MNIST classes, accuracy and backdoor success."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from semguard.codecs.base import SemanticCodec
from semguard.federated.attacks import Backdoor, apply_trigger
from semguard.federated.model import federated_codec
from semguard.federated.setups.base import EVAL_SEED, CodecData, CodecSetup

if TYPE_CHECKING:
    from semguard.federated.engine import Federation, FLConfig

__all__ = ["TaskSetup"]


class TaskSetup(CodecSetup):
    """The shipped Fashion-MNIST images (or ``images`` / ``labels`` given), shuffled from the seed
    into ``test_size`` held-out images, ``root_size`` root images and the clients' pool, split by
    class.  The codec is the task codec (``width``, ``n_symbols``) with GroupNorm."""

    name = "task"
    metrics = ("accuracy", "backdoor_success")
    options = ("n_symbols",)
    reconstruct = False

    def check(self, cfg: FLConfig) -> None:  # every attack applies to a classifier
        return None

    def data(self, cfg: FLConfig, generator: torch.Generator, images: Tensor | None,
             labels: Tensor | None) -> CodecData:
        if images is None:
            from semguard.data.shipped import shipped_fashion_mnist

            images, labels = shipped_fashion_mnist()
        elif labels is None:
            raise ValueError("the task codec needs labels with its images")
        perm = torch.randperm(images.shape[0], generator=generator)
        t, r = cfg.test_size, cfg.root_size
        if images.shape[0] < t + r + 2 * cfg.clients:
            raise ValueError(f"{images.shape[0]} images are too few for a {t}-image test set, a {r}-image "
                             f"root set and {cfg.clients} clients")
        return CodecData(images=images, labels=labels, pool=perm[t + r:],
                         test_x=images[perm[:t]], test_y=labels[perm[:t]],
                         root_x=images[perm[t:t + r]], root_y=labels[perm[t:t + r]])

    def codec(self, cfg: FLConfig, data: CodecData) -> SemanticCodec:
        return federated_codec("task", seed=cfg.seed, n_symbols=cfg.n_symbols, width=cfg.width)

    def evaluate(self, fed: Federation, codec: SemanticCodec, generator: torch.Generator) -> dict[str, float]:
        """Accuracy on the held-out images, and backdoor success: the share of held-out images of
        other classes that the run's trigger (or the default one) turns into its target class."""
        out = codec(fed.test_x, fed.channel, fed.cfg.eval_snr_db, generator=generator)["logits"]
        acc = float((out.argmax(1) == fed.test_y).float().mean())
        bd = fed.attack if isinstance(fed.attack, Backdoor) else Backdoor()
        keep = fed.test_y != bd.target
        generator.manual_seed(EVAL_SEED)  # the triggered images see the same channel draws
        trig = codec(apply_trigger(fed.test_x[keep], bd.size), fed.channel, fed.cfg.eval_snr_db,
                     generator=generator)["logits"]
        return {"accuracy": acc, "backdoor_success": float((trig.argmax(1) == bd.target).float().mean())}
