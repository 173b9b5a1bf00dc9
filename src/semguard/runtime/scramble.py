"""The symbol-domain cipher of ``FLAG_SYMBOLS`` frames: the registered ``scramble`` cipher (a keyed
permutation and phase rotation per block) under ``epoch_key(master, epoch, "symbols")`` with the
frame's own nonce, so the relay (and Eve's tap) sees the IQ block only permuted and rotated, and a
channel or an attacker can still act on it symbol by symbol.  It loads torch (through the cipher)."""

from __future__ import annotations

import numpy as np

from semguard.runtime.secure import epoch_key, frame_nonce

__all__ = ["SymbolScrambler"]


class SymbolScrambler:
    def __init__(self, master: bytes) -> None:
        import torch

        from semguard.registry import build
        self._torch, self._cipher = torch, build("cipher", "scramble")
        self._master = master
        self._keys: dict[int, bytes] = {}

    def __repr__(self) -> str:
        return "SymbolScrambler(<secret>)"

    def _key(self, epoch: int) -> bytes:
        if epoch not in self._keys:
            self._keys = {epoch: epoch_key(self._master, epoch, "symbols")}
        return self._keys[epoch]

    def _run(self, iq: np.ndarray, epoch: int, seq: int, inverse: bool) -> np.ndarray:
        x = self._torch.from_numpy(np.ascontiguousarray(iq, dtype=np.complex64)).reshape(1, -1)
        fn = self._cipher.decrypt if inverse else self._cipher.encrypt
        return fn(x, self._key(epoch), frame_nonce(epoch, seq)).numpy().reshape(-1)

    def encrypt(self, iq: np.ndarray, epoch: int, seq: int) -> np.ndarray:
        return self._run(iq, epoch, seq, False)

    def decrypt(self, iq: np.ndarray, epoch: int, seq: int) -> np.ndarray:
        return self._run(iq, epoch, seq, True)
