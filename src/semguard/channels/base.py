"""The :class:`Channel` base: generate a state, apply it, equalise — as separate steps.

Later pieces (attackers, ciphers, eavesdroppers) slot in between these steps, so they are
public: ``sample_state`` draws fading, CSI and noise level; ``apply`` produces the raw
received ``y = h x + w (+ interference)``; ``equalize`` is the receiver's one-tap equaliser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from semguard.channels import functional as F

__all__ = ["ChannelState", "Channel", "as_snr_tensor", "check_symbols", "correlated_state"]


@dataclass(frozen=True)
class ChannelState:
    """One realisation of the channel for a batch of blocks.

    Attributes:
        h: true per-symbol fading ``[B, n]`` complex64 (all ones for AWGN).
        h_est: the receiver's estimate of ``h`` ``[B, n]`` (equal to ``h`` with perfect CSI).
        snr_db: average SNR per block ``[B]`` (Es/N0, Es = 1).
        n0: noise power per block ``[B, 1]``.
        equalizer: the one-tap equaliser the receiver applies (``"mmse"``, ``"zf"`` or ``"none"``;
            AWGN: ``"none"``), so a decoder can undo its bias (MMSE scales ``x`` by
            ``|h_est|^2 / (|h_est|^2 + N0)``).
        csi_error_var: variance of ``h_est - h`` per block ``[B, 1]``, or None when the CSI is
            perfect.  The receiver knows it (``N0 / pilots`` for least-squares pilots), so a
            decoder can tell estimated CSI from exact CSI.
    """

    h: Tensor
    h_est: Tensor
    snr_db: Tensor
    n0: Tensor
    equalizer: str = "none"
    csi_error_var: Tensor | None = None

    @property
    def effective_snr_db(self) -> Tensor:
        """Post-equalisation SNR per block in dB, ``[B]`` (known to a receiver with CSI)."""
        return F.effective_snr_db(self.snr_db, self.h_est)

    def zero_forced(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """Equalised symbols ``y [B, n]`` -> their zero-forced form ``x + w / h_est`` and its noise
        power per symbol ``N0 / |h_est|^2`` ``[B, n]``.

        MMSE equalisation returns ``beta x + noise`` with ``beta = |h|^2 / (|h|^2 + N0)``; dividing
        by ``beta`` leaves zero-forcing's output, as does ZF itself; an unequalised output is
        divided by ``h_est`` here.  AWGN (``h_est = 1``, ``"none"``) passes through with ``N0``.
        """
        g2 = self.h_est.abs().square().clamp_min(1e-12)
        n0 = self.n0.expand_as(g2)
        if self.equalizer == "mmse":
            y = y * ((g2 + n0) / g2)
        elif self.equalizer == "none":
            y = y / self.h_est
        elif self.equalizer != "zf":
            raise ValueError(f"unknown equalizer {self.equalizer!r} in the channel state")
        return y, n0 / g2

    def subset(self, mask: Tensor) -> "ChannelState":
        """The state of the blocks a boolean ``[B]`` mask (or an index tensor) selects."""
        err = None if self.csi_error_var is None else self.csi_error_var[mask]
        return replace(self, h=self.h[mask], h_est=self.h_est[mask], snr_db=self.snr_db[mask], n0=self.n0[mask],
                       csi_error_var=err)


def as_snr_tensor(snr_db: Tensor | float, batch: int, device: torch.device) -> Tensor:
    """Broadcast a scalar or ``[B]`` SNR to a float32 ``[B]`` tensor on ``device``."""
    t = torch.as_tensor(snr_db, dtype=torch.float32, device=device)
    if t.dim() == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"snr_db must be a scalar or shape [{batch}], got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("snr_db must be finite")
    return t


def check_symbols(x: Tensor) -> None:
    """Public-boundary check: complex ``[batch, n]`` symbols."""
    if not torch.is_complex(x) or x.dim() != 2:
        raise ValueError(
            f"channel input must be complex symbols of shape [batch, n], got {x.dtype} {tuple(x.shape)}"
        )


def correlated_state(state: ChannelState, other: ChannelState, rho: float) -> ChannelState:
    """A receiver whose fading has correlation ``rho`` with ``state``'s: ``rho h + sqrt(1 - rho^2) h'``,
    ``h'`` the fading of ``other``, an independent realisation of the same channel drawn for that
    receiver (whose SNR, noise level and CSI error it keeps).  Zero-mean fading of equal power keeps
    ``E|h|^2 = 1``, and ``E[h_new h*] = rho``."""
    if not (-1.0 <= rho <= 1.0 and math.isfinite(rho)):
        raise ValueError(f"correlation rho must be in [-1, 1], got {rho}")
    if state.h.shape != other.h.shape:
        raise ValueError(f"states cover different blocks: {tuple(state.h.shape)} and {tuple(other.h.shape)}")
    h = rho * state.h + math.sqrt(1.0 - rho * rho) * other.h
    return replace(other, h=h, h_est=h + (other.h_est - other.h))


class Channel(nn.Module):
    """Flat block-fading channel with receiver CSI and one-tap equalisation.

    Args:
        coherence: symbols per fading block (None: one coefficient per transmitted block).
        csi: ``"perfect"`` or ``"estimated"`` (least-squares from unit-power pilots).
        pilots: pilots per coherence block when ``csi="estimated"``; error variance ``N0/pilots``.
        csi_error_var: fixed CSI error variance overriding the pilot model.
        equalizer: ``"mmse"`` (default), ``"zf"`` or ``"none"``.
    """

    fading: bool = True

    def __init__(self, *, coherence: int | None = None, csi: str = "perfect", pilots: int = 1,
                 csi_error_var: float | None = None, equalizer: str = "mmse") -> None:
        super().__init__()
        if coherence is not None and coherence < 1:
            raise ValueError(f"coherence must be >= 1 symbol, got {coherence}")
        if csi not in ("perfect", "estimated"):
            raise ValueError(f"csi must be 'perfect' or 'estimated', got {csi!r}")
        if pilots < 1:
            raise ValueError(f"pilots must be >= 1, got {pilots}")
        if csi_error_var is not None and csi_error_var < 0:
            raise ValueError(f"csi_error_var must be >= 0, got {csi_error_var}")
        if equalizer not in ("mmse", "zf", "none"):
            raise ValueError(f"equalizer must be 'mmse', 'zf' or 'none', got {equalizer!r}")
        self.coherence = coherence
        self.csi = csi
        self.pilots = pilots
        self.csi_error_var = csi_error_var
        self.equalizer = equalizer

    # subclasses draw one coefficient per coherence block
    def _block_coefficients(self, batch: int, n_blocks: int, generator: torch.Generator | None,
                            device: torch.device) -> Tensor:
        raise NotImplementedError

    def sample_state(self, batch: int, n: int, snr_db: Tensor | float, *,
                     generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> ChannelState:
        """Draw fading, the receiver's CSI and the noise level for ``batch`` blocks of ``n`` symbols."""
        device = torch.device(device)
        snr = as_snr_tensor(snr_db, batch, device)
        if not self.fading:
            h = torch.ones(batch, n, dtype=torch.complex64, device=device)
            return ChannelState(h=h, h_est=h, snr_db=snr, n0=F.snr_db_to_n0(snr).to(device).unsqueeze(-1))
        n_blocks = math.ceil(n / (self.coherence or n))
        hb = self._block_coefficients(batch, n_blocks, generator, device)
        return self.state_from_blocks(hb, n, snr, generator=generator)

    def state_from_blocks(self, hb: Tensor, n: int, snr_db: Tensor | float, *,
                          generator: torch.Generator | None = None) -> ChannelState:
        """The state of given per-coherence-block coefficients ``hb [B, n_blocks]`` over ``n``
        symbols: the receiver's CSI (drawn with ``generator`` when estimated) and the noise level."""
        batch, n_blocks = hb.shape
        L = self.coherence or n
        if n_blocks != math.ceil(n / L):
            raise ValueError(f"{n} symbols in coherence blocks of {L} need {math.ceil(n / L)} coefficients, "
                             f"got {n_blocks}")
        device = hb.device
        snr = as_snr_tensor(snr_db, batch, device)
        n0 = F.snr_db_to_n0(snr).to(device).unsqueeze(-1)
        hb = hb.to(torch.complex64)
        var: Tensor | None = None
        if self.csi == "perfect" and not self.csi_error_var:
            hb_est = hb
        else:
            var = (torch.full_like(n0, self.csi_error_var) if self.csi_error_var is not None
                   else n0 / self.pilots)
            hb_est = hb + F.complex_noise((batch, n_blocks), var, generator=generator, device=device)
        return ChannelState(h=F.expand_blocks(hb, n, L), h_est=F.expand_blocks(hb_est, n, L),
                            snr_db=snr, n0=n0, equalizer=self.equalizer, csi_error_var=var)

    def apply(self, x: Tensor, state: ChannelState, *, generator: torch.Generator | None = None,
              interference: Tensor | None = None) -> Tensor:
        """Raw received symbols ``y = h x + w (+ interference)``; ``w ~ CN(0, N0)``."""
        check_symbols(x)
        if state.h.shape != x.shape:
            raise ValueError(f"state is for blocks {tuple(state.h.shape)}, symbols are {tuple(x.shape)}")
        w = F.complex_noise(tuple(x.shape), state.n0, generator=generator, device=x.device)
        y = state.h * x + w
        if interference is not None:
            y = y + interference
        return y

    def pilot_blocks(self, n: int) -> int:
        """Coherence blocks (one pilot group each) in a block of ``n`` symbols."""
        return math.ceil(n / (self.coherence or n))

    def corrupt_pilots(self, state: ChannelState, delta: Tensor) -> ChannelState:
        """The state after an attacker adds ``delta [B, n_blocks]`` (complex, as received) to every
        pilot of each coherence block: a least-squares estimate from unit-power pilots averages
        them, so each block's ``h_est`` moves by ``delta``.  Only a receiver that estimates its CSI
        from pilots (``csi="estimated"``) can be misled this way."""
        if not self.fading or self.csi != "estimated":
            raise ValueError(f"{type(self).__name__}(csi={getattr(self, 'csi', None)!r}) estimates no CSI from pilots; "
                             "a pilot attack needs csi='estimated'")
        b, n = state.h.shape
        nb = self.pilot_blocks(n)
        if delta.shape != (b, nb) or not torch.is_complex(delta):
            raise ValueError(f"pilot perturbation must be complex [{b}, {nb}] (one per coherence block), got "
                             f"{delta.dtype} {tuple(delta.shape)}")
        return replace(state, h_est=state.h_est + F.expand_blocks(delta.to(state.h_est.dtype), n, self.coherence or n))

    def equalize(self, y: Tensor, state: ChannelState) -> Tensor:
        """The receiver's one-tap equaliser with its CSI (identity on AWGN)."""
        if not self.fading:
            return y
        return F.equalize(y, state.h_est, state.n0, self.equalizer)

    def forward(self, x: Tensor, snr_db: Tensor | float, *,
                generator: torch.Generator | None = None) -> tuple[Tensor, ChannelState]:
        """Transmit ``x [B, n]`` (complex, unit power): returns equalised ``y [B, n]`` and the state."""
        check_symbols(x)
        state = self.sample_state(x.shape[0], x.shape[1], snr_db, generator=generator, device=x.device)
        return self.equalize(self.apply(x, state, generator=generator), state), state

    def extra_repr(self) -> str:
        if not self.fading:
            return ""
        return (f"coherence={self.coherence}, csi={self.csi!r}, pilots={self.pilots}, "
                f"csi_error_var={self.csi_error_var}, equalizer={self.equalizer!r}")
