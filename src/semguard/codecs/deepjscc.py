"""Deep joint source-channel coding of images.

``deepjscc``: Bourtsoulatze, Kurka, Gunduz, "Deep Joint Source-Channel Coding for Wireless
Image Transmission", IEEE TCCN 2019 — five 5x5 conv layers with PReLU, two of them strided.

``adjscc``: the same backbone with GDN/IGDN and an SNR attention (AF) module after each
layer (Xu et al., "Wireless Image Transmission Using Deep Source Channel Coding With Attention
Modules", IEEE TCSVT 2021), so one set of weights serves a whole SNR range.

``residual=True`` adds an identity shortcut around each stride-1 stage (two in the encoder, two
in the decoder), so a stage learns a correction to its input.  It costs no parameters and one
addition per stage (the README's training notes give what it measured).

``downsample=4`` (the default, and the layout of the papers above) downsamples by 4 and emits ``2c``
real channels, i.e. ``c = 48 cbr`` complex symbols per 4x4 RGB patch (``cbr = n / (3 H W)``).
``downsample=8`` or ``16`` stacks three or four stride-2 levels, each followed by a stride-1 3x3
stage (residual when ``residual``), with the width doubled from the third level on; the latent
then holds ``c = 3 D^2 cbr`` symbols per DxD patch (larger patches per latent position).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from semguard.channels.base import ChannelState, as_snr_tensor
from semguard.channels.csi import refine_csi
from semguard.channels.functional import normalize_power
from semguard.codecs.base import (
    SemanticCodec,
    check_image_batch,
    real_from_symbols,
    symbols_from_real,
)
from semguard.codecs.layers import GDN, SNRAttention
from semguard.registry import register

__all__ = ["DeepJSCC", "deepjscc", "adjscc", "latent_channels"]

DOWNSAMPLE = 4  # the default layout's downsampling factor
LAYOUTS = (4, 8, 16)


def latent_channels(cbr: float, downsample: int = DOWNSAMPLE) -> int:
    """Complex symbols per DxD RGB patch for bandwidth ratio ``cbr`` (``c = 3 D^2 cbr``)."""
    if downsample not in LAYOUTS:
        raise ValueError(f"downsample must be one of {LAYOUTS}, got {downsample}")
    per = 3 * downsample * downsample
    c = per * cbr
    if c < 1 or abs(c - round(c)) > 1e-6:
        raise ValueError(f"cbr must be k/{per} for an integer k >= 1 at downsample={downsample} "
                         f"(e.g. 1/6, 1/12), got {cbr}")
    return int(round(c))


def level_widths(width: int, downsample: int) -> list[int]:
    """Feature widths of the stride-2 levels of the deep layouts: ``width`` doubling from level 3."""
    return [width * 2 ** (i // 2) for i in range(downsample.bit_length() - 1)]


class _Stage(nn.Module):
    """conv -> [GDN] -> PReLU -> [SNR attention], plus the input when ``residual``."""

    def __init__(self, conv: nn.Module, ch: int, *, gdn: bool, inverse: bool, attention: bool,
                 residual: bool = False) -> None:
        super().__init__()
        self.residual = residual
        self.conv = conv
        self.norm = GDN(ch, inverse=inverse) if gdn else nn.Identity()
        self.act = nn.PReLU(ch)
        self.af = SNRAttention(ch) if attention else None

    def forward(self, x: Tensor, snr_db: Tensor) -> Tensor:
        y = self.act(self.norm(self.conv(x)))
        y = self.af(y, snr_db) if self.af is not None else y
        return x + y if self.residual else y


def _conv(i: int, o: int, s: int, k: int = 5) -> nn.Module:
    return nn.Conv2d(i, o, k, stride=s, padding=k // 2)


def _tconv(i: int, o: int, s: int, k: int = 5) -> nn.Module:
    return nn.ConvTranspose2d(i, o, k, stride=s, padding=k // 2, output_padding=s - 1)


class DeepJSCC(SemanticCodec):
    """Convolutional image JSCC (RGB in ``[0, 1]``, H and W multiples of 4).

    Args:
        cbr: bandwidth ratio n / (3HW); must be k/48.
        width: feature channels of the hidden layers.
        gdn: GDN/IGDN normalisation after each hidden conv.
        snr_adaptive: SNR attention modules (encoder: average SNR; decoder: the block's
            post-equalisation SNR from its CSI).
        residual: identity shortcuts around the stride-1 stages (``x + stage(x)``).
        downsample: 4 (the papers' five-layer layout), 8 or 16 (a stride-1 3x3 stage after each
            of three or four stride-2 levels; see :func:`level_widths`).
    """

    output_key = "x_hat"

    def __init__(self, *, cbr: float = 1 / 6, width: int = 64, gdn: bool = False,
                 snr_adaptive: bool = False, residual: bool = False, downsample: int = DOWNSAMPLE) -> None:
        super().__init__()
        c = latent_channels(cbr, downsample)
        self.c, self.downsample = c, downsample
        self.config = {"cbr": cbr, "width": width, "gdn": gdn, "snr_adaptive": snr_adaptive}
        # recorded only when not the default, so older weight files keep their exact config
        if residual:
            self.config["residual"] = True
        if downsample != DOWNSAMPLE:
            self.config["downsample"] = downsample
        kw = {"gdn": gdn, "attention": snr_adaptive}
        res = {**kw, "residual": residual}
        if downsample == DOWNSAMPLE:
            self._papers_layout(width, c, kw, res)
        else:
            self._deep_layout(level_widths(width, downsample), c, kw, res)

    def _deep_layout(self, widths: list[int], c: int, kw: dict[str, bool], res: dict[str, bool]) -> None:
        enc: list[nn.Module] = []
        prev = 3
        for w in widths:
            enc += [_Stage(_conv(prev, w, 2), w, inverse=False, **kw),
                    _Stage(_conv(w, w, 1, 3), w, inverse=False, **res)]
            prev = w
        self.enc = nn.ModuleList(enc)
        self.enc_out = _conv(prev, 2 * c, 1, 3)
        dec: list[nn.Module] = [_Stage(_conv(2 * c, prev, 1, 3), prev, inverse=True, **kw)]
        for i in reversed(range(len(widths))):
            dec.append(_Stage(_conv(widths[i], widths[i], 1, 3), widths[i], inverse=True, **res))
            if i:
                dec.append(_Stage(_tconv(widths[i], widths[i - 1], 2), widths[i - 1], inverse=True, **kw))
        self.dec = nn.ModuleList(dec)
        self.dec_out = _tconv(widths[0], 3, 2)

    def _papers_layout(self, w: int, c: int, kw: dict[str, bool], res: dict[str, bool]) -> None:
        conv, tconv = _conv, _tconv
        self.enc = nn.ModuleList([
            _Stage(conv(3, w, 2), w, inverse=False, **kw),
            _Stage(conv(w, w, 2), w, inverse=False, **kw),
            _Stage(conv(w, w, 1), w, inverse=False, **res),
            _Stage(conv(w, w, 1), w, inverse=False, **res),
        ])
        self.enc_out = conv(w, 2 * c, 1)
        self.dec = nn.ModuleList([
            _Stage(tconv(2 * c, w, 1), w, inverse=True, **kw),
            _Stage(tconv(w, w, 1), w, inverse=True, **res),
            _Stage(tconv(w, w, 1), w, inverse=True, **res),
            _Stage(tconv(w, w, 2), w, inverse=True, **kw),
        ])
        self.dec_out = tconv(w, 3, 2)

    def check_source(self, source: Tensor) -> None:
        check_image_batch(self, source, self.downsample)

    def n_symbols(self, source_shape: tuple[int, ...]) -> int:
        h, w = source_shape[-2:]
        return self.c * (h // self.downsample) * (w // self.downsample)

    def encode(self, source: Tensor, snr_db: Tensor | float) -> Tensor:
        """Images ``[B, 3, H, W]`` in [0, 1] -> unit-power complex symbols ``[B, n]``."""
        self.check_source(source)
        snr = as_snr_tensor(snr_db, source.shape[0], source.device)
        z = source - 0.5
        for stage in self.enc:
            z = stage(z, snr)
        return normalize_power(symbols_from_real(self.enc_out(z)))

    def decode(self, y: Tensor, state: ChannelState, *, size: tuple[int, int] | None = None,
               **_: Any) -> Tensor:
        """Equalised symbols ``[B, n]`` -> images ``[B, 3, H, W]`` in [0, 1].

        ``size`` is the image (H, W); square images are assumed when it is omitted.
        """
        if not torch.is_complex(y) or y.dim() != 2:
            raise ValueError(f"decode expects complex symbols [batch, n], got {y.dtype} {tuple(y.shape)}")
        per = y.shape[1] // self.c
        if size is None:
            side = int(round(per ** 0.5))
            hw = (side, side)
        else:
            hw = (size[0] // self.downsample, size[1] // self.downsample)
        if hw[0] * hw[1] * self.c != y.shape[1]:
            raise ValueError(f"{y.shape[1]} symbols do not fit an image of size {size} at c={self.c}")
        y, state = refine_csi(y, state)                     # estimated CSI only: the residual gain
        z = real_from_symbols(y, (2 * self.c, *hw))
        snr = state.effective_snr_db
        for stage in self.dec:
            z = stage(z, snr)
        return torch.sigmoid(self.dec_out(z))

    def decode_kwargs(self, source: Tensor) -> dict[str, Any]:
        return {"size": tuple(source.shape[-2:])}


@register("codec", "deepjscc")
def deepjscc(*, cbr: float = 1 / 6, width: int = 32, gdn: bool = False, snr_adaptive: bool = False,
             residual: bool = False, downsample: int = DOWNSAMPLE) -> DeepJSCC:
    """Bourtsoulatze et al. 2019 (PReLU, no normalisation, SNR-unaware)."""
    return DeepJSCC(cbr=cbr, width=width, gdn=gdn, snr_adaptive=snr_adaptive, residual=residual,
                    downsample=downsample)


@register("codec", "adjscc")
def adjscc(*, cbr: float = 1 / 6, width: int = 96, gdn: bool = True, snr_adaptive: bool = True,
           residual: bool = False, downsample: int = DOWNSAMPLE) -> DeepJSCC:
    """SNR-adaptive DeepJSCC with GDN and attention modules (ADJSCC-style)."""
    return DeepJSCC(cbr=cbr, width=width, gdn=gdn, snr_adaptive=snr_adaptive, residual=residual,
                    downsample=downsample)
