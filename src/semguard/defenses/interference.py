"""Interference-aware LMMSE reception: the receiver estimates, chunk by chunk, the received power that
neither its codec's symbols nor the noise explain, and discounts the chunks that carry it.

In the zero-forced domain a received symbol is ``y_i = x_i + w_i / h_i + j_i / h_i``.  The receiver knows
``N0`` and ``h_est`` (so the noise power ``n_i = N0 / |h_i|^2``) and, fitted on reference sources, each
symbol position's clean mean ``mu_i`` and variance ``v_i``.  For a chunk ``c`` of ``L`` symbols

    I_c = mean_c |y_i - mu_i|^2 - mean_c n_i - mean_c v_i

is an unbiased estimate of the interference power per symbol in ``c`` (the cross terms have zero mean
when the interference is independent of the signal and the noise): :func:`chunk_interference`.

A clean chunk's estimate scatters around 0 (the source's own power varies image to image), so the
receiver counts ``I_c`` only above ``z`` times its clean scatter ``s_c``: the standard deviation of the
clean estimates on the reference sources at the operating SNR, floored at ``rel`` times the chunk's mean
clean variance (a few references understate how much a strong chunk's power varies between sources;
without the floor the first, strongest chunks of a photo outside the references are taken for jammed
and the clean image loses 9 dB).  Below that gate the chunk is taken as clean.  The counted
interference enters the decoder's input weights:

* a codec whose decoder is itself an LMMSE estimator with per-symbol noise (the analog codec:
  ``coef = r a lam / (a^2 lam + n_i)``) receives the noise ``n_i + I_c`` in its channel state;
* any other decoder receives the symbols shrunk towards their prior mean by the ratio of the two LMMSE
  weights, ``mu + (y - mu) (v + n) / (v + n + I_c)``, so its implicit weight ``v / (v + n)`` becomes
  ``v / (v + n + I_c)``;
* the analog codec's meta symbols (the image's scale, one value repeated over its last symbols and
  averaged without a prior) are a chunk of their own and are replaced by the LMMSE estimate of the value
  they repeat, which tells a coherent shift of every copy from independent jamming
  (:func:`meta_estimate`): white-box PGD puts about half of its power there.

The estimator is differentiable (the gate is a ``where``), so the adaptive attack differentiates
through it; a jammer that spreads its power evenly under every chunk's gate is not discounted.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from semguard.channels.base import ChannelState
from semguard.channels.csi import refine_csi
from semguard.codecs.analog import BLIND_COEFFICIENTS, AnalogJSCC
from semguard.codecs.deepjscc import DeepJSCC
from semguard.codecs.base import SemanticCodec
from semguard.defenses._wrapped import ReceiverWrapper
from semguard.codecs.switch import SNRSwitch
from semguard.link import Link
from semguard.registry import register

__all__ = ["chunk_ids", "chunk_mean", "chunk_interference", "from_zero_forced", "meta_estimate",
           "InterferenceAwareCodec",
           "InterferenceAwareDefense"]


def chunk_ids(n: int, chunk: int, tail: int = 0) -> Tensor:
    """The chunk of each of ``n`` symbols ``[n]`` (long): consecutive chunks of ``chunk`` symbols over the
    first ``n - tail``, and the last ``tail`` symbols (a codec's side information) as a chunk of their own."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1 symbol, got {chunk}")
    if not 0 <= tail < n:
        raise ValueError(f"tail must be in [0, {n}) symbols, got {tail}")
    ids = torch.arange(n - tail) // chunk
    k = int(ids[-1]) + 1 if n > tail else 0
    return torch.cat([ids, torch.full((tail,), k, dtype=torch.long)])


def chunk_mean(z: Tensor, ids: Tensor) -> Tensor:
    """Mean of real ``z [B, n]`` over the chunks ``ids [n]`` (:func:`chunk_ids`), ``[B, n_chunks]``."""
    if z.dim() != 2 or ids.shape != (z.shape[1],):
        raise ValueError(f"chunk_mean: z [B, n] with one chunk id per symbol, got {tuple(z.shape)}, {tuple(ids.shape)}")
    k = int(ids.max()) + 1
    s = torch.zeros(z.shape[0], k, dtype=z.dtype, device=z.device).index_add(1, ids, z)
    return s / torch.bincount(ids, minlength=k).to(z.dtype)


def chunk_interference(y_zf: Tensor, noise: Tensor, mu: Tensor, var: Tensor, ids: Tensor) -> Tensor:
    """The unbiased interference power per symbol of each chunk, ``[B, n_chunks]``:
    ``mean |y - mu|^2 - mean noise - mean var`` over the chunk (zero-forced ``y [B, n]``, its noise power
    per symbol ``noise [B, n]``, the clean mean ``mu [n]`` and variance ``var [n]``, the chunks ``ids``)."""
    if y_zf.shape[1:] != mu.shape or var.shape != mu.shape:
        raise ValueError(f"interference: fitted on blocks of {mu.numel()} symbols, got {tuple(y_zf.shape)}")
    resid = (y_zf - mu).abs().square() - noise - var
    return chunk_mean(resid, ids)


def from_zero_forced(y_zf: Tensor, state: ChannelState) -> Tensor:
    """The inverse of :meth:`ChannelState.zero_forced`: zero-forced symbols back to the receiver's
    equaliser output."""
    g2 = state.h_est.abs().square().clamp_min(1e-12)
    if state.equalizer == "mmse":
        return y_zf * (g2 / (g2 + state.n0.expand_as(g2)))
    if state.equalizer == "none":
        return y_zf * state.h_est
    return y_zf


class InterferenceAwareCodec(ReceiverWrapper):
    """``codec`` whose receiver estimates per-chunk interference and discounts it (see the module)."""

    def __init__(self, codec: SemanticCodec, mu: Tensor, var: Tensor, clean_sd: Tensor, ids: Tensor, *,
                 z: float) -> None:
        super().__init__()
        self.codec, self.z = codec, float(z)
        self.register_buffer("ids", ids)
        self.register_buffer("mu", mu)
        self.register_buffer("var", var)
        self.register_buffer("clean_sd", clean_sd)
        self.output_key = codec.output_key
        self.config = {"chunks": int(ids.max()) + 1, "z": self.z}

    def estimate(self, y: Tensor, state: ChannelState) -> tuple[Tensor, Tensor]:
        """``(raw estimate I_c [B, chunks], the counted interference after the gate [B, chunks])``."""
        y_zf, noise = state.zero_forced(y)
        raw = chunk_interference(y_zf, noise, self.mu, self.var, self.ids)
        counted = torch.where(raw > self.z * self.clean_sd, raw, torch.zeros_like(raw))
        return raw, counted

    def decode(self, y: Tensor, state: ChannelState, **kw: Any) -> Tensor:
        return _discounted_decode(self.codec, y, state, self, kw)


def _uses_noise_weights(codec: SemanticCodec) -> bool:
    return isinstance(codec, AnalogJSCC)


def _blind_refined(codec: SemanticCodec, y: Tensor, state: ChannelState) -> tuple[Tensor, ChannelState]:
    """The codec's own blind CSI refinement, done before the estimate (so the estimate and the discounted
    symbols are in the refined coordinates); the state handed on then marks the CSI as settled
    (``csi_error_var=None``), so the codec does not refine a second time against the discounted noise."""
    if isinstance(codec, AnalogJSCC):
        y, state = refine_csi(y, state, n_ref=BLIND_COEFFICIENTS * (2 * y.shape[1] // codec.k) // 2)
    elif isinstance(codec, DeepJSCC):
        y, state = refine_csi(y, state)
    else:
        return y, state
    return y, replace(state, csi_error_var=None)


def _discounted_decode(codec: SemanticCodec, y: Tensor, state: ChannelState, rx: InterferenceAwareCodec,
                       kw: dict[str, Any]) -> Tensor:
    if isinstance(codec, SNRSwitch):  # each part gets the discount its decoder can use
        high = codec._pick_high(state.snr_db)
        out: Tensor | None = None
        for mask, part in ((~high, codec.low), (high, codec.high)):
            if mask.any():
                o = _discounted_decode(part, y[mask], state.subset(mask), rx, kw)
                if out is None:
                    out = torch.zeros(y.shape[0], *o.shape[1:], dtype=o.dtype, device=o.device)
                out = out.index_put((mask.nonzero().squeeze(1),), o)
        assert out is not None
        return out
    y, state = _blind_refined(codec, y, state)
    extra = rx.estimate(y, state)[1][:, rx.ids]                     # per symbol, zero-forced domain
    y_zf, noise = state.zero_forced(y)
    shrunk = rx.mu + (y_zf - rx.mu) * ((rx.var + noise) / (rx.var + noise + extra))
    if not _uses_noise_weights(codec):
        return codec.decode(from_zero_forced(shrunk, state), state, **kw)
    # an LMMSE decoder: the counted interference as noise, and its side information (the meta tail)
    # replaced by the LMMSE estimate of the value it repeats (:func:`meta_estimate`)
    meta = torch.zeros(y.shape[1], dtype=torch.bool, device=y.device)
    meta[y.shape[1] - codec.meta:] = True
    m_hat = meta_estimate(y_zf[:, meta], noise[:, meta], rx.mu[meta], rx.var[meta], rx.z)
    y_new = from_zero_forced(torch.where(meta, m_hat.unsqueeze(1).expand_as(y_zf), y_zf), state)
    g2 = state.h_est.abs().square().clamp_min(1e-12)
    return codec.decode(y_new, replace(state, n0=state.n0.expand_as(g2) + extra * g2), **kw)


def meta_estimate(ym: Tensor, noise: Tensor, mu: Tensor, var: Tensor, z: float) -> Tensor:
    """The LMMSE estimate ``[B]`` of the one value ``M`` side-information symbols ``ym [B, M]`` repeat.

    Their deviations from the prior mean ``mu`` split into a spread around their own mean (independent
    noise and jamming, ``I_s`` above the noise) and the mean's deviation ``d``; a deviation beyond what the
    prior variance ``v`` and the averaged noise explain, by more than ``z`` prior variances, is counted as
    coherent interference ``I_c`` (an attacker that shifts every copy alike).  Then
    ``mu + d v / (v + (N + I_s) / M + I_c)``."""
    m = ym.shape[1]
    if m < 2:
        raise ValueError(f"meta_estimate needs at least 2 repeated symbols, got {m}")
    dev = ym - mu
    d = dev.mean(1)
    n = noise.mean(1)
    spread = ((dev - d.unsqueeze(1)).abs().square().sum(1) / (m - 1) - n).clamp_min(0)
    v = var.mean()
    coh = d.abs().square() - v - (n + spread) / m
    coh = torch.where(coh > z * v, coh, torch.zeros_like(coh))
    return mu.mean() + d * (v / (v + (n + spread) / m + coh))


def _tail(codec: SemanticCodec) -> int:
    part = codec.high if isinstance(codec, SNRSwitch) else codec
    return int(part.meta) if _uses_noise_weights(part) else 0


@register("defense", "interference-lmmse")
class InterferenceAwareDefense:
    """Fit the clean per-symbol statistics and each chunk's clean scatter; ``wrap(link)`` is the
    interference-aware receiver.

    Args:
        chunk: symbols per chunk (one interference estimate each); the analog codec's meta symbols (its
            scale, sent last) are a chunk of their own.
        z: count a chunk's estimate only above ``z`` clean standard deviations (0: every positive one).
        rel: floor of the clean standard deviation, as a fraction of the chunk's mean clean variance.
    """

    def __init__(self, *, chunk: int = 512, z: float = 3.0, rel: float = 0.5) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1 symbol, got {chunk}")
        if not z >= 0:
            raise ValueError(f"z must be >= 0 standard deviations, got {z}")
        if not rel >= 0:
            raise ValueError(f"rel must be >= 0 (a fraction of the chunk's clean variance), got {rel}")
        self.chunk, self.z, self.rel = int(chunk), float(z), float(rel)
        self.mu: Tensor | None = None
        self.var: Tensor | None = None
        self.clean_sd: Tensor | None = None
        self.ids: Tensor | None = None

    def fit(self, link: Link, sources: Tensor, snr_db: float = 10.0, *, seed: int = 0) -> "InterferenceAwareDefense":
        """Clean statistics of ``link``'s codec on reference ``sources`` (disjoint from evaluation), and
        each chunk's clean estimate scatter over ``link``'s channel at ``snr_db``."""
        if not isinstance(link, Link):
            raise TypeError(f"link must be a semguard Link, got {type(link).__name__}")
        if sources.shape[0] < 2:
            raise ValueError("sources: need at least 2 reference sources")
        with torch.no_grad():
            x = link.codec.encode(sources, snr_db)
            if not torch.is_complex(x):
                raise ValueError("codec: the interference-aware receiver needs complex symbols")
            self.mu = x.mean(0)
            self.var = (x - self.mu).abs().square().mean(0)
            self.ids = chunk_ids(x.shape[1], self.chunk, _tail(link.codec))
            out = link(sources, snr_db, generator=torch.Generator().manual_seed(seed), decode=False)
            y_zf, noise = out["state"].zero_forced(out["received"])
            raw = chunk_interference(y_zf, noise, self.mu, self.var, self.ids)
        floor = self.rel * chunk_mean(self.var.unsqueeze(0), self.ids)[0]
        self.clean_sd = torch.maximum(raw.std(0), floor).clamp_min(1e-6)
        return self

    def wrap(self, link: Link) -> Link:
        if not isinstance(link, Link):
            raise TypeError(f"link must be a semguard Link, got {type(link).__name__}")
        if self.mu is None or self.var is None or self.clean_sd is None or self.ids is None:
            raise RuntimeError("interference-lmmse: fit() it on reference sources before wrapping a link")
        if link.cipher is not None:
            raise ValueError("link: the interference-aware receiver is fitted to unciphered symbols")
        codec = InterferenceAwareCodec(link.codec, self.mu, self.var, self.clean_sd, self.ids, z=self.z)
        return Link(codec, link.channel, adversary=link.adversary, eavesdropper=link.eavesdropper)
