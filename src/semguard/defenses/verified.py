"""Deterministic verification of a task receiver against any jammer under a PSR: bound propagation
(:mod:`semguard.defenses.bounds`, IBP or CROWN) through the decoder of a :class:`TaskCodec` over AWGN,
or over flat block fading with perfect CSI for the realised channel draw.

Per block, the transmitter sends ``x`` (mean power 1), the channel adds its noise ``w`` (one draw, fixed)
and a jammer adds ``delta``; the receiver decides from ``y = x + w + delta``.  A PSR budget is the l2 ball
``||delta||_2 <= sqrt(10^(psr/10) P_x n)`` (:func:`semguard.channels.functional.psr_radius` of ``x``:
over AWGN the received signal power is ``P_x``), so the decision is certified at that PSR iff the lower
bound of ``logit_c - logit_j`` over the ball around ``y0 = x + w`` is > 0 for every ``j != c``, ``c`` the
decision at ``y0``.  Complex l2 on ``n`` symbols is real l2 on the decoder's ``2n`` inputs
(``view_as_real``); the decoder's SNR input is the receiver's known SNR, not in the jammer's reach, so it
is folded into the first bias.

What it certifies: for this realised noise draw, no perturbation of that power, whatever it knows
(the noise included) or however it is chosen, changes the decision.  Certified accuracy over ``N``
images, one noise draw each, estimates the probability (over images and noise) that the decision is
correct and cannot be flipped; it is exact per block, with the usual sampling error over blocks.
Randomized smoothing instead certifies a vote over many noise draws against jammers independent of
the noise.

Block fading (perfect CSI, :func:`fold_equalizer`): the jammer adds ``delta`` at the antenna, so the
decoder sees ``g (h x + w + delta)``, ``g`` the one-tap equaliser's gain per symbol (``1 / h`` for ZF,
``conj(h) / (|h|^2 + N0)`` for MMSE), known to the receiver and fixed for the draw.  That is linear in
``delta``: the gain is folded into the decoder's first layer and the ball stays the PSR ball, measured
against the received signal ``h x`` (``psr_reference="received"``, as the attack library's channel
surface) or against ``x`` (``"transmitted"``).  With one coefficient per block the folded ball is the
decoder-domain ball of radius ``|g| r`` (ZF, transmitted PSR: ``r / |h|``); the decoder's SNR input is
each block's effective SNR, so every block has its own network.

Pilot-estimated CSI (``data_only=True``): the equaliser is built from the estimate ``h_est``, fixed for
the draw, so the same fold holds (``g`` from ``h_est``, the decoder's SNR input the estimate's effective
SNR) **as long as the jammer does not reach the pilots**.  The certificate then covers jammers on the
data symbols only; a jammer that also hits the pilots moves ``h_est``, and with it ``g``, which is not
linear in it and is not covered.  The caller must state that threat model: estimated CSI without
``data_only=True`` is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from semguard.channels import functional as F
from semguard.channels.awgn import AWGN
from semguard.codecs.task import TaskCodec
from semguard.defenses.bounds import METHODS, AffineReLUNet, affine_relu_net, bounds, margin_spec, pgd_lowest
from semguard.link import Link

__all__ = ["PSR_REFERENCES", "BoundCertification", "VerifiedReceiver", "fold_equalizer"]

#: what a PSR budget is measured against over fading: the received signal ``h x``, or the transmitted ``x``
PSR_REFERENCES = ("received", "transmitted")


def fold_equalizer(net: AffineReLUNet, gain: Tensor) -> AffineReLUNet:
    """``net`` composed with a complex gain per symbol ``gain [n]``: ``net'(u) = net(view_as_real(gain * u))``
    on the ``2n`` real values of ``u`` (the first layer's weights times the 2x2 rotation-scale of each
    symbol's gain; biases unchanged)."""
    if gain.dim() != 1 or 2 * gain.numel() != net.in_features:
        raise ValueError(f"gain must be [{net.in_features // 2}] (one per symbol), got {tuple(gain.shape)}")
    a = gain.real.to(torch.float64)
    b = gain.imag.to(torch.float64)
    w = net.weights[0].reshape(net.weights[0].shape[0], -1, 2)
    w_re, w_im = w[..., 0], w[..., 1]
    folded = torch.stack([a * w_re + b * w_im, a * w_im - b * w_re], -1).reshape(net.weights[0].shape)
    return AffineReLUNet((folded, *net.weights[1:]), net.biases)


@dataclass(frozen=True)
class BoundCertification:
    """The verified receiver's answer per block.

    Attributes:
        prediction: the decision at the received block ``[N]``.
        margin_lower: the lowest certified margin of that decision over the other classes ``[N, P]``,
            one column per PSR (> 0: certified).
        psr_db: the PSR grid ``[P]`` (dB).
        radius: the l2 radius of each block's ball ``[N, P]``.
        method: ``ibp`` or ``crown``.
    """

    prediction: Tensor
    margin_lower: Tensor
    psr_db: Tensor
    radius: Tensor
    method: str

    def _column(self, psr_db: float) -> int:
        hits = (self.psr_db - psr_db).abs() < 1e-9
        if not bool(hits.any()):
            raise ValueError(f"psr_db {psr_db:g} was not verified; the grid is {self.psr_db.tolist()}")
        return int(hits.nonzero()[0, 0])

    def certified(self, psr_db: float) -> Tensor:
        """Whether each block's decision is certified at ``psr_db`` ``[N]`` (bool)."""
        return self.margin_lower[:, self._column(psr_db)] > 0

    def certified_accuracy(self, labels: Tensor, psr_db: float) -> float:
        """Fraction of blocks whose decision is correct and certified at ``psr_db``."""
        return float(((self.prediction == labels) & self.certified(psr_db)).float().mean())


class VerifiedReceiver:
    """Bound-propagation verification of a task link's receiver (its decoder) over AWGN.

    Args:
        link: a :class:`Link` with a :class:`TaskCodec` and an AWGN channel, or a fading channel with
            perfect CSI (the realised draw's equaliser folded into the decoder, see the module).
        method: ``crown`` (default), ``alpha-crown`` or ``ibp``.
        psr_reference: over fading, the PSR is measured against the ``received`` signal ``h x``
            (default, as the attack library's channel surface) or the ``transmitted`` ``x``; over AWGN
            the two are the same.
        data_only: over fading with pilot-estimated CSI, accept that the certificate covers jammers on
            the data symbols only (the pilots, and so the estimate, untouched); required there.
    """

    def __init__(self, link: Link, *, method: str = "crown", psr_reference: str = "received",
                 data_only: bool = False) -> None:
        if not isinstance(link, Link):
            raise TypeError(f"link must be a semguard Link, got {type(link).__name__}")
        if not isinstance(link.codec, TaskCodec):
            raise ValueError(f"codec: bound propagation verifies a TaskCodec's receiver, not "
                             f"{type(link.codec).__name__}")
        ch = link.channel
        self.fading = bool(getattr(ch, "fading", False)) and not isinstance(ch, AWGN)
        estimated = getattr(ch, "csi", None) != "perfect" or bool(getattr(ch, "csi_error_var", None))
        if self.fading and estimated and not data_only:
            raise ValueError(f"channel: the verified receiver over fading needs perfect CSI, or data_only=True to "
                             f"certify against jammers on the data symbols only (a jammer on the pilots moves the "
                             f"estimate), got csi={getattr(ch, 'csi', None)!r}")
        if not self.fading and not isinstance(ch, AWGN):
            raise ValueError(f"channel: the verified receiver is for AWGN or fading with perfect CSI, got "
                             f"{type(ch).__name__}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if psr_reference not in PSR_REFERENCES:
            raise ValueError(f"psr_reference must be one of {', '.join(PSR_REFERENCES)}, got {psr_reference!r}")
        self.link, self.method, self.psr_reference = link, method, psr_reference

    def receiver_net(self, snr_db: float) -> AffineReLUNet:
        """The decoder as an :class:`AffineReLUNet` on the ``2n`` real received values, its SNR input
        (``snr_db / 20``, what :meth:`TaskCodec.decode` feeds it) folded into the first bias."""
        codec = self.link.codec
        was = codec.training
        codec.eval()
        try:
            full = affine_relu_net(codec.dec, (2 * codec.n + 1,))
        finally:
            codec.train(was)
        w0 = full.weights[0]
        b0 = full.biases[0] + w0[:, -1] * (float(snr_db) / 20.0)
        return AffineReLUNet((w0[:, :-1].contiguous(), *full.weights[1:]), (b0, *full.biases[1:]))

    @torch.no_grad()
    def received(self, sources: Tensor, snr_db: float, *, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
        """One pass over the link: ``(transmitted x [N, n], received y0 [N, n], effective SNR [N])``, the
        channel noise drawn from a generator seeded with ``seed``."""
        out = self._pass(sources, snr_db, seed)
        return out["transmitted"], out["received"], out["state"].effective_snr_db

    def _pass(self, sources: Tensor, snr_db: float, seed: int) -> dict[str, Any]:
        """The link's output on ``sources`` in eval mode, its channel drawn from ``seed``."""
        self.link.codec.check_source(sources)
        was = self.link.training
        self.link.eval()
        try:
            return self.link(sources, snr_db, generator=torch.Generator().manual_seed(int(seed)))
        finally:
            self.link.train(was)

    @torch.no_grad()
    def fading_draw(self, sources: Tensor, snr_db: float, *, seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One pass over a fading link: ``(PSR reference [N, n], raw antenna block h x + w [N, n], equaliser
        gain per symbol [N, n], effective SNR [N])``, fading and noise drawn with ``seed``."""
        out = self._pass(sources, snr_db, seed)
        st, x = out["state"], out["transmitted"]
        gain = self.link.channel.equalize(torch.ones_like(out["raw"]), st)
        ref = st.h * x if self.psr_reference == "received" else x
        return ref, out["raw"], gain, st.effective_snr_db

    def _fading_nets(self, sources: Tensor, snr_db: float, grid: list[float], seed: int):
        """Per block: the decoder with its equaliser gain and effective SNR folded in, the antenna-domain
        centre (real ``2n``) and its ball's radius per PSR."""
        ref, raw, gain, eff = self.fading_draw(sources, snr_db, seed=seed)
        u0 = torch.view_as_real(raw).flatten(1).to(torch.float64)
        radius = torch.stack([F.psr_radius(ref, p).to(torch.float64) for p in grid], 1)
        nets = [fold_equalizer(self.receiver_net(float(eff[i])), gain[i]) for i in range(raw.shape[0])]
        return nets, u0, radius

    def _certify_fading(self, sources: Tensor, snr_db: float, grid: Tensor, seed: int) -> BoundCertification:
        nets, u0, radius = self._fading_nets(sources, snr_db, grid.tolist(), seed)
        p = grid.numel()
        pred = torch.empty(len(nets), dtype=torch.long)
        low = torch.empty(len(nets), p, dtype=torch.float64)
        first = "crown" if self.method == "alpha-crown" else self.method
        for i, net in enumerate(nets):
            z = u0[i:i + 1]
            pred[i] = net(z).argmax(1)[0]
            spec = margin_spec(pred[i:i + 1].expand(p), net.out_features)
            zs = z.expand(p, -1)
            low[i] = bounds(first, net, zs, radius[i], spec)[0].min(1).values
            todo = (low[i] <= 0).nonzero().flatten()
            if first != self.method and todo.numel():
                refined = bounds(self.method, net, zs[todo], radius[i, todo], spec[todo])[0].min(1).values
                low[i, todo] = torch.maximum(low[i, todo], refined)
        return BoundCertification(pred, low, grid, radius, self.method)

    def certify(self, sources: Tensor, snr_db: float, psr_db: Sequence[float], *, seed: int = 0,
                batch: int = 50) -> BoundCertification:
        """Verify the decision on every source of ``sources [N, 1, 28, 28]`` at Bob's ``snr_db`` against
        every PSR of ``psr_db`` (dB), one channel-noise draw per source (``seed``).  ``alpha-crown`` runs
        CROWN first and optimises only the blocks CROWN leaves uncertified (it is never looser)."""
        grid = torch.tensor([float(p) for p in psr_db], dtype=torch.float64)
        if grid.numel() == 0:
            raise ValueError("psr_db: give at least one PSR (dB)")
        for p in grid.tolist():
            F.psr_radius(torch.ones(1, 1, dtype=torch.complex64), p)  # validates the range in one place
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if self.fading:
            return self._certify_fading(sources, snr_db, grid, seed)
        x, y0, eff = self.received(sources, snr_db, seed=seed)
        if not bool(torch.allclose(eff, eff[0].expand_as(eff))):
            raise ValueError("the verified receiver needs one known SNR for every block")
        net = self.receiver_net(float(eff[0]))
        z0 = torch.view_as_real(y0).flatten(1).to(torch.float64)
        pred = net(z0).argmax(1)
        spec = margin_spec(pred, net.out_features)
        radius = torch.stack([F.psr_radius(x, p).to(torch.float64) for p in grid.tolist()], 1)
        low = torch.empty(z0.shape[0], grid.numel(), dtype=torch.float64)
        first = "crown" if self.method == "alpha-crown" else self.method
        for s in range(0, z0.shape[0], batch):
            sl = slice(s, s + batch)
            for j in range(grid.numel()):
                low[sl, j] = bounds(first, net, z0[sl], radius[sl, j], spec[sl])[0].min(1).values
                if first != self.method:  # alpha-CROWN only where CROWN did not certify (it is never looser)
                    todo = (low[sl, j] <= 0).nonzero().flatten() + s
                    if todo.numel():
                        refined = bounds(self.method, net, z0[todo], radius[todo, j], spec[todo])[0].min(1).values
                        low[todo, j] = torch.maximum(low[todo, j], refined)
        return BoundCertification(pred, low, grid, radius, self.method)

    def attack(self, sources: Tensor, snr_db: float, psr_db: float, *, seed: int = 0, steps: int = 50,
               restarts: int = 4) -> Tensor:
        """The lowest margin of the receiver's decision that a PGD jammer knowing the noise draw finds
        inside the PSR ball, per source ``[N]`` (< 0: the decision flips).  The certified margin never
        exceeds it."""
        gen = torch.Generator().manual_seed(int(seed) + 1)
        if self.fading:
            nets, u0, radius = self._fading_nets(sources, snr_db, [psr_db], seed)
            out = torch.empty(len(nets), dtype=torch.float64)
            for i, net in enumerate(nets):
                spec = margin_spec(net(u0[i:i + 1]).argmax(1), net.out_features)
                out[i] = pgd_lowest(net, u0[i:i + 1], radius[i], spec, steps=steps, restarts=restarts,
                                    generator=gen)[0].min()
            return out
        x, y0, eff = self.received(sources, snr_db, seed=seed)
        net = self.receiver_net(float(eff[0]))
        z0 = torch.view_as_real(y0).flatten(1).to(torch.float64)
        spec = margin_spec(net(z0).argmax(1), net.out_features)
        low, _ = pgd_lowest(net, z0, F.psr_radius(x, psr_db).to(torch.float64), spec, steps=steps,
                            restarts=restarts, generator=gen)
        return low.min(1).values
