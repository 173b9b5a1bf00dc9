"""One semantic link: codec, channel, optional cipher, adversary and eavesdropper.

Every evaluation, study, attack and defence talks to a :class:`Link` instead of writing
``encode -> encrypt -> channel (+ interference) -> decrypt -> decode`` by hand.  The chain, with
the hooks an attacker needs::

    source --encode--> symbols --encrypt--> transmitted
        --channel.sample_state--> state --(pilot attack: channel.corrupt_pilots)-->
        --channel.apply(+ interference)--> raw --channel.equalize--> received
        --decrypt--> deciphered --decode--> output
    transmitted --Eve's own channel--> Eve's received --(her key, if any)--> Eve's output

The forward pass is differentiable end to end (no ``no_grad`` inside), so an attack's gradient
reaches its perturbation through fading, equalisation, the cipher and the decoder.  With no
cipher, adversary or eavesdropper the link draws its randomness in the same order as
``codec(source, channel, snr_db)``, so both give bit-identical outputs under one generator.

Output: one dict per batch with fixed keys (:data:`LINK_KEYS`, plus the codec's ``output_key``
as an alias of ``output`` and ``eve`` when there is an eavesdropper).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from semguard.channels.base import Channel, ChannelState, as_snr_tensor
from semguard.codecs.base import SemanticCodec
from semguard.keys.cipher_base import Cipher

__all__ = ["Link", "Eavesdropper", "Adversary", "LINK_KEYS", "batch_nonce"]

#: keys of every :meth:`Link.forward` result
LINK_KEYS = ("output", "symbols", "transmitted", "state", "interference", "raw", "received", "deciphered",
             "deciphered_state")


def batch_nonce(index: int) -> bytes:
    """The 12-byte nonce of batch ``index`` (a cipher never sees one nonce twice under one key)."""
    if index < 0:
        raise ValueError(f"batch index must be >= 0, got {index}")
    return int(index).to_bytes(12, "big")


@runtime_checkable
class Adversary(Protocol):
    """An active attacker on the air interface.

    ``interference`` returns what the attacker's radiation adds at the receiver (complex
    ``[B, n]``, through the attacker's own channel) or None; an adversary may also define
    ``pilots(transmitted, state, channel, *, generator) -> Tensor | None``, the perturbation
    ``[B, n_blocks]`` it adds to the receiver's pilots (see :meth:`Channel.corrupt_pilots`).
    """

    def interference(self, transmitted: Tensor, state: ChannelState, *,
                     generator: torch.Generator | None = None) -> Tensor | None: ...


@dataclass
class Eavesdropper:
    """Eve: her own channel (own fading and noise draw), the public codec (or her own decoder), and
    the key she holds (None: she decodes the ciphertext as it is).

    ``snr_offset_db`` is her SNR relative to Bob's (negative: farther away)."""

    channel: Channel
    key: bytes | None = field(default=None, repr=False)
    codec: SemanticCodec | None = None
    snr_offset_db: float = 0.0


