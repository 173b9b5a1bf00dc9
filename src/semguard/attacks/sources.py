"""What an attacker trains on: photos that are not the evaluation set, and its own surrogate codec.

:func:`attacker_photos` crops scikit-image's colour photos that the shipped evaluation photos do not
come from (Hubble deep field, retina, immunohistochemistry; scikit-learn's two sample photos too when
it is installed).  :func:`train_surrogate` is the attacker's own short training run of a codec.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor

from semguard.channels.base import Channel
from semguard.codecs.base import SemanticCodec
from semguard.training.loop import train_step

__all__ = ["attacker_photos", "attacker_surrogate", "train_surrogate", "train_task_surrogate"]

log = logging.getLogger(__name__)


def _photo_arrays(include_sklearn: bool) -> list[np.ndarray]:
    import skimage.data as skd
    arrays = [skd.hubble_deep_field(), skd.retina(), skd.immunohistochemistry()]
    if not include_sklearn:
        return [np.asarray(a)[..., :3] for a in arrays]
    try:  # optional: two more natural photos
        from sklearn.datasets import load_sample_images
        arrays += list(load_sample_images().images)
    except ImportError:
        pass
    return [np.asarray(a)[..., :3] for a in arrays]


def attacker_photos(n: int = 16, *, side: int = 256, seed: int = 0, include_sklearn: bool = True) -> Tensor:
    """``n`` random ``side x side`` crops ``[n, 3, side, side]`` in [0, 1] of photos disjoint from the
    evaluation photos (``semguard.data.photos.shipped_photos``), cycling over the photos
    (``include_sklearn``: add scikit-learn's two sample photos when it is installed)."""
    if n < 1 or side < 8:
        raise ValueError(f"n must be >= 1 and side >= 8, got n={n}, side={side}")
    rng = np.random.default_rng(seed)
    arrays = _photo_arrays(include_sklearn)
    out = []
    for i in range(n):
        a = arrays[i % len(arrays)]
        h, w = a.shape[:2]
        if h < side or w < side:
            raise ValueError(f"side {side} exceeds a training photo of {h}x{w}")
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        out.append(torch.from_numpy(np.ascontiguousarray(a[top:top + side, left:left + side])).permute(2, 0, 1))
    return torch.stack(out).float() / 255.0


def train_surrogate(codec: SemanticCodec, images: Tensor, channels: list[Channel], *, steps: int = 400,
                    batch: int = 8, crop: int = 64, lr: float = 2e-3, snr_db: tuple[float, float] = (0.0, 20.0),
                    seed: int = 0) -> SemanticCodec:
    """The attacker's own codec: ``steps`` Adam steps of MSE on random ``crop`` crops of ``images``
    over ``channels`` (alternating), SNR uniform in ``snr_db``; returns it in eval mode."""
    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be >= 1, got {steps}, {batch}")
    dev = images.device
    g = torch.Generator(device=dev).manual_seed(seed)  # the channel draws on the images' device
    opt = torch.optim.Adam([p for p in codec.parameters() if p.requires_grad], lr=lr)
    codec.train()
    n, _, h, w = images.shape
    for step in range(steps):
        idx = torch.randint(0, n, (batch,), generator=g, device=dev)
        top = torch.randint(0, h - crop + 1, (1,), generator=g, device=dev).item()
        left = torch.randint(0, w - crop + 1, (1,), generator=g, device=dev).item()
        x = images[idx, :, top:top + crop, left:left + crop]
        snr = snr_db[0] + (snr_db[1] - snr_db[0]) * torch.rand(batch, generator=g, device=dev)
        loss = train_step(codec, lambda out, target: (out[codec.output_key] - target).square().mean(),
                          opt, x, x, channels[step % len(channels)], snr, generator=g)
        if step % 100 == 0:
            log.info("surrogate step %d/%d mse %.5f", step, steps, loss.item())
    return codec.eval()


def train_task_surrogate(codec: SemanticCodec, images: Tensor, labels: Tensor, channels: list[Channel], *,
                         steps: int = 600, batch: int = 64, lr: float = 2e-3,
                         snr_db: tuple[float, float] = (0.0, 20.0), seed: int = 0) -> SemanticCodec:
    """The attacker's own task codec: ``steps`` Adam steps of cross-entropy on its own labelled
    ``images`` (never the evaluated ones) over ``channels`` (alternating), SNR uniform in ``snr_db``."""
    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be >= 1, got {steps}, {batch}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must be [{images.shape[0]}], got {tuple(labels.shape)}")
    dev = images.device
    g = torch.Generator(device=dev).manual_seed(seed)
    opt = torch.optim.Adam([p for p in codec.parameters() if p.requires_grad], lr=lr)
    codec.train()
    for step in range(steps):
        idx = torch.randint(0, images.shape[0], (batch,), generator=g, device=dev)
        snr = snr_db[0] + (snr_db[1] - snr_db[0]) * torch.rand(batch, generator=g, device=dev)
        loss = train_step(codec, lambda out, target: torch.nn.functional.cross_entropy(out[codec.output_key], target),
                          opt, images[idx], labels[idx], channels[step % len(channels)], snr, generator=g)
        if step % 200 == 0:
            log.info("task surrogate step %d/%d ce %.4f", step, steps, loss.item())
    return codec.eval()


def attacker_surrogate(codec: SemanticCodec, photos: Tensor, *, steps: int = 300, seed: int = 1) -> SemanticCodec:
    """The surrogate a black-box attacker builds for ``codec`` from its public description only:
    a quarter-width DeepJSCC it trains itself (``steps``, seed ``seed``) for a DeepJSCC, and a
    SoftCast fitted on its own ``photos`` for the analog codecs (and an SNR switch, whose high-SNR
    branch is analog)."""
    from semguard.channels import AWGN, Rayleigh
    from semguard.codecs.analog import AnalogJSCC
    from semguard.codecs.deepjscc import DeepJSCC
    from semguard.registry import build

    inner = codec
    high = getattr(codec, "high", None)
    if isinstance(high, SemanticCodec):
        inner = high
    cfg = inner.config
    torch.manual_seed(seed)
    if isinstance(inner, DeepJSCC):
        sur = build("codec", "adjscc", cbr=cfg["cbr"], width=max(8, cfg.get("width", 64) // 4))
        return train_surrogate(sur, photos, [AWGN(), Rayleigh()], steps=steps, seed=seed)
    if isinstance(inner, AnalogJSCC):
        sur = build("codec", "softcast", cbr=cfg["cbr"], block=cfg["block"], meta=cfg["meta"],
                    design_snr_db=cfg.get("design_snr_db", 10.0))
        sur.init_from_images(photos)
        return sur.eval()
    raise ValueError(f"codec: no attacker surrogate recipe for {type(codec).__name__}")
