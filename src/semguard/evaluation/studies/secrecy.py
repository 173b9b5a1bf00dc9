"""Bob against Eve: fidelity of an encrypted semantic link for Bob and for eavesdroppers, a
learned-inversion eavesdropper (an attack on the cipher), and the latency cost of encryption.

Every pass goes through a :class:`~semguard.link.Link` with any image codec and any
:class:`~semguard.keys.cipher_base.Cipher` (e.g. :class:`~semguard.keys.ciphers.ScrambleCipher`).  Eve has
her own channel realisation at the same SNR and the public codec; she differs only in the key
she holds:

* ``bob``: right key; ``bob_plain``: no encryption at all (reference);
* ``eve_no_key``: decodes the scrambled symbols as they are;
* ``eve_<name>``: decrypts with another key (her PLKG key, a random wrong key, ...);
* :func:`train_inversion` : a learned-inversion eavesdropper that trains a decoder front-end on
  known (image, intercepted symbols) pairs, with a wall-clock budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from semguard.channels.base import Channel
from semguard.keys.cipher_base import Cipher
from semguard.link import Eavesdropper, Link, batch_nonce
from semguard.metrics.image import psnr as _psnr

__all__ = ["link_psnr", "train_inversion", "latency_overhead"]

log = logging.getLogger(__name__)


def _mean_psnr(x: Tensor, y: Tensor) -> float:
    return float(_psnr(y, x).mean())


@torch.no_grad()
def link_psnr(codec: nn.Module, images: Tensor, channel: Channel, snr_db: float, cipher: Cipher,
              key: bytes, eve_keys: dict[str, bytes], *, generator: torch.Generator | None = None,
              batch_index: int = 0) -> dict[str, float]:
    """PSNR of Bob and of each eavesdropper over one batch ``images [B, 3, H, W]``."""
    codec.eval()
    nonce = batch_nonce(batch_index)
    kw = codec.decode_kwargs(images)
    out = {"bob_plain": _mean_psnr(images, Link(codec, channel)(images, snr_db, generator=generator)["output"])}
    res = Link(codec, channel, cipher=cipher, key=key, eavesdropper=Eavesdropper(channel))(
        images, snr_db, generator=generator, nonce=nonce)                  # Eve: her own realisation
    out["bob"] = _mean_psnr(images, res["output"])
    out["eve_no_key"] = _mean_psnr(images, res["eve"]["output"])
    y_e, st_e = res["eve"]["received"], res["eve"]["state"]
    for name, k in eve_keys.items():
        out[f"eve_{name}"] = _mean_psnr(images, codec.decode(*cipher.decrypt_received(y_e, st_e, k, nonce), **kw))
    return out


class _Inverter(nn.Module):
    """Eve's learned front-end: [re, im, sorted |y|] (3n) -> estimate of the clean symbols (2n)."""

    def __init__(self, n: int, hidden: int = 512) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * n, 2 * n)
        self.mlp = nn.Sequential(nn.Linear(n, hidden), nn.ReLU(), nn.Linear(hidden, 2 * n))

    def forward(self, y: Tensor) -> Tensor:
        feats = torch.view_as_real(y).flatten(1)
        inv = y.abs().sort(dim=1).values                                  # permutation/phase invariant
        out = self.linear(feats) + self.mlp(inv)
        return torch.view_as_complex(out.view(y.shape[0], -1, 2).contiguous())


def train_inversion(codec: nn.Module, cipher: Cipher, key: bytes, sampler: Callable[[int], Tensor],
                    test_images: Tensor, channel: Channel, snr_db: float, *, fresh_nonce: bool = True,
                    seconds: float = 60.0, batch: int = 32, lr: float = 1e-3, blind: bool = False,
                    generator: torch.Generator | None = None) -> dict[str, float]:
    """Train Eve's front-end on known (image, intercepted ciphertext) pairs for ``seconds``.

    ``fresh_nonce=True`` is the scheme as designed (new permutation/phases every batch);
    ``False`` models nonce reuse (one fixed scrambling), which a linear layer can invert.
    ``blind=True`` is the control: Eve's input is replaced by independent noise of the same
    shape, so she can learn only the image prior (a mean latent); the leak of a cipher is Eve's
    PSNR above this control, not above the no-key decode.
    Returns Eve's test PSNR after training, steps taken and the seconds used.
    """
    codec.eval()
    n = codec.encode(test_images[:1], snr_db).shape[1]
    link = Link(codec, channel, cipher=cipher, key=key)
    eve = _Inverter(n)
    opt = torch.optim.Adam(eve.parameters(), lr=lr)
    start, step = time.process_time(), 0
    while time.process_time() - start < seconds:
        imgs = sampler(batch)
        with torch.no_grad():
            sent = link(imgs, snr_db, generator=generator, nonce=batch_nonce(step + 1 if fresh_nonce else 0),
                        decode=False)
            x, y = sent["symbols"], sent["received"]                        # Eve intercepts the ciphertext
            if blind:
                y = torch.randn(y.shape, dtype=y.dtype, generator=generator)
        loss = (eve(y) - x).abs().square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
    used = time.process_time() - start
    with torch.no_grad():
        nonce = batch_nonce(10**9 if fresh_nonce else 0)                  # a block never seen in training
        sent = link(test_images, snr_db, generator=generator, nonce=nonce, decode=False)
        y, st = sent["received"], sent["state"]
        if blind:
            y = torch.randn(y.shape, dtype=y.dtype, generator=generator)
        x_hat = codec.decode(eve(y), st, **codec.decode_kwargs(test_images))
    log.info("learned-inversion Eve: %d steps in %.1f CPU-s", step, used)
    return {"psnr": _mean_psnr(test_images, x_hat), "steps": float(step), "cpu_seconds": used}


def latency_overhead(codec: nn.Module, images: Tensor, channel: Channel, snr_db: float, cipher: Cipher,
                     key: bytes, *, repeats: int = 20) -> dict[str, float]:
    """Median wall time per batch of encode -> channel -> decode without and with encryption."""
    plain_link, secure_link = Link(codec, channel), Link(codec, channel, cipher=cipher, key=key)

    def plain() -> None:
        plain_link(images, snr_db)

    def encrypted() -> None:
        secure_link(images, snr_db, nonce=batch_nonce(0))

    def timed(fn: Callable[[], None]) -> float:
        ts: list[float] = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return sorted(ts)[len(ts) // 2]

    with torch.no_grad():
        plain(), encrypted()                                               # warm-up
        a: list[float] = []
        b: list[float] = []
        for _ in range(3):                                                 # interleave to share load drift
            a.append(timed(plain))
            b.append(timed(encrypted))
        times = (min(a), min(b))
    return {"plain_s": times[0], "encrypted_s": times[1], "overhead": times[1] / times[0] - 1.0}
