"""What one client does in a round: train locally through the channel, then (if malicious) attack.

The same functions run in process, inside the Flower ``ClientApp`` under the simulation engine,
and inside a ``ClientApp`` on a real SuperNode.  A client's randomness comes from
``(seed, round, client id)`` only, so the engines give the same updates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from semguard.channels.base import Channel
from semguard.codecs.base import SemanticCodec
from semguard.federated.attacks import AttackView, FLAttack
from semguard.federated.model import get_vector, set_vector
from semguard.registry import build
from semguard.training.loop import train_step
from semguard.training.tasks import ClassifyTask, TextTask, mse_loss

OPTIMIZERS = ("adam", "sgd")

__all__ = ["LocalConfig", "OPTIMIZERS", "local_train", "client_update", "client_seed", "ClientReply"]


@dataclass(frozen=True)
class LocalConfig:
    """Local training: ``steps`` optimiser steps of ``batch`` examples with ``optimizer`` at ``lr``, the
    SNR of each example uniform in ``[snr_min_db, snr_max_db]`` (as ``semguard train``).

    ``optimizer``: ``adam``, or ``sgd`` (with ``momentum``).  Under DP-SGD plain SGD is the sound
    choice: Adam divides every coordinate by its own running magnitude, so coordinates that carry
    only the Gaussian noise take full-size steps too."""

    steps: int = 10
    batch: int = 32
    lr: float = 1e-3
    snr_min_db: float = 0.0
    snr_max_db: float = 20.0
    channel: str = "awgn"
    optimizer: str = "adam"
    momentum: float = 0.0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"--momentum must be in [0, 1), got {self.momentum}")

    def make_optimizer(self, params: Any) -> torch.optim.Optimizer:
        """A fresh local optimiser over ``params`` (every round starts one: no state crosses rounds)."""
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum)
        return torch.optim.Adam(params, lr=self.lr)


@dataclass
class ClientReply:
    """A client's answer: its update ``[D]`` (or the benign one, for a colluding attacker to replace),
    example count, mean training loss, and whether it trained."""

    cid: int
    update: Tensor
    num_examples: int
    loss: float
    trained: bool
    collude: bool = False


def client_seed(seed: int, rnd: int, cid: int) -> int:
    return (seed * 1_000_003 + rnd * 10_007 + cid * 101) % (2**62)


@dataclass(frozen=True)
class _Reconstruct:
    """A client's crops as a reconstruction task: batches ``(x, x)``, MSE of ``x_hat``."""

    images: Tensor

    def batch(self, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        x = self.images[torch.randint(0, self.images.shape[0], (size,), generator=generator)]
        return x, x

    def loss(self, out: dict[str, Any], target: Tensor) -> Tensor:
        return mse_loss(out, target)


def _local_task(codec: SemanticCodec, images: Tensor, targets: Tensor) -> Any:
    inner = getattr(codec, "_module", codec)  # Opacus' GradSampleModule wraps the codec
    if images.dtype == torch.long:  # token ids (DeepSC): the sentence is its own target
        return TextTask(images, images[:1])
    if inner.output_key == "logits":
        return ClassifyTask(images, targets, images[:1], targets[:1])
    return _Reconstruct(images)


def local_train(codec: SemanticCodec, images: Tensor, labels: Tensor, cfg: LocalConfig, seed: int,
                channel: Channel | None = None, optimizer: torch.optim.Optimizer | None = None,
                step: Callable[..., Tensor] = train_step) -> float:
    """``cfg.steps`` training steps of ``codec`` (in place) on ``images``/``labels``; mean loss.  A
    classifier (``output_key`` ``logits``) takes cross-entropy on the labels, an image codec the MSE
    of its reconstruction (``labels`` are then the images themselves), DeepSC (``images`` are token ids
    ``[N, T]``) the cross-entropy of the received tokens.  ``step``: one optimiser step, with
    :func:`~semguard.training.loop.train_step`'s signature (the microbatch DP-SGD step replaces it)."""
    channel = channel if channel is not None else build("channel", cfg.channel)
    gen = torch.Generator().manual_seed(seed)
    chan_gen = torch.Generator().manual_seed(seed + 1)
    task = _local_task(codec, images, labels)
    opt = optimizer if optimizer is not None else cfg.make_optimizer(codec.parameters())
    codec.train()
    total = 0.0
    for _ in range(cfg.steps):
        x, y = task.batch(min(cfg.batch, images.shape[0]), gen)
        snr = cfg.snr_min_db + (cfg.snr_max_db - cfg.snr_min_db) * torch.rand(x.shape[0], generator=gen)
        total += float(step(codec, task.loss, opt, x, y, channel, snr, generator=chan_gen))
    codec.eval()
    return total / max(cfg.steps, 1)


def client_update(codec: SemanticCodec, global_vec: Tensor, images: Tensor, labels: Tensor, cfg: LocalConfig, *,
                  cid: int, rnd: int, seed: int, attack: FLAttack | None = None,
                  last_global_update: Tensor | None = None, trainer: Any = None) -> ClientReply:
    """One client's round.  ``attack`` None: honest.  Data attacks poison the local data, free riders
    skip training, model attacks replace the update (colluding ones are left to the server-side
    collusion stage, which sees what their threat model grants: ``collude=True``).

    ``trainer``: an optional callable ``(codec, images, labels, cfg, seed) -> loss`` replacing
    :func:`local_train` (the DP-SGD trainer).
    """
    s = client_seed(seed, rnd, cid)
    D = global_vec.numel()
    if attack is not None and not attack.trains:
        view = AttackView(D, last_global_update=last_global_update, generator=torch.Generator().manual_seed(s))
        return ClientReply(cid, attack.craft(None, view)[0], int(images.shape[0]), float("nan"), trained=False)
    if attack is not None:
        images, labels = attack.poison(images, labels, torch.Generator().manual_seed(s + 7))
    set_vector(codec, global_vec)
    loss = (trainer or local_train)(codec, images, labels, cfg, s)
    update = get_vector(codec) - global_vec
    collude = False
    if attack is not None and attack.threat.kind == "model":
        if attack.threat.collusion:
            collude = True
        else:
            update = attack.craft(update[None], AttackView(D, last_global_update=last_global_update))[0]
    return ClientReply(cid, update, int(images.shape[0]), loss, trained=True, collude=collude)
