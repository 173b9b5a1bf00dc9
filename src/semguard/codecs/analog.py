"""Linear analog image transmission (SoftCast-style) and a learned refinement on top of it.

``softcast``: each BxB RGB block is projected on the first ``2c`` principal components of natural
image blocks, each coefficient is scaled by a power-allocation gain and sent as a real channel
dimension (pairs make complex symbols), and the receiver takes the per-coefficient linear MMSE
estimate at its post-equalisation SNR before projecting back (Jakubczak and Katabi, "A
Cross-Layer Design for Scalable Mobile Video", MobiCom 2011, with a data-fitted basis in place of
the 3-D DCT).  Its quality grows with SNR without a cliff and without an SNR-specific design.

``analog``: the same (fitted, frozen) linear path plus a learned residual convolutional refinement
of the decoded image conditioned on SNR (zero-initialised, so training starts from the linear
scheme and learns to denoise it and to restore some of what the discarded coefficients held).
With ``enc_width > 0`` it also gets an encoder-side adapter: a residual image ``delta(x, SNR)``
(the same network shape, zero-initialised) added before the block PCA, so the transmitter may
learn to pre-distort what the linear path sends.

Power: a block's coefficients are scaled to unit power per image, as for every codec here, so the
receiver must know the scale ``rho`` to undo it.  It travels in the last ``meta`` complex
symbols, as ``log rho`` (less its typical value on the training images) repeated at amplitude
:data:`META_GAIN` (these symbols replace the
weakest coefficient of ``2 meta`` blocks; a 256x256 image at cbr 1/6 has 32768 symbols, 32 of
them meta).  The gains come from reverse water-filling on ``sqrt(lambda)``, the allocation that
minimises MSE for a linear scheme at ``design_snr_db``.

Over fading, the decoder first undoes the equaliser's bias (MMSE shrinks ``x`` by
``|h|^2 / (|h|^2 + N0)``; :attr:`ChannelState.equalizer` says which one ran) and then weighs
each symbol by its own noise ``N0 / |h|^2`` in the LMMSE estimate.  With pilot-estimated CSI
it first corrects the gain the estimate got wrong from the block's own symbols
(:func:`semguard.channels.csi.refine_csi`, phase from the four strongest coefficients).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from semguard.channels.base import ChannelState, as_snr_tensor
from semguard.channels.csi import refine_csi
from semguard.channels.functional import normalize_power
from semguard.codecs.base import SemanticCodec, check_image_batch
from semguard.codecs.layers import SNRAttention
from semguard.registry import register

__all__ = ["AnalogJSCC", "softcast", "analog", "waterfilling_gains", "META_GAIN"]

META_GAIN = 4.0  # amplitude of the log-scale meta symbols (they stay < 2 % of the power)
BLIND_COEFFICIENTS = 4  # strongest coefficients whose symbols fix the residual phase under estimated CSI


def waterfilling_gains(lam: Tensor, snr: float) -> Tensor:
    """Per-coefficient amplitude gains minimising ``sum lam_i / (1 + g_i^2 lam_i snr)`` at unit
    mean power ``mean(g_i^2 lam_i) = 1`` (reverse water-filling on ``sqrt(lam)``).

    Coefficients the allocation would switch off keep 1e-3 of the mean power, so every gain stays
    positive (``log_gain`` finite).  ``lam`` are the coefficient variances (positive).
    """
    if lam.dim() != 1 or not (lam > 0).all():
        raise ValueError("lam must be a 1-D tensor of positive variances")
    k = lam.numel()
    lam = lam.double()
    root = torch.sqrt(lam * snr)

    def power(mu: float) -> Tensor:
        return ((root / math.sqrt(mu) - 1) / snr).clamp_min(0)

    lo, hi = 1e-30, float(lam.max() * snr) + 1.0  # power(hi) = 0 < k
    for _ in range(200):  # bisection in log mu: total power falls as mu grows
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if float(power(mid).sum()) > k else (lo, mid)
    a = power(math.sqrt(lo * hi)).clamp_min(1e-3)
    a = a * (k / a.sum())
    return torch.sqrt(a / lam).float()


class AnalogJSCC(SemanticCodec):
    """Block-PCA analog codec (RGB in ``[0, 1]``, H and W multiples of ``block``).

    Args:
        cbr: bandwidth ratio n / (3HW); ``2c = 6 block^2 cbr`` real coefficients per block.
        block: block side in pixels.
        refine: add the learned residual refinement of the decoded image.
        width: feature channels of the refinement.
        depth: residual stages of the refinement (the shipped codecs: 4; :meth:`grow_from` adds
            stages to a trained one).
        meta: complex symbols carrying the power scale.
        design_snr_db: SNR of the initial power allocation.
        enc_width: feature channels of the encoder-side adapter (0: none, the linear encoder).
        enc_depth: its residual stages.
    """

    output_key = "x_hat"

    def __init__(self, *, cbr: float = 1 / 6, block: int = 16, refine: bool = True, width: int = 64,
                 depth: int = 4, meta: int = 32, design_snr_db: float = 10.0, enc_width: int = 0,
                 enc_depth: int = 4) -> None:
        super().__init__()
        d = 3 * block * block
        k = 2 * d * cbr
        if block < 2 or k < 2 or abs(k - round(k)) > 1e-6 or round(k) % 2 or round(k) > d:
            raise ValueError(f"cbr {cbr} at block {block} must give an even number of real coefficients "
                             f"per block (2 * 3 * block^2 * cbr) between 2 and {d}")
        if meta < 1:
            raise ValueError(f"meta must be >= 1 symbol, got {meta}")
        if depth < 1 or enc_depth < 1:
            raise ValueError(f"depth and enc_depth must be >= 1 stage, got {depth} and {enc_depth}")
        if enc_width < 0 or (enc_width and not refine):
            raise ValueError(f"enc_width must be 0, or > 0 with the refinement (refine=True), got {enc_width}")
        self.block, self.k, self.meta = block, round(k), meta
        # the registry factory's keywords: softcast (refine=False) takes no width or depth
        self.config = {"cbr": cbr, "block": block, "meta": meta, "design_snr_db": design_snr_db}
        if refine:
            self.config.update(width=width, depth=depth)
        if enc_width:  # absent from the configs of codecs without it, so their files load unchanged
            self.config.update(enc_width=enc_width, enc_depth=enc_depth)
        # linear path: identity rows until init_from_images fits the PCA.  The bases are stored
        # times sqrt(d), entries O(1), as the weight files hold them (a trainable-basis variant
        # needed Adam's steps small relative to the entries; the frozen one keeps the format).
        self._root_d = math.sqrt(d)
        eye = torch.eye(d)[: self.k] * self._root_d
        self.mean = nn.Parameter(torch.full((d,), 0.5))
        self.enc_basis = nn.Parameter(eye.clone())   # [k, d]
        self.dec_basis = nn.Parameter(eye.clone())
        self.log_gain = nn.Parameter(torch.zeros(self.k))
        self.log_lam = nn.Parameter(torch.zeros(self.k))  # the decoder's coefficient variances
        # the linear path is fitted (init_from_images), not trained: trained end to end it fell below
        # plain SoftCast at high SNR (the README's training notes give the figures)
        for prm in (self.mean, self.enc_basis, self.dec_basis, self.log_gain, self.log_lam):
            prm.requires_grad_(False)
        # log rho is sent relative to its typical value, which keeps the meta symbols' power small
        self.register_buffer("log_rho0", torch.zeros(()))
        self.refiner = _Refiner(width, depth) if refine else None
        self.adapter = _Refiner(enc_width, enc_depth) if enc_width else None

    # ---- set-up from data ---------------------------------------------------------------
    @torch.no_grad()
    def init_from_images(self, images: Tensor) -> None:
        """Fit the basis (PCA of the blocks of ``images [N, 3, H, W]``) and the initial gains."""
        blocks = self._blocks(images.float())              # [N, L, d]
        flat = blocks.reshape(-1, blocks.shape[-1]).double()
        if flat.shape[0] < flat.shape[1]:
            raise ValueError(f"{flat.shape[0]} blocks are too few to fit a {flat.shape[1]}-D basis")
        mu = flat.mean(0)
        cov = torch.cov((flat - mu).T)
        lam, vec = torch.linalg.eigh(cov)
        order = lam.argsort(descending=True)[: self.k]
        lam, vec = lam[order].clamp_min(1e-10), vec[:, order].T
        self.mean.copy_(mu.float())
        self.enc_basis.copy_(vec.float() * self._root_d)
        self.dec_basis.copy_(vec.float() * self._root_d)
        self.log_lam.copy_(lam.log().float())
        self.log_gain.copy_(waterfilling_gains(lam.float(), 10 ** (self.config["design_snr_db"] / 10)).log())
        u = self._scaled_coefficients(blocks)
        self.log_rho0.copy_(u.square().mean(dim=(1, 2)).add(1e-12).sqrt().log().mean())

    @torch.no_grad()
    def grow_from(self, smaller: "AnalogJSCC") -> None:
        """Start from ``smaller``, an analog codec with the same linear path whose refinement has
        fewer stages and/or that has no encoder adapter: its weights are copied, extra refinement
        stages start as identities (their convolutions at zero, so ``z + att(act(0)) = z``) and a
        new adapter outputs zero, so the grown codec codes exactly as ``smaller`` until it trains."""
        enc_keys = ("enc_width", "enc_depth")
        mine, theirs = dict(self.config), dict(smaller.config)
        d_mine, d_theirs = mine.pop("depth", None), theirs.pop("depth", None)
        enc_mine = {k: mine.pop(k) for k in enc_keys if k in mine}
        enc_theirs = {k: theirs.pop(k) for k in enc_keys if k in theirs}
        deeper = d_mine is not None and d_theirs is not None and d_theirs < d_mine
        adds_adapter = bool(enc_mine) and not enc_theirs
        if (self.refiner is None or smaller.refiner is None or mine != theirs or d_theirs > d_mine
                or (enc_theirs and enc_theirs != enc_mine) or not (deeper or adds_adapter)):
            raise ValueError(f"can only grow the refinement or add an encoder adapter: config {smaller.config} "
                             f"-> {self.config}")
        missing, unexpected = self.load_state_dict(smaller.state_dict(), strict=False)
        if unexpected or any(not k.startswith(("refiner.", "adapter.")) for k in missing):
            raise ValueError(f"weights do not fit the grown codec: missing {missing}, unexpected {unexpected}")
        for conv in self.refiner.convs[d_theirs:]:
            conv.weight.zero_()
            conv.bias.zero_()

    # ---- geometry -----------------------------------------------------------------------
    def _blocks(self, x: Tensor) -> Tensor:
        """``[B, 3, H, W]`` -> ``[B, L, 3 b^2]`` (blocks in raster order)."""
        return F.unfold(x, self.block, stride=self.block).transpose(1, 2)

    def _scaled_coefficients(self, blocks: Tensor) -> Tensor:
        """Blocks ``[B, L, d]`` -> gain-scaled PCA coefficients ``[B, L, k]`` (before unit power)."""
        return (blocks - self.mean) @ (self.enc_basis.T / self._root_d) * self.log_gain.exp()

    def check_source(self, source: Tensor) -> None:
        check_image_batch(self, source, self.block)
        h, w = source.shape[-2:]
        if (h // self.block) * (w // self.block) * self.k < 4 * self.meta:
            raise ValueError(f"a {h}x{w} image has too few coefficients for {self.meta} meta symbols")

    def n_symbols(self, source_shape: tuple[int, ...]) -> int:
        h, w = source_shape[-2:]
        return (h // self.block) * (w // self.block) * self.k // 2

    # ---- the link -----------------------------------------------------------------------
    def encode(self, source: Tensor, snr_db: Tensor | float) -> Tensor:
        """Images ``[B, 3, H, W]`` -> unit-power complex symbols ``[B, n]`` (last ``meta`` carry the scale)."""
        self.check_source(source)
        b = source.shape[0]
        x = source.float()
        if self.adapter is not None:
            x = x + self.adapter(x, as_snr_tensor(snr_db, b, x.device))
        u = self._scaled_coefficients(self._blocks(x))                               # [B, L, k]
        # coefficient-major order: the weakest coefficient's blocks come last and give way to meta
        u = u.transpose(1, 2).reshape(b, -1)
        payload = u[:, : u.shape[1] - 2 * self.meta]
        rho = payload.square().mean(dim=1, keepdim=True).add(1e-12).sqrt()    # real-dim rms
        meta = (META_GAIN * (rho.log() - self.log_rho0)).expand(b, 2 * self.meta)
        real = torch.cat([payload / rho, meta], dim=1)
        return normalize_power(torch.view_as_complex(real.reshape(b, -1, 2).contiguous()))

    def decode(self, y: Tensor, state: ChannelState, *, size: tuple[int, int] | None = None,
               **_: Any) -> Tensor:
        """Equalised symbols ``[B, n]`` -> images ``[B, 3, H, W]`` in [0, 1]."""
        if not torch.is_complex(y) or y.dim() != 2:
            raise ValueError(f"decode expects complex symbols [batch, n], got {y.dtype} {tuple(y.shape)}")
        b, n = y.shape
        blocks = 2 * n // self.k
        if size is None:
            side = round(blocks ** 0.5) * self.block
            size = (side, side)
        hb, wb = size[0] // self.block, size[1] // self.block
        if hb * wb != blocks or blocks * self.k != 2 * n or size[0] % self.block or size[1] % self.block:
            raise ValueError(f"{n} symbols do not fit an image of size {size} at {self.k} coefficients "
                             f"per {self.block}x{self.block} block")
        y, state = refine_csi(y, state, n_ref=BLIND_COEFFICIENTS * blocks // 2)   # estimated CSI only
        y, n0_sym = state.zero_forced(y)                                         # n0_sym [B, n]
        real = torch.view_as_real(y).reshape(b, -1)
        n0_real = (0.5 * n0_sym).repeat_interleave(2, dim=1)                   # per real dim
        m2 = 2 * self.meta
        payload, meta = real[:, :-m2], real[:, -m2:]
        w = 1.0 / n0_real[:, -m2:]                                              # inverse-variance mean
        s, log_rho = self._undo_unit_power((meta * w).sum(1, keepdim=True) / w.sum(1, keepdim=True),
                                           payload.shape[1])
        rho = log_rho.exp()
        gain = self.log_gain.exp()
        lam = self.log_lam.exp()
        # received = a * coef + noise with a = gain / (rho * s) per coefficient, per image
        scale = 1.0 / (rho * s)                                                 # [B, 1]
        full = torch.cat([payload, torch.zeros(b, m2, device=y.device, dtype=payload.dtype)], dim=1)
        r = full.reshape(b, self.k, blocks).transpose(1, 2)                     # [B, L, k]
        nv = n0_real.reshape(b, self.k, blocks).transpose(1, 2)                 # its noise, per dim
        a = gain * scale.unsqueeze(2)                                           # [B, 1, k]
        coef = r * (a * lam) / (a.square() * lam + nv)
        blocks_hat = coef @ (self.dec_basis / self._root_d) + self.mean
        x_lin = F.fold(blocks_hat.transpose(1, 2), size, self.block, stride=self.block)
        if self.refiner is None:
            return x_lin.clamp(0, 1)
        return (x_lin + self.refiner(x_lin, state.effective_snr_db)).clamp(0, 1)

    def _undo_unit_power(self, m: Tensor, n_payload: int) -> tuple[Tensor, Tensor]:
        """From the mean received meta value ``m``: the unit-power divisor ``s`` and ``log rho``.

        The transmitter sent ``[payload / rho, G t]`` (payload real dims of power 1,
        ``t = log rho - log_rho0``) divided by ``s = sqrt(2 (P + M G^2 t^2) / (P + M))``.  With
        ``m = G t / s`` that solves to ``s^2 = 2 P / (P + M - 2 M m^2)``.
        """
        p_, m2 = float(n_payload), float(2 * self.meta)
        denom = (p_ + m2 - 2 * m2 * m.square()).clamp_min(0.5 * p_)  # noise can push m^2 past its cap
        s = torch.sqrt(2 * p_ / denom)
        return s, m * s / META_GAIN + self.log_rho0

    def decode_kwargs(self, source: Tensor) -> dict[str, Any]:
        return {"size": tuple(source.shape[-2:])}


class _Refiner(nn.Module):
    """Residual correction of a decoded image: space-to-depth by 2, ``depth`` residual 3x3 stages
    with SNR attention, back to full resolution; the output conv starts at zero."""

    def __init__(self, width: int, depth: int = 4) -> None:
        super().__init__()
        self.inp = nn.Conv2d(12, width, 3, padding=1)
        self.convs = nn.ModuleList([nn.Conv2d(width, width, 3, padding=1) for _ in range(depth)])
        self.acts = nn.ModuleList([nn.PReLU(width) for _ in range(depth)])
        self.afs = nn.ModuleList([SNRAttention(width) for _ in range(depth)])
        self.out = nn.Conv2d(width, 12, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, snr_db: Tensor) -> Tensor:
        z = self.inp(F.pixel_unshuffle(x - 0.5, 2))
        for conv, act, af in zip(self.convs, self.acts, self.afs):
            z = z + af(act(conv(z)), snr_db)
        return F.pixel_shuffle(self.out(z), 2)


@register("codec", "softcast")
def softcast(*, cbr: float = 1 / 6, block: int = 16, meta: int = 32, design_snr_db: float = 10.0) -> AnalogJSCC:
    """Linear analog transmission of block-PCA coefficients with LMMSE decoding (no learning)."""
    return AnalogJSCC(cbr=cbr, block=block, refine=False, meta=meta, design_snr_db=design_snr_db)


@register("codec", "analog")
def analog(*, cbr: float = 1 / 6, block: int = 16, width: int = 64, depth: int = 4, meta: int = 32,
           design_snr_db: float = 10.0, enc_width: int = 0, enc_depth: int = 4) -> AnalogJSCC:
    """The SoftCast-style linear path (fitted, frozen) plus a learned SNR-aware image refinement
    (and, with ``enc_width``, a learned encoder-side adapter)."""
    return AnalogJSCC(cbr=cbr, block=block, refine=True, width=width, depth=depth, meta=meta,
                      design_snr_db=design_snr_db, enc_width=enc_width, enc_depth=enc_depth)
