"""Keyed spreading: the transmitter sends ``U_k [x, p]`` for a secret unitary ``U_k`` drawn fresh per block
from the link's session key, and the receiver applies ``U_k^H`` after equalisation, before the decoder.

``U_k = S2 F S1`` is the :class:`~semguard.keys.ciphers.MixingCipher` with one DFT over the whole
block: ``S1``/``S2`` are a secret permutation with secret per-symbol phases each, ``F`` the orthonormal
DFT, so every entry of ``U_k`` has magnitude ``1/sqrt(n)`` and it costs ``O(n log n)``.  Its key is
``hkdf(session key, "semguard keyed-spread")`` (:func:`spread_key`), and the keystream is fresh per
``(key, nonce, block)`` (:func:`semguard.link.batch_nonce` per batch, the block's row within it), so
repeated blocks never reuse one ``U_k``.  Unitary: power and white noise are untouched.

Why it helps: a perturbation ``d`` reaches the decoder as ``U_k^H d``.  An attacker without the key
cannot aim it at the decoder's weak directions; for a fixed ``d`` it is a random rotation, spread
evenly over the block, and acts as white Gaussian jamming of the same power.  The one component that
survives despreading whatever the key is a common complex gain: ``d = c U_k x`` (the attacker re-radiates
the signal it hears, scaled) reaches the decoder as ``c x``, and so does a wrong pilot estimate of a flat
fade.  So the block also carries ``pilots`` known unit-modulus symbols ``p`` before spreading (overhead
``pilots / n`` channel uses, no power: the block keeps mean power 1).  After despreading the receiver
reads the block's complex gain ``a`` and its white noise-plus-interference power ``s2`` off them
(:func:`gain_and_floor`), divides the data by ``a`` and hands the decoder ``s2 / |a|^2`` as its noise:
the gain attack is undone, and the spread (now white) jamming is weighted as the noise it is.

What the pilots cannot undo is the power the re-radiation takes away: ``c U_k x`` with ``c`` anti-phase
leaves the gain ``1 + c`` on every despread symbol, an SINR loss of ``|1 + c|^2`` (-7.2 dB for
``c = -0.56``, all of a -5 dB PSR budget) that no receiver processing recovers.  ``repeat`` buys it back
with channel uses: the block ``[x, p]`` is sent ``repeat`` times inside one spreading (one fresh
``U_k`` over all the copies, so an attacker without the key cannot address one copy apart from the
others) and the receiver combines the despread copies by their own pilots (maximum ratio:
``sum_i conj(a_i) z_i / s2_i`` over ``sum_i |a_i|^2 / s2_i``).  Against a common gain that is
``repeat`` times the SINR at ``repeat`` times the uses; the spread (white) part of any key-blind
jamming is independent per copy and averages down the same way, while a repetition without the key
leaves PGD free to aim at the decoder through every copy.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from semguard.channels.base import ChannelState
from semguard.codecs.base import SemanticCodec
from semguard.defenses._wrapped import ReceiverWrapper
from semguard.keys.ciphers import MixingCipher
from semguard.keys.kdf import hkdf
from semguard.link import Link
from semguard.registry import register

__all__ = [
    "MAX_REPEAT",
    "WHOLE_BLOCK",
    "KeyedSpreadDefense",
    "SpreadPilotCodec",
    "check_key",
    "check_repeat",
    "combine_copies",
    "gain_and_floor",
    "pilot_sequence",
    "spread_key",
]

#: the DFT size bound that makes the mixing one DFT over any block the codecs produce
WHOLE_BLOCK = 1 << 24
_INFO = b"semguard keyed-spread"
#: the smallest gain the receiver divides by (a block received 26 dB below its power is lost anyway)
MIN_GAIN = 0.05
#: the most copies of a block ``repeat`` sends
MAX_REPEAT = 16


def check_key(key: object) -> bytes:
    """``key`` as bytes, or a one-line error: it must be non-empty bytes (the link's session key)."""
    if not isinstance(key, (bytes, bytearray)):
        raise TypeError(f"key: keyed spreading needs the link's session key as bytes, got {type(key).__name__}")
    if len(key) == 0:
        raise ValueError("key: keyed spreading needs a non-empty session key (did key agreement fail?)")
    return bytes(key)


def spread_key(session_key: bytes) -> bytes:
    """The 256-bit spreading key derived from ``session_key`` (HKDF-SHA256, its own context)."""
    return hkdf(check_key(session_key), _INFO, 32)


def pilot_sequence(m: int) -> Tensor:
    """``m`` public unit-modulus pilots ``[m]`` complex64 (quadratic-phase, so none repeats the next)."""
    k = torch.arange(m, dtype=torch.float64)
    return torch.polar(torch.ones(m, dtype=torch.float64), math.pi * k * k / max(m, 1)).to(torch.complex64)


def gain_and_floor(z: Tensor, p: Tensor, floor: Tensor, data: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The complex gain ``a [B, 1]`` (modulus at least :data:`MIN_GAIN`) of despread, zero-forced pilots ``z [B, m]`` against the known ``p [m]``,
    and the white noise-plus-interference power ``s2 [B, 1]`` around ``a p`` (unbiased: ``m / (m - 1)``),
    never below ``floor [B, 1]`` (the noise the receiver knows is there).

    The phase of ``a`` is the pilots' least-squares one.  Its modulus is theirs too, unless ``data [B, n]``
    (the despread unit-power data, ``n >> m``) is given: then ``|a|^2 = mean |data|^2 - s2``, whose error
    is that of ``s2`` alone instead of ``s2 / m``."""
    m = p.shape[0]
    if z.shape[1] != m or m < 2:
        raise ValueError(f"gain_and_floor: need >= 2 pilots, one per column, got {tuple(z.shape)} for {m}")
    a = (z * p.conj()).mean(1, keepdim=True) / p.abs().square().mean()
    a = a * (MIN_GAIN / a.abs().clamp_min(1e-12)).clamp_min(1.0)             # |a| >= MIN_GAIN: no blow-up
    s2 = torch.maximum((z - a * p).abs().square().sum(1, keepdim=True) / (m - 1), floor)
    if data is not None:
        mod = (data.abs().square().mean(1, keepdim=True) - s2).clamp_min(MIN_GAIN ** 2).sqrt()
        a = mod.to(z.dtype) * (a / a.abs())
    return a, s2


def check_repeat(repeat: object) -> int:
    """``repeat`` as an int, or a one-line error: 1 .. :data:`MAX_REPEAT` copies of the block."""
    if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
        raise ValueError(f"repeat must be an integer from 1 to {MAX_REPEAT} copies of the block, got {repeat!r}")
    return repeat


def combine_copies(z: Tensor, p: Tensor, floor: Tensor) -> tuple[Tensor, Tensor]:
    """Maximum-ratio combining of ``r`` despread, zero-forced copies ``z [B, r, n + m]`` of ``[x, p]``
    (``p [m]`` the pilots): each copy's gain ``a_i`` and floor ``s2_i`` from :func:`gain_and_floor`,
    then ``x_hat = sum_i conj(a_i) z_i / s2_i / w`` with ``w = sum_i |a_i|^2 / s2_i [B, 1]``, the
    combined SINR per unit noise (``x_hat = x + e``, ``E|e|^2 = 1 / w``).  Returns ``(x_hat [B, n], w)``."""
    m = p.shape[0]
    n = z.shape[2] - m
    num = torch.zeros(z.shape[0], n, dtype=z.dtype, device=z.device)
    w = torch.zeros(z.shape[0], 1, dtype=floor.dtype, device=z.device)
    for i in range(z.shape[1]):
        a, s2 = gain_and_floor(z[:, i, n:], p, floor, z[:, i, :n])
        num = num + a.conj() / s2 * z[:, i, :n]
        w = w + a.abs().square() / s2
    return num / w, w


class SpreadPilotCodec(ReceiverWrapper):
    """``codec`` with ``pilots`` known symbols after its own, the whole ``[x, p]`` sent ``repeat`` times;
    its receiver corrects each despread copy's gain and noise from its pilots and combines the copies
    (see the module)."""

    def __init__(self, codec: SemanticCodec, pilots: int, repeat: int = 1) -> None:
        super().__init__()
        self.codec, self.pilots, self.repeat = codec, int(pilots), check_repeat(repeat)
        self.register_buffer("p", pilot_sequence(self.pilots))
        self.output_key = codec.output_key
        self.config = {"pilots": self.pilots} if self.repeat == 1 else {"pilots": self.pilots, "repeat": self.repeat}

    def n_symbols(self, source_shape: tuple[int, ...]) -> int:
        return self.repeat * (self.codec.n_symbols(source_shape) + self.pilots)

    def encode(self, source: Tensor, snr_db: Tensor | float) -> Tensor:
        x = self.codec.encode(source, snr_db)
        block = torch.cat([x, self.p.to(x.device).expand(x.shape[0], -1)], dim=1)
        return block if self.repeat == 1 else block.repeat(1, self.repeat)

    def correct(self, y: Tensor, state: ChannelState) -> tuple[Tensor, ChannelState]:
        """Despread received block ``[B, repeat * (n + pilots)]`` -> the data ``[B, n]`` divided by the
        pilots' gain (combined over the copies) and a zero-forced state whose noise per symbol is the
        pilots' floor over that gain."""
        y_zf, noise = state.zero_forced(y)
        floor = noise.mean(1, keepdim=True)
        if self.repeat == 1:
            n = y.shape[1] - self.pilots
            a, s2 = gain_and_floor(y_zf[:, n:], self.p, floor, y_zf[:, :n])
            g = (state.n0 * a.abs().square() / s2).sqrt()               # |h'|^2 = N0 / (s2 / |a|^2)
            x_hat = y_zf[:, :n] / a
        else:
            x_hat, w = combine_copies(y_zf.reshape(y.shape[0], self.repeat, -1), self.p, floor)
            g = (state.n0 * w).sqrt()                                   # |h'|^2 = N0 w
            n = x_hat.shape[1]
        h = g.to(y.dtype).expand(-1, n)
        return x_hat, ChannelState(h=h, h_est=h, snr_db=state.snr_db, n0=state.n0, equalizer="zf")

    def decode(self, y: Tensor, state: ChannelState, **kw: Any) -> Tensor:
        return self.codec.decode(*self.correct(y, state), **kw)


@register("defense", "keyed-spread")
class KeyedSpreadDefense:
    """``wrap(link)``: ``link`` with keyed spreading of its symbols under ``key`` (see the module).

    Args:
        key: the link's session key (bytes, e.g. a PLKG key or a :class:`~semguard.keys.kdf.KeySchedule`
            key); never logged or shown.
        pilots: known symbols per block inside the spreading (gain and noise floor; >= 2).
        max_chunk: the largest DFT size (default: the whole block; smaller mixes in chunks).
        repeat: copies of ``[data, pilots]`` sent inside one spreading and combined at the receiver
            (``repeat * (n + pilots)`` channel uses; 1: the block once).
    """

    def __init__(self, *, key: bytes, pilots: int = 512, max_chunk: int = WHOLE_BLOCK, repeat: int = 1) -> None:
        if isinstance(pilots, bool) or not isinstance(pilots, int) or pilots < 2:
            raise ValueError(f"pilots must be an integer >= 2 known symbols per block, got {pilots!r}")
        self.repeat = check_repeat(repeat)
        self._key = spread_key(key)
        self.pilots = pilots
        self.cipher = MixingCipher(max_chunk=max_chunk)

    def __repr__(self) -> str:  # never show key material
        rep = "" if self.repeat == 1 else f", repeat={self.repeat}"
        return f"KeyedSpreadDefense(key=<secret>, pilots={self.pilots}, max_chunk={self.cipher.max_chunk}{rep})"

    def wrap(self, link: Link, *, key: bytes | None = None) -> Link:
        """``link`` with keyed spreading; ``key`` (another session key) overrides the defence's own."""
        if not isinstance(link, Link):
            raise TypeError(f"link must be a semguard Link, got {type(link).__name__}")
        if link.cipher is not None:
            raise ValueError("link: keyed spreading is the link's cipher; wrap an unciphered link")
        k = self._key if key is None else spread_key(key)
        return Link(SpreadPilotCodec(link.codec, self.pilots, self.repeat), link.channel, cipher=self.cipher, key=k,
                    adversary=link.adversary, eavesdropper=link.eavesdropper)
