"""What one client does in a round: train locally through the channel, then (if malicious) attack.

The same functions run in process, inside the Flower ``ClientApp`` under the simulation engine,
and inside a ``ClientApp`` on a real SuperNode.  A client's randomness comes from
``(seed, round, client id)`` only, so the engines give the same updates.
"""

from __future__ import annotations

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
from semguard.training.tasks import ClassifyTask

__all__ = ["LocalConfig", "local_train", "client_update", "client_seed", "ClientReply"]


@dataclass(frozen=True)
class LocalConfig:
    """Local training: ``steps`` optimiser steps of ``batch`` examples with Adam at ``lr``, the SNR of
    each example uniform in ``[snr_min_db, snr_max_db]`` (as ``semguard train``)."""

    steps: int = 10
    batch: int = 32
    lr: float = 1e-3
    snr_min_db: float = 0.0
    snr_max_db: float = 20.0
    channel: str = "awgn"


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


def local_train(codec: SemanticCodec, images: Tensor, labels: Tensor, cfg: LocalConfig, seed: int,
                channel: Channel | None = None, optimizer: torch.optim.Optimizer | None = None) -> float:
    """``cfg.steps`` training steps of ``codec`` (in place) on ``images``/``labels``; mean loss."""
    channel = channel if channel is not None else build("channel", cfg.channel)
    gen = torch.Generator().manual_seed(seed)
    chan_gen = torch.Generator().manual_seed(seed + 1)
    task = ClassifyTask(images, labels, images[:1], labels[:1])
    opt = optimizer if optimizer is not None else torch.optim.Adam(codec.parameters(), lr=cfg.lr)
    codec.train()
    total = 0.0
    for _ in range(cfg.steps):
        x, y = task.batch(min(cfg.batch, images.shape[0]), gen)
        snr = cfg.snr_min_db + (cfg.snr_max_db - cfg.snr_min_db) * torch.rand(x.shape[0], generator=gen)
        total += float(train_step(codec, task.loss, opt, x, y, channel, snr, generator=chan_gen))
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
