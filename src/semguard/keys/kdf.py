"""Key derivation without torch: HKDF-SHA256 (RFC 5869) and the per-epoch :class:`KeySchedule`.

The ciphers (:mod:`semguard.keys.ciphers`) and the networked runtime's frame sealing
(:mod:`semguard.runtime.secure`) derive their keys here; this module imports only
``cryptography``, so the runtime's processes start without loading torch.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["hkdf", "KeySchedule"]


def hkdf(master: bytes, info: bytes, length: int = 32, salt: bytes | None = None) -> bytes:
    """HKDF-SHA256 of ``master`` for context ``info`` (RFC 5869)."""
    if not master:
        raise ValueError("HKDF needs a non-empty master key (did key agreement fail?)")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(master)


class KeySchedule:
    """Per-epoch keys from one PLKG master key: ``hkdf(master, purpose || epoch)``."""

    def __init__(self, master: bytes, *, salt: bytes = b"semguard-plkg") -> None:
        if len(master) < 16:
            raise ValueError(f"master key must be at least 128 bits, got {8 * len(master)}")
        self._master = master
        self._salt = salt

    def __repr__(self) -> str:  # never show key material
        return "KeySchedule(<secret>)"

    def key(self, epoch: int, purpose: str = "symbols") -> bytes:
        """The 256-bit key of ``purpose`` for ``epoch`` (>= 0)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        return hkdf(self._master, f"{purpose}|epoch={epoch}".encode(), 32, self._salt)
