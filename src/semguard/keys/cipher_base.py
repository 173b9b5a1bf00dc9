"""The :class:`Cipher` protocol: a key-driven, power-preserving transform of analog symbols.

A :class:`~semguard.link.Link` enciphers the encoder's symbols before the channel and deciphers
the equalised ones after it; because the channel state travels with the symbols, a cipher also
says how it moves the state (``decrypt_received``)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from semguard.channels.base import ChannelState

__all__ = ["Cipher"]


@runtime_checkable
class Cipher(Protocol):
    """``encrypt``/``decrypt`` complex ``[B, n]`` symbols under ``(key, nonce)``; ``decrypt_received``
    deciphers received symbols and returns the channel state they now carry."""

    def encrypt(self, symbols: Tensor, key: bytes, nonce: bytes) -> Tensor: ...

    def decrypt(self, symbols: Tensor, key: bytes, nonce: bytes) -> Tensor: ...

    def decrypt_received(self, symbols: Tensor, state: ChannelState, key: bytes,
                         nonce: bytes) -> tuple[Tensor, ChannelState]: ...
