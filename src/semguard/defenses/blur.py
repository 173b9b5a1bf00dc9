"""Input transformation: Gaussian blurring before the encoder (training-free), optionally randomised
(kernel width drawn per image) and followed by 8-bit quantisation, which has no useful gradient.

The blur removes the high-frequency part of a perturbation crafted against the undefended codec, so a
*non-adaptive* evaluation (the attack computed on the undefended link, then sent through the defended one)
shows a robust gain.  The *adaptive* attack knows the defence: it differentiates through the blur, takes the
quantiser as the identity on the backward pass (BPDA, Athalye, Carlini, Wagner, "Obfuscated Gradients Give a
False Sense of Security", ICML 2018) and averages over the random kernel width (EOT).  A defence whose gain
disappears under that attack is reported as such.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as tF
from torch import Tensor

from semguard.attacks.pgd import PGD
from semguard.channels.base import ChannelState
from semguard.codecs.base import SemanticCodec
from semguard.link import Link
from semguard.registry import register

__all__ = ["gaussian_kernel", "gaussian_blur", "BlurredCodec", "BlurDefense"]


def gaussian_kernel(sigma: float, radius: int | None = None) -> Tensor:
    """Normalised 1-D Gaussian taps of standard deviation ``sigma`` pixels, ``2 r + 1`` long
    (``r = ceil(3 sigma)`` by default)."""
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0 pixels, got {sigma}")
    r = int(math.ceil(3 * sigma)) if radius is None else int(radius)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(images: Tensor, sigma: Tensor | float, radius: int) -> Tensor:
    """Separable Gaussian blur of ``images [B, C, H, W]`` with reflect padding; ``sigma`` a scalar or per
    image ``[B]`` (pixels); differentiable in ``images``."""
    b, c, h, w = images.shape
    s = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1).expand(b)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=images.device)
    k = torch.exp(-0.5 * (t.unsqueeze(0) / s.to(images.device).unsqueeze(1)) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # [B*C, K]
    x = tF.pad(images.reshape(1, b * c, h, w), (radius, radius, radius, radius), mode="reflect")
    x = tF.conv2d(x, k.view(b * c, 1, 1, -1), groups=b * c)
    x = tF.conv2d(x, k.view(b * c, 1, -1, 1), groups=b * c)
    return x.view(b, c, h, w)


class BlurredCodec(SemanticCodec):
    """``codec`` with a Gaussian blur (and optional quantisation) on its input.

    Args:
        codec: the defended image or task codec (inputs ``[B, C, H, W]`` in [0, 1]).
        sigma: kernel width in pixels, or ``(low, high)``: drawn uniformly per image and call.
        quantize: round the blurred image to ``levels`` grey levels (non-differentiable).
        bpda: backward pass through the quantiser as the identity (the adaptive attacker's view; the
            forward values are unchanged).
        seed: the defence's own random stream (the kernel draws).
    """

    def __init__(self, codec: SemanticCodec, *, sigma: float | tuple[float, float] = 1.0, quantize: bool = False,
                 levels: int = 256, bpda: bool = False, seed: int = 0) -> None:
        super().__init__()
        if not isinstance(codec, SemanticCodec):
            raise TypeError(f"codec must be a SemanticCodec, got {type(codec).__name__}")
        probe = getattr(codec, "in_channels", None)
        if probe is None and codec.output_key != "x_hat":
            raise ValueError(f"codec: blurring applies to image inputs; {type(codec).__name__} takes no images")
        lo, hi = (sigma, sigma) if isinstance(sigma, int | float) else (float(sigma[0]), float(sigma[1]))
        if not 0 < lo <= hi:
            raise ValueError(f"sigma must be > 0 pixels (or 0 < low <= high), got {sigma}")
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        self.codec, self.sigma_range, self.quantize, self.levels = codec, (lo, hi), bool(quantize), int(levels)
        self.bpda = bool(bpda)
        self.radius = int(math.ceil(3 * hi))
        self.output_key = codec.output_key
        self.config = {"sigma": [lo, hi], "quantize": self.quantize, "levels": self.levels}
        self._gen = torch.Generator().manual_seed(int(seed))

    def check_source(self, source: Tensor) -> None:
        self.codec.check_source(source)
        if source.dim() != 4 or min(source.shape[-2:]) <= self.radius:
            raise ValueError(f"blur: images [B, C, H, W] larger than the kernel radius {self.radius}, "
                             f"got {tuple(source.shape)}")

    def n_symbols(self, source_shape: tuple[int, ...]) -> int:
        return self.codec.n_symbols(source_shape)

    def decode_kwargs(self, source: Tensor) -> dict[str, Any]:
        return self.codec.decode_kwargs(source)

    def transform(self, source: Tensor) -> Tensor:
        """The defence's input transformation (one kernel draw per image)."""
        lo, hi = self.sigma_range
        s = lo + (hi - lo) * torch.rand(source.shape[0], generator=self._gen)
        x = gaussian_blur(source, s, self.radius)
        if self.quantize:
            q = torch.round(x.clamp(0, 1) * (self.levels - 1)) / (self.levels - 1)
            x = x + (q - x).detach() if self.bpda else q
        return x

    def encode(self, source: Tensor, snr_db: Tensor | float) -> Tensor:
        return self.codec.encode(self.transform(source), snr_db)

    def decode(self, y: Tensor, state: ChannelState, **kw: Any) -> Tensor:
        return self.codec.decode(y, state, **kw)