class Link(nn.Module):
    """``codec`` over ``channel``, optionally enciphered (``cipher`` + ``key``), attacked
    (``adversary``) and overheard (``eavesdropper``).

    Args:
        codec: any :class:`SemanticCodec`.
        channel: any :class:`Channel` (Bob's).
        cipher: a :class:`~semguard.keys.cipher_base.Cipher` (``build("cipher", ...)``); needs ``key``.
        key: the shared symbol key (bytes; never logged).
        adversary: an :class:`Adversary` whose interference and pilot perturbation every batch gets.
        eavesdropper: an :class:`Eavesdropper`; the result then holds ``eve``.
    """

    def __init__(self, codec: SemanticCodec, channel: Channel, *, cipher: Cipher | None = None,
                 key: bytes | None = None, adversary: Adversary | None = None,
                 eavesdropper: Eavesdropper | None = None) -> None:
        super().__init__()
        if not isinstance(codec, SemanticCodec):
            raise TypeError(f"codec must be a SemanticCodec, got {type(codec).__name__}")
        if not isinstance(channel, Channel):
            raise TypeError(f"channel must be a semguard Channel, got {type(channel).__name__}")
        if (cipher is None) != (key is None):
            raise ValueError("a cipher needs a key and a key needs a cipher: give both or neither")
        if cipher is not None and not isinstance(cipher, Cipher):
            raise TypeError(f"{type(cipher).__name__} has no encrypt / decrypt_received")
        if adversary is not None and not callable(getattr(adversary, "interference", None)):
            raise TypeError(f"{type(adversary).__name__} has no interference(transmitted, state) method")
        self.codec = codec
        self.channel = channel
        self.cipher = cipher
        self._key = key
        self.adversary = adversary
        self.eavesdropper = eavesdropper

    def __repr__(self) -> str:  # never show key material
        parts = [f"codec={type(self.codec).__name__}", f"channel={self.channel!r}"]
        if self.cipher is not None:
            parts.append(f"cipher={type(self.cipher).__name__}(<key>)")
        if self.adversary is not None:
            parts.append(f"adversary={self.adversary!r}")
        if self.eavesdropper is not None:
            parts.append("eavesdropper=yes")
        return f"Link({', '.join(parts)})"

    @property
    def output_key(self) -> str:
        return self.codec.output_key

    def n_symbols(self, source_shape: tuple[int, ...]) -> int:
        """Complex channel uses per source of ``source_shape`` (without batch)."""
        return self.codec.n_symbols(source_shape)

    def forward(self, source: Tensor, snr_db: Tensor | float, *, generator: torch.Generator | None = None,
                nonce: bytes = b"\x00" * 12, interference: Tensor | None = None,
                pilot_interference: Tensor | None = None, symbols: Tensor | None = None,
                decode: bool = True, noise_generator: torch.Generator | None = None) -> dict[str, Any]:
        """Send one batch.

        Args:
            source: the codec's source batch (images ``[B, C, H, W]``, token ids ``[B, T]``).
            snr_db: Bob's average SNR, a scalar or ``[B]``.
            generator: the one source of the channel's randomness (fading, CSI error, noise).
            nonce: the cipher's nonce of this batch (:func:`batch_nonce`).
            interference: complex ``[B, n]`` added at the receiver (``Channel.apply``), on top of
                the adversary's.
            pilot_interference: complex ``[B, n_blocks]`` added to the receiver's pilots.
            symbols: transmit these encoder outputs instead of encoding ``source`` (a symbol-domain
                attack perturbs them; they must be complex ``[B, n]``).
            decode: False stops after the receiver's (deciphered) symbols: ``output`` is None (an
                eavesdropper learning from intercepts needs no decoding).
            noise_generator: draws Bob's thermal noise instead of ``generator`` (None: ``generator``
                draws it too).  Fading and CSI error come first from ``generator``, so a replayed
                ``generator`` with a fresh ``noise_generator`` gives the same fading and CSI and a new
                noise: what an attacker who knows the channel but not the receiver's noise can model.
        """
        codec = self.codec
        codec.check_source(source)
        b = source.shape[0]
        snr = as_snr_tensor(snr_db, b, source.device)
        x = codec.encode(source, snr) if symbols is None else symbols
        n = codec.n_symbols(tuple(source.shape[1:]))
        if x.shape != (b, n) or not torch.is_complex(x):
            raise ValueError(f"symbols must be complex [{b}, {n}] for this source, got {x.dtype} {tuple(x.shape)}")
        s = self.cipher.encrypt(x, self._key, nonce) if self.cipher is not None else x
        state = self.channel.sample_state(b, n, snr, generator=generator, device=s.device)
        adv = self.adversary
        pilots = getattr(adv, "pilots", None) if adv is not None else None
        delta = pilots(s, state, self.channel, generator=generator) if pilots is not None else None
        delta = _add(delta, pilot_interference)
        if delta is not None:
            state = self.channel.corrupt_pilots(state, delta)
        intf = adv.interference(s, state, generator=generator) if adv is not None else None
        intf = _add(intf, interference)
        if intf is not None and (intf.shape != s.shape or not torch.is_complex(intf)):
            raise ValueError(f"interference must be complex {tuple(s.shape)}, got {intf.dtype} {tuple(intf.shape)}")
        noise = generator if noise_generator is None else noise_generator
        raw = self.channel.apply(s, state, generator=noise, interference=intf)
        y = self.channel.equalize(raw, state)
        y_d, st_d = (self.cipher.decrypt_received(y, state, self._key, nonce) if self.cipher is not None
                     else (y, state))
        out = codec.decode(y_d, st_d, **codec.decode_kwargs(source)) if decode else None
        res: dict[str, Any] = {"output": out, codec.output_key: out, "symbols": x, "transmitted": s, "state": state,
                               "interference": intf, "raw": raw, "received": y, "deciphered": y_d,
                               "deciphered_state": st_d}
        if self.eavesdropper is not None:
            res["eve"] = self._eve(s, snr, source, nonce, generator, decode)
        return res

    def _eve(self, s: Tensor, snr: Tensor, source: Tensor, nonce: bytes,
             generator: torch.Generator | None, decode: bool) -> dict[str, Any]:
        eve = self.eavesdropper
        assert eve is not None
        codec = eve.codec or self.codec
        y, state = eve.channel(s, snr + eve.snr_offset_db, generator=generator)
        if self.cipher is not None and eve.key is not None:
            y, state = self.cipher.decrypt_received(y, state, eve.key, nonce)
        out = codec.decode(y, state, **codec.decode_kwargs(source)) if decode else None
        return {"output": out, codec.output_key: out, "received": y, "state": state}


def _add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    if a is None:
        return b
    return a if b is None else a + b
