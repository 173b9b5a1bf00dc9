"""What prior desynchronisation costs: decoder at version v-1 against encoder at v.

A tiny image codec is trained on random crops of ``skimage.data.astronaut()`` and ``coffee()``
for ``steps`` steps (version v-1), then ``steps`` more (version v); both are published to a
knowledge base.  :func:`desync_cost` measures canary PSNR for the matched pairs and the
mismatched pair, and runs the link-set-up handshake on each pair to show it flags exactly the
mismatched ones.  Works with any image :class:`SemanticCodec` (pass a factory).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from semguard.channels import AWGN
from semguard.data.images import random_crops
from semguard.data.photos import skimage_photos
from semguard.knowledge.codec_io import load_codec, save_codec
from semguard.knowledge.records import Hello
from semguard.knowledge.store import KnowledgeBase
from semguard.knowledge.sync import handshake
from semguard.link import Link
from semguard.metrics.image import psnr
from semguard.training.loop import train_step
from semguard.training.tasks import mse_loss

__all__ = ["training_images", "canary_images", "train_steps", "link_psnr", "DesyncReport", "desync_cost",
           "build_trained_versions"]
log = logging.getLogger(__name__)


def training_images() -> list[Tensor]:
    """``astronaut`` and ``coffee`` as [3, H, W] floats in [0, 1]."""
    return skimage_photos("astronaut", "coffee")


def canary_images(n: int = 16, size: int = 32, seed: int = 1234) -> Tensor:
    """Held-out canary crops ``[n, 3, size, size]`` from ``chelsea`` and ``rocket`` (not trained on)."""
    return random_crops(skimage_photos("chelsea", "rocket"), n, size, torch.Generator().manual_seed(seed))


def train_steps(codec: nn.Module, images: list[Tensor], steps: int, *, snr_db: float = 10.0,
                batch: int = 16, size: int = 32, lr: float = 1e-3, seed: int = 0,
                target: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None) -> nn.Module:
    """Train ``codec`` in place for ``steps`` Adam steps of MSE over AWGN at ``snr_db``
    (:func:`semguard.training.loop.train_step` on random crops).

    ``target`` (optional) maps a clean batch to ``(inputs, wanted outputs)`` -- used to build
    backdoored codecs in the poisoning study; default is plain reconstruction.
    """
    g = torch.Generator().manual_seed(seed)
    channel, opt = AWGN(), torch.optim.Adam(codec.parameters(), lr=lr)
    codec.train()
    for _ in range(steps):
        x = random_crops(images, batch, size, g)
        inp, want = target(x) if target is not None else (x, x)
        train_step(codec, mse_loss, opt, inp, want, channel, snr_db, generator=g)
    codec.eval()
    return codec


@torch.no_grad()
def link_psnr(encoder: nn.Module, decoder: nn.Module, images: Tensor, *, snr_db: float = 10.0,
              seed: int = 0) -> float:
    """Mean PSNR (dB) of ``decoder``'s link carrying ``encoder``'s symbols over a fixed-seed AWGN channel."""
    g = torch.Generator().manual_seed(seed)
    x = encoder.encode(images, snr_db)
    out = Link(decoder, AWGN())(images, snr_db, generator=g, symbols=x)["output"]
    return float(psnr(out, images).mean())

@dataclass(frozen=True)
class DesyncReport:
    """PSNR (dB) of each (encoder version, decoder version) pair and the handshake verdicts."""

    psnr: dict[tuple[int, int], float]
    handshake_state: dict[tuple[int, int], str]
    drop_db: float           # matched(v) - mismatched(enc v, dec v-1)
    detected: int            # mismatched pairs the handshake flagged
    mismatched: int
    false_alarms: int        # matched pairs the handshake flagged


def desync_cost(kb: KnowledgeBase, name: str, factory: Callable[..., nn.Module], versions: list[int],
                images: Tensor, *, snr_db: float = 10.0) -> DesyncReport:
    """Every (encoder, decoder) pair over ``versions`` of codec ``name`` loaded through ``kb``."""
    codecs = {v: load_codec(kb, name, factory, version=v) for v in versions}
    hellos = {v: Hello(kb.kb_id, v, kb.record(v).root, kb.log_root(v)) for v in versions}
    psnr, states = {}, {}
    for ve in versions:
        for vd in versions:
            psnr[(ve, vd)] = link_psnr(codecs[ve], codecs[vd], images, snr_db=snr_db)
            states[(ve, vd)] = handshake(hellos[vd], hellos[ve]).state
    mism = [p for p in psnr if p[0] != p[1]]
    v, prev = versions[-1], versions[-2]
    return DesyncReport(psnr, states, psnr[(v, v)] - psnr[(v, prev)],
                        sum(states[p] != "in_sync" for p in mism), len(mism),
                        sum(states[p] != "in_sync" for p in psnr if p[0] == p[1]))


def build_trained_versions(kb: KnowledgeBase, key, factory: Callable[..., nn.Module], *,
                           name: str = "codec", steps: int = 200, seed: int = 0,
                           **factory_kw) -> list[int]:
    """Publish random init, +``steps`` and +2``steps`` training snapshots; returns their versions."""
    torch.manual_seed(seed)
    codec, imgs, out = factory(**factory_kw), training_images(), []
    out.append(save_codec(kb, key, name, codec, note="init").version)
    for i in (1, 2):
        train_steps(codec, imgs, steps, seed=seed + i)
        out.append(save_codec(kb, key, name, codec, note=f"trained {i * steps} steps").version)
        log.info("codec %s trained %d steps", name, i * steps)
    return out