@register("defense", "blur")
class BlurDefense:
    """Gaussian blurring before the encoder, as a :class:`Link` wrapper.

    ``wrap(link)`` is the deployed link; ``attacker_view(link)`` the same defence with BPDA on the
    quantiser (identical forward values); ``adaptive_attack(attack)`` the attack that knows it (EOT over the
    kernel draws when the width is random)."""

    def __init__(self, *, sigma: float | tuple[float, float] = 1.0, quantize: bool = False, eot: int = 8,
                 seed: int = 0) -> None:
        if eot < 1:
            raise ValueError(f"eot must be >= 1, got {eot}")
        self.sigma, self.quantize, self.eot, self.seed = sigma, quantize, int(eot), int(seed)

    def _link(self, link: Link, bpda: bool) -> Link:
        if not isinstance(link, Link):
            raise TypeError(f"link must be a semguard Link, got {type(link).__name__}")
        if link.cipher is not None:
            raise ValueError("link: wrap the link before adding a cipher (the blur sits before the encoder)")
        codec = BlurredCodec(link.codec, sigma=self.sigma, quantize=self.quantize, bpda=bpda, seed=self.seed)
        return Link(codec, link.channel, adversary=link.adversary, eavesdropper=link.eavesdropper)

    def wrap(self, link: Link) -> Link:
        return self._link(link, bpda=False)

    def attacker_view(self, link: Link) -> Link:
        return self._link(link, bpda=True)

    def adaptive_attack(self, attack: PGD) -> PGD:
        """``attack`` with EOT over the defence's randomness (``eot`` draws per step) when it has any."""
        if not isinstance(attack, PGD) or attack.surface != "input":
            raise ValueError("attack: the blur's adaptive attack is PGD on the input surface")
        lo, hi = (self.sigma, self.sigma) if isinstance(self.sigma, int | float) else self.sigma
        cfg = {k: v for k, v in attack.config().items() if k in ("surface", "norm", "objective", "targeted",
                                                                 "recon_loss", "seed", "steps", "random_start",
                                                                 "restarts")}
        cfg["eps"] = attack.budget
        random = hi > lo
        # a random blur needs fresh draws per EOT step ("none"); a fixed one keeps the attack's knowledge
        return PGD(**cfg, alpha=attack.alpha, knows="none" if random else attack.knows,
                   eot=self.eot if random else attack.eot)
