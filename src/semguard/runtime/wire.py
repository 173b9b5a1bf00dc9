"""Encodings shared by the handshake messages (JSON bodies): bit strings, index lists and IQ blocks
as base64, canonical JSON, and the transcript hash over the public part of each message."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import numpy as np

__all__ = ["canon", "bits_out", "bits_in", "idx_out", "idx_in", "iq_out", "iq_in", "bytes_out", "bytes_in", "int_field", "hex_field", "Transcript", "PROBE_KEY",
           "WireError"]

#: the field that carries a probe block; the emulator rewrites it, so it is never part of a transcript
PROBE_KEY = "probe"
_MAX_ITEMS = 1 << 20


class WireError(ValueError):
    """A handshake field that does not decode (the message names it)."""


def canon(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise WireError(f"{what}: expected a base64 string, got {type(text).__name__}")
    try:
        return base64.b64decode(text.encode(), validate=True)
    except ValueError:
        raise WireError(f"{what}: not base64") from None


def bits_out(bits: np.ndarray) -> dict[str, Any]:
    bits = np.asarray(bits, dtype=np.uint8).reshape(-1)
    return {"n": int(bits.size), "b": _b64(np.packbits(bits).tobytes())}


def bits_in(obj: Any, what: str, n: int | None = None) -> np.ndarray:
    """A bit string of :func:`bits_out`; ``n``: the length it must have."""
    if not isinstance(obj, dict) or not isinstance(obj.get("n"), int):
        raise WireError(f"{what}: expected {{n, b}}")
    size = obj["n"]
    if not 0 <= size <= _MAX_ITEMS or (n is not None and size != n):
        raise WireError(f"{what}: {size} bits, expected {n if n is not None else f'at most {_MAX_ITEMS}'}")
    raw = _unb64(obj.get("b"), what)
    if len(raw) != -(-size // 8):
        raise WireError(f"{what}: {len(raw)} bytes do not hold {size} bits")
    return np.unpackbits(np.frombuffer(raw, np.uint8))[:size].copy()


def bytes_out(raw: bytes) -> str:
    return _b64(raw)


def bytes_in(text: Any, what: str) -> bytes:
    return _unb64(text, what)


def idx_out(idx: np.ndarray) -> str:
    return _b64(np.asarray(idx, dtype=">u4").tobytes())


def idx_in(text: Any, what: str, bound: int) -> np.ndarray:
    """Distinct indices in ``[0, bound)``."""
    raw = _unb64(text, what)
    if len(raw) % 4:
        raise WireError(f"{what}: {len(raw)} bytes is not a whole number of u32 indices")
    idx = np.frombuffer(raw, ">u4").astype(np.int64)
    if idx.size and (idx.max() >= bound or np.unique(idx).size != idx.size):
        raise WireError(f"{what}: indices must be distinct and below {bound}")
    return idx


def iq_out(iq: np.ndarray) -> str:
    return _b64(np.ascontiguousarray(iq, dtype="<c8").tobytes())


def iq_in(text: Any, what: str, n: int | None = None) -> np.ndarray:
    raw = _unb64(text, what)
    if len(raw) % 8 or len(raw) // 8 > _MAX_ITEMS or (n is not None and len(raw) // 8 != n):
        raise WireError(f"{what}: {len(raw)} bytes is not {n if n is not None else 'a number of'} complex64 samples")
    iq = np.frombuffer(raw, "<c8").astype(np.complex128)
    if not np.all(np.isfinite(iq)):
        raise WireError(f"{what}: non-finite samples")
    return iq


def int_field(msg: dict[str, Any], name: str, lo: int, hi: int) -> int:
    v = msg.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise WireError(f"field {name!r} must be an integer in {lo}..{hi}, got {v!r}")
    return v


def hex_field(msg: dict[str, Any], name: str, n: int) -> bytes:
    try:
        raw = bytes.fromhex(msg[name])
    except (KeyError, TypeError, ValueError):
        raw = b""
    if len(raw) != n:
        raise WireError(f"field {name!r} must be {n} bytes of hex")
    return raw


class Transcript:
    """SHA-256 chain over the public part of every handshake message, in order (probe blocks left out:
    they are physical-layer signals the channel changes, not public discussion)."""

    def __init__(self, label: bytes) -> None:
        self._h = hashlib.sha256(b"semguard-runtime-transcript|" + label)

    def add(self, direction: str, msg: dict[str, Any]) -> None:
        public = {k: v for k, v in msg.items() if k != PROBE_KEY}
        self._h.update(direction.encode() + b"|" + canon(public) + b"\n")

    def digest(self) -> bytes:
        return self._h.copy().digest()
