"""The coded physical layer of the real separation link: 5G NR LDPC + Gray QAM (Sionna PHY).

Bits of one block are cut into ``C`` equal codewords of ``n_cw`` coded bits, ``k`` of them
information bits (3GPP TS 38.212 LDPC with rate matching and the 5G output bit interleaver,
``sionna.phy.fec.ldpc``), mapped to ``2^m``-QAM with unit average energy
(``sionna.phy.mapping``), sent over a semguard :class:`~semguard.channels.base.Channel`, then
demapped with exact "app" LLRs and BP-decoded (boxplus-phi, flooding, ``num_iter`` iterations).

LLR sign convention: Sionna's demapper and decoder both use logits ``log p(b=1)/p(b=0)``.
The demapper's noise variance is the post-equalisation noise: ``N0`` on AWGN and
``N0 / |h_est|^2`` after zero forcing (an MMSE output is rescaled to the ZF one first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from semguard.channels.base import Channel, ChannelState

__all__ = ["MCS", "CodewordLayout", "codeword_layout", "LdpcQamPhy", "get_phy", "post_equalization",
           "MAX_CW_BITS"]

MAX_CW_BITS = 1944  # longest codeword; moderate, so the BP decoder stays fast on a CPU
_MOD_NAMES = {2: "QPSK", 4: "16QAM", 6: "64QAM", 8: "256QAM"}
_LDPC_K_MIN, _LDPC_K_MAX = 12, 8448  # 5G NR LDPC information lengths Sionna supports


@dataclass(frozen=True)
class MCS:
    """Modulation and coding scheme: ``2^bits_per_symbol``-QAM with LDPC code rate ``code_rate``."""

    bits_per_symbol: int
    code_rate: Fraction

    def __post_init__(self) -> None:
        if self.bits_per_symbol not in _MOD_NAMES:
            raise ValueError(f"MCS.bits_per_symbol must be one of {sorted(_MOD_NAMES)}, "
                             f"got {self.bits_per_symbol}")
        if not 0 < self.code_rate < 1:
            raise ValueError(f"MCS.code_rate must be in (0, 1), got {self.code_rate}")

    @property
    def spectral_efficiency(self) -> float:
        """Nominal information bits per complex channel use, ``m * R``."""
        return self.bits_per_symbol * float(self.code_rate)

    @property
    def name(self) -> str:
        return f"{_MOD_NAMES[self.bits_per_symbol]}-{self.code_rate.numerator}/{self.code_rate.denominator}"

    @classmethod
    def parse(cls, text: str) -> MCS:
        """``"16QAM-3/4"`` / ``"qpsk-1/2"`` -> MCS."""
        try:
            mod, rate = text.strip().upper().split("-")
            m = {v: k for k, v in _MOD_NAMES.items()}[mod]
            return cls(m, Fraction(rate))
        except (ValueError, KeyError, ZeroDivisionError) as err:
            raise ValueError(f"MCS must look like 'QPSK-1/2' with modulation in "
                             f"{list(_MOD_NAMES.values())}, got {text!r}") from err


@dataclass(frozen=True)
class CodewordLayout:
    """How one block of ``n_symbols`` complex symbols is filled with ``num_cw`` codewords."""

    mcs: MCS
    n_symbols: int
    num_cw: int  # codewords per block
    n_cw: int  # coded bits per codeword (a multiple of bits_per_symbol)
    k: int  # information bits per codeword

    @property
    def payload_bits(self) -> int:
        """Information bits the block carries: ``num_cw * k``."""
        return self.num_cw * self.k

    @property
    def coded_symbols(self) -> int:
        """Symbols that carry codeword bits; the rest of the block is random filler."""
        return self.num_cw * self.n_cw // self.mcs.bits_per_symbol


def codeword_layout(mcs: MCS, n_symbols: int, max_cw_bits: int = MAX_CW_BITS) -> CodewordLayout:
    """Split ``n_symbols * m`` coded bits into the fewest equal codewords of <= ``max_cw_bits``.

    ``k = floor(R * n_cw)``; the < ``num_cw * m`` bits left over are filler (wasted). Raises
    ValueError when the block cannot hold one codeword with the 5G minimum of 12 info bits.
    """
    m = mcs.bits_per_symbol
    total = n_symbols * m
    num_cw = max(1, math.ceil(total / max_cw_bits))
    n_cw = (total // num_cw) // m * m
    k = math.floor(mcs.code_rate * n_cw)
    if k < _LDPC_K_MIN:
        raise ValueError(f"n_symbols={n_symbols} is too small for {mcs.name}: a codeword needs "
                         f">= {_LDPC_K_MIN} information bits, the block holds k={k}")
    if k > _LDPC_K_MAX:
        raise ValueError(f"max_cw_bits={max_cw_bits} gives k={k} > {_LDPC_K_MAX} (5G LDPC limit)")
    return CodewordLayout(mcs=mcs, n_symbols=n_symbols, num_cw=num_cw, n_cw=n_cw, k=k)


def post_equalization(channel: Channel, y: Tensor, state: ChannelState) -> tuple[Tensor, Tensor]:
    """Channel output -> (ZF-equivalent symbols ``[B, n]``, their noise variance ``[B, n]``).

    AWGN: ``(y, N0)``.  Fading with ``zf``: ``(y/h_est, N0/|h_est|^2)``; with ``mmse`` the biased
    output ``|h|^2/(|h|^2+N0) x + ...`` is rescaled to the ZF one.  CSI errors are not modelled
    in the noise variance (mismatched demapping), as in a real receiver that trusts its estimate.
    """
    if channel.fading and channel.equalizer not in ("zf", "mmse"):
        raise ValueError(f"the LDPC link needs an equalising channel (equalizer 'zf' or 'mmse'), "
                         f"got equalizer={channel.equalizer!r}")
    applied = channel.equalizer if channel.fading else "none"  # what channel.equalize runs
    return replace(state, equalizer=applied).zero_forced(channel.equalize(y, state))


class LdpcQamPhy:
    """Encoder, mapper, demapper and decoder for one (modulation, n_cw, k).

    Code rates below 1/5 (5G MCS 0-2, e.g. 120/1024) use the BG2 mother code at rate ~1/5 and
    repeat its bits circularly up to ``n_cw`` (38.212 5.4.2.1: bit selection wraps around the
    circular buffer when ``E > N_cb``); the receiver adds the LLRs of the copies (exact for
    independent noise) before decoding.  Sionna's encoder refuses ``k/n < 1/5`` by itself.

    ``early_stop``: stop BP for each codeword once every parity check holds (checked after each
    flooding iteration; converged codewords leave the batch), else run all ``num_iter``.
    """

    def __init__(self, bits_per_symbol: int, n_cw: int, k: int, num_iter: int = 20, *,
                 early_stop: bool = True) -> None:
        from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
        from sionna.phy.mapping import Demapper, Mapper

        self.m, self.n_cw, self.k = bits_per_symbol, n_cw, k
        self.num_iter, self.early_stop = num_iter, early_stop
        # mother code length: n_cw itself, or the longest multiple of m at rate >= 1/5
        self.n_mother = n_cw if 5 * k >= n_cw else (5 * k) // bits_per_symbol * bits_per_symbol
        self._rep = torch.arange(n_cw) % self.n_mother  # coded bit of each transmitted position
        self.encoder = LDPC5GEncoder(k, self.n_mother, num_bits_per_symbol=bits_per_symbol,
                                     precision="single", device="cpu")
        self.decoder = LDPC5GDecoder(self.encoder, num_iter=num_iter, hard_out=True,
                                     return_infobits=True, return_state=True, precision="single",
                                     device="cpu")
        self.mapper = Mapper("qam", bits_per_symbol, precision="single", device="cpu")
        self.demapper = Demapper("app", "qam", bits_per_symbol, precision="single", device="cpu")
        self._pam = _separable_pam(self.mapper.constellation.points, bits_per_symbol)
        rows, cols = np.nonzero(_dense(self.decoder.pcm))  # pruned parity-check matrix
        self._cn_idx = torch.from_numpy(rows.astype(np.int64))
        self._vn_idx = torch.from_numpy(cols.astype(np.int64))
        self._num_cn = int(self.decoder.pcm.shape[0])

    def modulate(self, info_bits: Tensor, n_symbols: int, *,
                 generator: torch.Generator | None = None) -> Tensor:
        """``[B, C, k]`` {0,1} float bits -> ``[B, n_symbols]`` complex64 unit-energy QAM symbols.

        Symbols past the ``C`` codewords carry uniformly random filler bits (so the block keeps
        unit mean power).
        """
        b, c, k = info_bits.shape
        if k != self.k or c * self.n_cw > n_symbols * self.m:
            raise ValueError(f"bits [B, C, k]={tuple(info_bits.shape)} do not fit k={self.k}, "
                             f"n_cw={self.n_cw}, {n_symbols} symbols of {self.m} bits")
        coded = self.encoder(info_bits.reshape(b * c, k).to(torch.float32))
        if self.n_mother != self.n_cw:
            coded = coded[:, self._rep]
        coded = coded.reshape(b, c * self.n_cw)
        filler = n_symbols * self.m - c * self.n_cw
        if filler:
            pad = torch.randint(0, 2, (b, filler), generator=generator).to(coded.dtype)
            coded = torch.cat([coded, pad], dim=1)
        return self.mapper(coded).to(torch.complex64)

    def llr(self, y: Tensor, no: Tensor) -> Tensor:
        """Exact "app" bit logits ``log p(b=1|y)/p(b=0|y)`` ``[B, n * m]`` of symbols ``y [B, n]``
        with noise variance ``no [B, n]``.  Square Gray QAM is a product of two PAMs (I carries
        the even bits, Q the odd ones), so each bit's posterior needs only its own axis: the same
        numbers as Sionna's 2^m-point demapper at 2 * 2^(m/2) points' cost."""
        if self._pam is None:
            return self.demapper(y, no)
        levels, labels = self._pam  # [P] amplitudes, [P, m/2] bits of each amplitude
        half = labels.shape[1]
        no = no.to(torch.float32).clamp_min(1e-12).unsqueeze(-1)
        out = []
        for comp in (y.real, y.imag):  # noise variance no/2 per real dimension
            metric = -(comp.to(torch.float32).unsqueeze(-1) - levels).square() / no  # [B, n, P]
            one = torch.where(labels.T.bool()[None, None], metric.unsqueeze(2), -math.inf)  # [B, n, h, P]
            zero = torch.where(~labels.T.bool()[None, None], metric.unsqueeze(2), -math.inf)
            out.append(torch.logsumexp(one, -1) - torch.logsumexp(zero, -1))  # [B, n, half]
        llr = torch.stack(out, dim=-1)  # [B, n, half, 2]: bit 2j is I's j-th, bit 2j+1 Q's j-th
        return llr.reshape(y.shape[0], y.shape[1] * 2 * half)

    def decode(self, llr: Tensor) -> Tensor:
        """Bit logits ``[N, n_cw]`` of ``N`` codewords -> hard info bits ``[N, k]`` (float 0/1)."""
        if self.n_mother != self.n_cw:  # add the LLRs of the repeated copies
            llr = torch.zeros(llr.shape[0], self.n_mother, dtype=llr.dtype).index_add_(1, self._rep, llr)
        if not self.early_stop:
            return self.decoder(llr)[0]
        return self._decode_early_stop(llr)

    def _decode_early_stop(self, llr: Tensor) -> Tensor:
        from sionna.phy.fec.ldpc import LDPCBPDecoder

        dec = self.decoder
        llr_5g = _assemble_5g(dec, llr)  # what LDPC5GDecoder feeds its BP core
        n = llr_5g.shape[0]
        bits = torch.empty(n, llr_5g.shape[1], dtype=llr_5g.dtype)
        active = torch.arange(n)
        state: Tensor | None = None
        for it in range(self.num_iter):
            x, state = LDPCBPDecoder.call(dec, llr_5g[active], num_iter=1, msg_v2c=state)
            if it == self.num_iter - 1:
                bits[active] = x
                break
            parity = torch.zeros(x.shape[0], self._num_cn, dtype=x.dtype).index_add_(
                1, self._cn_idx, x[:, self._vn_idx])
            done = (parity.remainder(2) == 0).all(dim=1)
            if done.any():
                bits[active[done]] = x[done]
                active, state = active[~done], state[~done]
                if active.numel() == 0:
                    break
        return bits[:, : self.k]

    def demodulate(self, y: Tensor, no: Tensor, num_cw: int) -> Tensor:
        """ZF-equivalent symbols ``[B, n]`` and noise variance ``[B, n]`` -> hard info bits
        ``[B, num_cw, k]`` (float 0/1)."""
        b = y.shape[0]
        llr = self.llr(y, no)[:, : num_cw * self.n_cw]
        return self.decode(llr.reshape(b * num_cw, self.n_cw)).reshape(b, num_cw, self.k)


def _dense(pcm: object) -> np.ndarray:
    return np.asarray(pcm.toarray() if hasattr(pcm, "toarray") else pcm)


def _separable_pam(points: Tensor, m: int) -> tuple[Tensor, Tensor] | None:
    """``(levels [P], labels [P, m/2])`` when the constellation's real part depends only on the
    even bits and its imaginary part only on the odd bits with the same PAM (Sionna's 38.211
    QAM), else None (the joint demapper is used)."""
    pts = points.detach().to(torch.complex64).cpu()
    idx = torch.arange(2 ** m)
    bits = ((idx[:, None] >> torch.arange(m - 1, -1, -1)) & 1)  # [2^m, m], MSB first
    half = m // 2
    weights = 2 ** torch.arange(half - 1, -1, -1)
    even, odd = (bits[:, 0::2] * weights).sum(1), (bits[:, 1::2] * weights).sum(1)
    levels = torch.full((2 ** half,), math.nan)
    levels[even] = pts.real
    levels_q = torch.full((2 ** half,), math.nan)
    levels_q[odd] = pts.imag
    if not (torch.allclose(pts.real, levels[even]) and torch.allclose(pts.imag, levels_q[odd])
            and torch.allclose(levels, levels_q, atol=1e-6)):
        return None
    labels = ((torch.arange(2 ** half)[:, None] >> torch.arange(half - 1, -1, -1)) & 1).to(torch.float32)
    return levels.to(torch.float32), labels


def _assemble_5g(dec: object, llr: Tensor) -> Tensor:
    """Rate recovery of Sionna's LDPC5GDecoder (non-HARQ path): ``[N, n]`` logits -> the
    ``[N, n_ldpc_pruned]`` logits its BP core starts from (punctured bits 0, filler bits known)."""
    enc = dec.encoder
    n, k, z = enc.n, enc.k, enc.z
    buf_len = enc.n_cb_comp - dec._nb_pruned_nodes
    x = llr.to(torch.float32).reshape(-1, n)
    if enc.num_bits_per_symbol is not None:
        x = x[:, enc.out_int_inv]
    x = torch.nn.functional.pad(x, (0, buf_len - n))
    filler = dec._FILLER_LLR if dec._llr_max is None else dec._llr_max
    b = x.shape[0]
    return torch.cat([torch.zeros(b, 2 * z), x[:, : k - 2 * z], -filler * torch.ones(b, enc.k_filler),
                      x[:, k - 2 * z:]], dim=1)


@lru_cache(maxsize=64)
def get_phy(bits_per_symbol: int, n_cw: int, k: int, num_iter: int = 20, early_stop: bool = True) -> LdpcQamPhy:
    """A cached :class:`LdpcQamPhy` (building the 5G parity-check structures is not free)."""
    return LdpcQamPhy(bits_per_symbol, n_cw, k, num_iter, early_stop=early_stop)
