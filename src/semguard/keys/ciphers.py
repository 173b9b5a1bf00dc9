"""Ciphers for semantic symbols keyed by physical-layer keys.

* :class:`KeySchedule` (from :mod:`semguard.keys.kdf`): HKDF-SHA256 (RFC 5869) expands a PLKG
  master key into per-epoch, per-purpose keys, so a key is rotated every epoch and never reused
  across ciphers.
* :class:`AesGcmLatentCipher`: digital latents (quantised symbols as integer codes) sealed with
  AES-256-GCM (NIST SP 800-38D); any change of ciphertext, nonce or associated data is rejected
  with :class:`TamperError`.
* :class:`ScrambleCipher`: analog symbols ``[B, n]`` complex under a secret permutation and a
  per-symbol phase rotation, both drawn fresh per block from an AES-CTR keystream keyed by
  ``(key, nonce, block index)``.  It is power-preserving (``|x|`` is only moved, never scaled), so
  the channel sees unit-power blocks with the same amplitude distribution, and commutes with a
  flat-fading one-tap equaliser, so Bob decodes exactly as without encryption.
  It leaks the multiset of amplitudes ``{|x_i|}`` of each block (permutation- and
  phase-invariant), which an eavesdropper may learn from.
* :class:`MixingCipher`: a secret unitary per block, ``P2 D2 F D1 P1`` (secret permutations
  ``P``, secret phases ``D``, a unitary DFT ``F`` over chunks of up to 64 symbols).  Still
  power-preserving and transparent to a one-tap equaliser on a block-fading channel (unitary:
  white noise stays white at the same power), and every transmitted symbol is a secret
  combination of many, so no amplitude set survives to learn from.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from torch import Tensor

from semguard.channels.base import ChannelState
from semguard.channels.precoding import equivalent_gain, spread_chunk
from semguard.keys.kdf import KeySchedule, hkdf
from semguard.registry import register

__all__ = ["hkdf", "KeySchedule", "TamperError", "AesGcmLatentCipher", "ScrambleCipher", "MixingCipher",
           "quantize_symbols", "dequantize_symbols"]


class TamperError(ValueError):
    """The ciphertext, nonce or associated data was altered (AES-GCM tag mismatch)."""


def quantize_symbols(x: Tensor, bits: int = 8, clip: float = 3.0) -> Tensor:
    """Complex ``[B, n]`` -> integer codes ``[B, 2n]`` (uniform, ``2^bits`` levels on ``[-clip, clip]``)."""
    levels = 2 ** bits - 1
    r = torch.view_as_real(x).reshape(x.shape[0], -1).clamp(-clip, clip)
    return torch.round((r + clip) / (2 * clip) * levels).to(torch.int32)


def dequantize_symbols(codes: Tensor, bits: int = 8, clip: float = 3.0) -> Tensor:
    """Inverse of :func:`quantize_symbols` (to bin centres), complex64 ``[B, n]``."""
    levels = 2 ** bits - 1
    r = codes.float() / levels * (2 * clip) - clip
    return torch.view_as_complex(r.reshape(codes.shape[0], -1, 2).contiguous())


class AesGcmLatentCipher:
    """AES-256-GCM over integer latent codes ``[B, m]`` (values in ``0..255``), one message per batch."""

    def encrypt(self, codes: Tensor, key: bytes, nonce: bytes, aad: bytes = b"") -> bytes:
        """Seal ``codes``; returns ciphertext || 16-byte tag."""
        if codes.dtype.is_floating_point or codes.dtype.is_complex or codes.dim() != 2:
            raise ValueError(f"digital latents must be integer codes [B, m], got {codes.dtype} {tuple(codes.shape)}")
        if codes.min() < 0 or codes.max() > 255:
            raise ValueError("digital latent codes must lie in 0..255 (8-bit quantisation)")
        return AESGCM(key).encrypt(nonce, codes.to(torch.uint8).numpy().tobytes(), aad)

    def decrypt(self, ciphertext: bytes, key: bytes, nonce: bytes, shape: tuple[int, int],
                aad: bytes = b"") -> Tensor:
        """Open a sealed batch of ``shape``; raises :class:`TamperError` if anything was altered."""
        try:
            plain = AESGCM(key).decrypt(nonce, ciphertext, aad)
        except InvalidTag as exc:
            raise TamperError("AES-GCM authentication failed: ciphertext, nonce or key mismatch") from exc
        return torch.from_numpy(np.frombuffer(plain, dtype=np.uint8).copy()).to(torch.int32).reshape(shape)


def _keystream(key: bytes, nonce: bytes, n_bytes: int) -> np.ndarray:
    """AES-256-CTR keystream (``n_bytes`` uint8) under ``key`` with 16-byte IV derived from ``nonce``."""
    iv = hkdf(key, b"scramble-iv|" + nonce, 16)
    enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return np.frombuffer(enc.update(bytes(n_bytes)) + enc.finalize(), dtype=np.uint8)


@register("cipher", "scramble")
class ScrambleCipher:
    """Key-driven permutation + phase rotation of analog symbols, fresh per block.

    Block ``b`` of a batch uses ``perm_b`` (uniform over permutations of ``n``, from sorting 64-bit
    keystream words) and phases ``2 pi k / 2^16``; ``encrypt(x)[b, i] = x[b, perm_b[i]] e^{j phi_bi}``.
    """

    def _params(self, batch: int, n: int, key: bytes, nonce: bytes) -> tuple[Tensor, Tensor]:
        if len(key) not in (16, 24, 32):
            raise ValueError(f"scrambler key must be 128, 192 or 256 bits, got {8 * len(key)}")
        ks = _keystream(key, nonce, batch * n * 10)
        words = ks[: batch * n * 8].view(np.uint64).reshape(batch, n)
        perm = torch.from_numpy(np.argsort(words, axis=1, kind="stable"))
        ph = ks[batch * n * 8:].view(np.uint16).reshape(batch, n).astype(np.float32)
        rot = torch.polar(torch.ones(batch, n), torch.from_numpy(ph * (2.0 * math.pi / 65536.0)))
        return perm, rot

    @staticmethod
    def _check(symbols: Tensor) -> None:
        if not torch.is_complex(symbols) or symbols.dim() != 2:
            raise ValueError(f"ScrambleCipher expects complex symbols [B, n], got {symbols.dtype} {tuple(symbols.shape)}")

    def encrypt(self, symbols: Tensor, key: bytes, nonce: bytes) -> Tensor:
        """``[B, n]`` complex -> scrambled ``[B, n]`` complex (same power per block)."""
        self._check(symbols)
        perm, rot = self._params(*symbols.shape, key, nonce)
        return torch.gather(symbols, 1, perm.to(symbols.device)) * rot.to(symbols.device, symbols.dtype)

    def decrypt(self, symbols: Tensor, key: bytes, nonce: bytes) -> Tensor:
        """Inverse of :meth:`encrypt` with the same key and nonce."""
        self._check(symbols)
        perm, rot = self._params(*symbols.shape, key, nonce)
        return self._unscramble(symbols, perm, rot)

    def decrypt_state(self, state: ChannelState, key: bytes, nonce: bytes) -> ChannelState:
        """The channel state of the decrypted symbols: symbol ``perm[i]`` crossed the channel as
        symbol ``i``, so it carries ``h[i]`` (the phase rotation cancels in ``h x``)."""
        perm, _ = self._params(*state.h.shape, key, nonce)
        return self._move_state(state, perm)

    def decrypt_received(self, symbols: Tensor, state: ChannelState, key: bytes,
                         nonce: bytes) -> tuple[Tensor, ChannelState]:
        """:meth:`decrypt` and :meth:`decrypt_state` from one keystream."""
        self._check(symbols)
        perm, rot = self._params(*symbols.shape, key, nonce)
        return self._unscramble(symbols, perm, rot), self._move_state(state, perm)

    @staticmethod
    def _unscramble(symbols: Tensor, perm: Tensor, rot: Tensor) -> Tensor:
        unrot = symbols * rot.conj().to(symbols.device, symbols.dtype)
        return torch.empty_like(symbols).scatter_(1, perm.to(symbols.device), unrot)

    @staticmethod
    def _move_state(state: ChannelState, perm: Tensor) -> ChannelState:
        perm = perm.to(state.h.device)

        def back(t: Tensor) -> Tensor:
            return torch.empty_like(t).scatter_(1, perm, t)

        return replace(state, h=back(state.h), h_est=back(state.h_est))


@register("cipher", "mixing")
class MixingCipher:
    """Key-driven unitary mixing of analog symbols, fresh per block: scramble, DFT, scramble.

    ``encrypt(x) = S2(F(S1(x)))`` where ``S1``/``S2`` are :class:`ScrambleCipher` passes under
    two independent keystreams of ``(key, nonce)`` and ``F`` is the unitary (orthonormal) DFT over
    consecutive chunks of ``chunk`` symbols (the largest divisor of ``n`` up to ``max_chunk``).
    """

    def __init__(self, max_chunk: int = 64) -> None:
        if max_chunk < 2:
            raise ValueError(f"max_chunk must be >= 2, got {max_chunk}")
        self.max_chunk = max_chunk
        self._scramble = ScrambleCipher()

    def chunk(self, n: int) -> int:
        """DFT size used for blocks of ``n`` symbols."""
        return spread_chunk(n, self.max_chunk)

    def _mix(self, z: Tensor, inverse: bool) -> Tensor:
        b, n = z.shape
        c = self.chunk(n)
        f = torch.fft.ifft if inverse else torch.fft.fft
        return f(z.reshape(b, n // c, c), dim=-1, norm="ortho").reshape(b, n)

    def encrypt(self, symbols: Tensor, key: bytes, nonce: bytes) -> Tensor:
        """``[B, n]`` complex -> mixed ``[B, n]`` complex (same power per block)."""
        z = self._scramble.encrypt(symbols, key, b"mix1|" + nonce)
        return self._scramble.encrypt(self._mix(z, inverse=False), key, b"mix2|" + nonce)

    def decrypt(self, symbols: Tensor, key: bytes, nonce: bytes) -> Tensor:
        """Inverse of :meth:`encrypt` with the same key and nonce."""
        z = self._scramble.decrypt(symbols, key, b"mix2|" + nonce)
        return self._scramble.decrypt(self._mix(z, inverse=True), key, b"mix1|" + nonce)

    def decrypt_state(self, state: ChannelState, key: bytes, nonce: bytes) -> ChannelState:
        """The channel state of the decrypted symbols, one equivalent gain per DFT chunk.

        The inverse DFT spreads a chunk's channel evenly over its symbols, which
        :func:`semguard.channels.precoding.equivalent_gain` turns into one flat gain (the harmonic
        mean of ``|h_j|^2`` for ZF, ``N0 b / (1 - b)`` with ``b`` the mean MMSE factor, the mean
        ``h`` unequalised); ``h_est`` gives the estimate's, ``h`` the true one's.
        """
        st = self._spread_state(self._scramble.decrypt_state(state, key, b"mix2|" + nonce))
        return self._scramble.decrypt_state(st, key, b"mix1|" + nonce)

    def decrypt_received(self, symbols: Tensor, state: ChannelState, key: bytes,
                         nonce: bytes) -> tuple[Tensor, ChannelState]:
        """:meth:`decrypt` and :meth:`decrypt_state` from one pair of keystreams."""
        z, st = self._scramble.decrypt_received(symbols, state, key, b"mix2|" + nonce)
        return self._scramble.decrypt_received(self._mix(z, inverse=True), self._spread_state(st), key,
                                               b"mix1|" + nonce)

    def _spread_state(self, st: ChannelState) -> ChannelState:
        """Per DFT chunk of the mixed-domain state, the flat gain of :meth:`decrypt_state`."""
        b, n = st.h.shape
        c = self.chunk(n)
        n0 = st.n0.reshape(b, 1, 1)

        def flat(h: Tensor) -> Tensor:
            return equivalent_gain(h.reshape(b, n // c, c), n0, st.equalizer).expand(b, n // c, c).reshape(b, n)

        return replace(st, h=flat(st.h), h_est=flat(st.h_est))
