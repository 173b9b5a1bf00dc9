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
    """Encoder, mapper, demapper and decoder for one (modulation, n_cw, k)."""

    def __init__(self, bits_per_symbol: int, n_cw: int, k: int, num_iter: int = 20) -> None:
        from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
        from sionna.phy.mapping import Demapper, Mapper

        self.m, self.n_cw, self.k = bits_per_symbol, n_cw, k
        self.encoder = LDPC5GEncoder(k, n_cw, num_bits_per_symbol=bits_per_symbol,
                                     precision="single", device="cpu")
        self.decoder = LDPC5GDecoder(self.encoder, num_iter=num_iter, hard_out=True,
                                     return_infobits=True, precision="single", device="cpu")
        self.mapper = Mapper("qam", bits_per_symbol, precision="single", device="cpu")
        self.demapper = Demapper("app", "qam", bits_per_symbol, precision="single", device="cpu")

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
        coded = self.encoder(info_bits.reshape(b * c, k).to(torch.float32)).reshape(b, c * self.n_cw)
        filler = n_symbols * self.m - c * self.n_cw
        if filler:
            pad = torch.randint(0, 2, (b, filler), generator=generator).to(coded.dtype)
            coded = torch.cat([coded, pad], dim=1)
        return self.mapper(coded).to(torch.complex64)

    def demodulate(self, y: Tensor, no: Tensor, num_cw: int) -> Tensor:
        """ZF-equivalent symbols ``[B, n]`` and noise variance ``[B, n]`` -> hard info bits
        ``[B, num_cw, k]`` (float 0/1)."""
        b = y.shape[0]
        llr = self.demapper(y, no)[:, : num_cw * self.n_cw]
        return self.decoder(llr.reshape(b * num_cw, self.n_cw)).reshape(b, num_cw, self.k)


@lru_cache(maxsize=64)
def get_phy(bits_per_symbol: int, n_cw: int, k: int, num_iter: int = 20) -> LdpcQamPhy:
    """A cached :class:`LdpcQamPhy` (building the 5G parity-check structures is not free)."""
    return LdpcQamPhy(bits_per_symbol, n_cw, k, num_iter)
