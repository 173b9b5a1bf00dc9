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

import numpy as np
import torch
from torch import Tensor, nn

from semguard.channels import AWGN
from semguard.knowledge.codec_io import load_codec, save_codec
from semguard.knowledge.records import Hello
from semguard.knowledge.store import KnowledgeBase
from semguard.knowledge.sync import handshake

__all__ = ["training_images", "canary_images", "random_crops", "train_steps", "psnr_db",
           "link_psnr", "DesyncReport", "desync_cost", "build_trained_versions"]
log = logging.getLogger(__name__)


def _to_tensor(img: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float() / 255.0


def training_images() -> list[Tensor]:
    """``astronaut`` and ``coffee`` as [3, H, W] floats in [0, 1]."""
    import skimage.data as data
    return [_to_tensor(data.astronaut()), _to_tensor(data.coffee())]


def canary_images(n: int = 16, size: int = 32, seed: int = 1234) -> Tensor:
    """Held-out canary crops ``[n, 3, size, size]`` from ``chelsea`` and ``rocket`` (not trained on)."""
    import skimage.data as data
    return random_crops([_to_tensor(data.chelsea()), _to_tensor(data.rocket())], n, size,
                        torch.Generator().manual_seed(seed))


def random_crops(images: list[Tensor], n: int, size: int, generator: torch.Generator) -> Tensor:
    """``n`` random ``size x size`` crops ``[n, 3, size, size]`` (image chosen uniformly)."""
    which = torch.randint(len(images), (n,), generator=generator).tolist()
    out = []
    for i in which:
        img = images[i]
        y = int(torch.randint(img.shape[1] - size + 1, (1,), generator=generator))
        x = int(torch.randint(img.shape[2] - size + 1, (1,), generator=generator))
        out.append(img[:, y:y + size, x:x + size])
    return torch.stack(out)


def psnr_db(x: Tensor, ref: Tensor) -> Tensor:
    """Per-image PSNR (peak 1) ``[B]`` of ``x`` against ``ref`` (both ``[B, C, H, W]`` in [0, 1])."""
    mse = ((x - ref) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return -10.0 * torch.log10(mse)


def train_steps(codec: nn.Module, images: list[Tensor], steps: int, *, snr_db: float = 10.0,
                batch: int = 16, size: int = 32, lr: float = 1e-3, seed: int = 0,
                target: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None) -> nn.Module:
    """Train ``codec`` in place for ``steps`` Adam steps of MSE over AWGN at ``snr_db``.

    ``target`` (optional) maps a clean batch to ``(inputs, wanted outputs)`` — used to build
    backdoored codecs in the poisoning study; default is plain reconstruction.
    """
    g = torch.Generator().manual_seed(seed)
    channel, opt = AWGN(), torch.optim.Adam(codec.parameters(), lr=lr)
    codec.train()
    for _ in range(steps):
        x = random_crops(images, batch, size, g)
        inp, want = target(x) if target is not None else (x, x)
        out = codec(inp, channel, snr_db, generator=g)["x_hat"]
        loss = torch.mean((out - want) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    codec.eval()
    return codec


@torch.no_grad()
def link_psnr(encoder: nn.Module, decoder: nn.Module, images: Tensor, *, snr_db: float = 10.0,
              seed: int = 0) -> float:
    """Mean PSNR (dB) of ``decoder(channel(encoder(images)))`` with a fixed-seed AWGN channel."""
    g = torch.Generator().manual_seed(seed)
    x = encoder.encode(images, snr_db)
    y, state = AWGN()(x, snr_db, generator=g)
    out = decoder.decode(y, state, **decoder.decode_kwargs(images))
    return float(psnr_db(out, images).mean())


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
