"""Versioned, length-prefixed wire frames for the semantic link runtime.

Layout (all integers big-endian), header :data:`HEADER_SIZE` = 24 bytes::

    magic  b"SGRF"   4 bytes
    version          u8   (:data:`VERSION`)
    type             u8   (:class:`FrameType`)
    flags            u8   (bit 0: payload sealed by AEAD, see :mod:`semguard.runtime.secure`;
                          bit 1: with bit 0, only the side info sealed, the IQ block after it)
    reserved         u8   (must be 0)
    epoch            u32  (key epoch)
    seq              u64  (sequence number within the epoch)
    length           u32  (payload bytes that follow, <= :data:`MAX_PAYLOAD`)

A clear DATA payload is ``u32 side_len | side info (UTF-8 JSON object) | IQ block``, the IQ block
being complex64 samples, little-endian interleaved float32 I/Q -- the item layout GNU Radio's
ZeroMQ blocks send and receive for ``gr_complex`` streams (:func:`iq_bytes` gives the raw stream
form; tested against GNU Radio 3.10's ZeroMQ blocks through the emulator's bridge,
:mod:`semguard.runtime.gr_bridge`).  The parser is strict: every violation
raises :class:`FrameError` (a ValueError) naming the field, and nothing else.
"""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MAGIC", "VERSION", "HEADER_SIZE", "MAX_PAYLOAD", "FLAG_SEALED", "FLAG_SYMBOLS", "FrameType", "FrameError",
           "Frame", "encode_frame", "decode_frame", "pack_data", "unpack_data", "split_symbols", "side_bytes", "iq_bytes", "iq_from_bytes"]

MAGIC = b"SGRF"
VERSION = 1
_HEADER = struct.Struct(">4sBBBBIQI")
HEADER_SIZE = _HEADER.size
#: largest payload a parser accepts (bounded memory per frame)
MAX_PAYLOAD = 8 * 1024 * 1024
FLAG_SEALED = 0x01
#: with FLAG_SEALED: only the side info is under the AEAD, the IQ block follows it in the clear layout
#: (keyed-scrambled), so a channel can act on it (``u32 n | AEAD(side) | IQ``, see runtime.secure)
FLAG_SYMBOLS = 0x02
_KNOWN_FLAGS = FLAG_SEALED | FLAG_SYMBOLS
_MAX_SIDE = 64 * 1024


class FrameType(enum.IntEnum):
    DATA = 1        #: an IQ block and its side information
    HANDSHAKE = 2   #: link set-up message (JSON)
    CONTROL = 3     #: end of stream, re-key notice (JSON)


class FrameError(ValueError):
    """A malformed frame (the message names the offending field)."""


@dataclass(frozen=True)
class Frame:
    """One frame: header fields and the raw payload bytes."""

    type: FrameType
    epoch: int
    seq: int
    payload: bytes = field(repr=False)
    flags: int = 0
    version: int = VERSION

    def header(self, length: int | None = None) -> bytes:
        """The 24 header bytes (``length`` defaults to the payload's)."""
        n = len(self.payload) if length is None else length
        return _HEADER.pack(MAGIC, self.version, int(self.type), self.flags, 0, self.epoch, self.seq, n)


def encode_frame(frame: Frame) -> bytes:
    """Serialise ``frame`` (validates the field ranges)."""
    if not 0 <= frame.epoch < 2 ** 32:
        raise FrameError(f"epoch must be in [0, 2^32), got {frame.epoch}")
    if not 0 <= frame.seq < 2 ** 64:
        raise FrameError(f"seq must be in [0, 2^64), got {frame.seq}")
    if len(frame.payload) > MAX_PAYLOAD:
        raise FrameError(f"payload length {len(frame.payload)} exceeds MAX_PAYLOAD={MAX_PAYLOAD}")
    if frame.flags & ~_KNOWN_FLAGS:
        raise FrameError(f"unknown flags 0x{frame.flags:02x}")
    return frame.header() + frame.payload


def decode_frame(data: bytes) -> Frame:
    """Parse one frame; raise :class:`FrameError` for any malformed input."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FrameError(f"frame must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < HEADER_SIZE:
        raise FrameError(f"header: {len(data)} bytes, need {HEADER_SIZE}")
    magic, version, ftype, flags, reserved, epoch, seq, length = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FrameError(f"magic: expected {MAGIC!r}, got {magic!r}")
    if version != VERSION:
        raise FrameError(f"version: expected {VERSION}, got {version}")
    try:
        ftype = FrameType(ftype)
    except ValueError:
        raise FrameError(f"type: unknown frame type {ftype}") from None
    if flags & ~_KNOWN_FLAGS:
        raise FrameError(f"flags: unknown bits 0x{flags:02x}")
    if reserved:
        raise FrameError(f"reserved: must be 0, got {reserved}")
    if length > MAX_PAYLOAD:
        raise FrameError(f"length: {length} exceeds MAX_PAYLOAD={MAX_PAYLOAD}")
    if len(data) != HEADER_SIZE + length:
        raise FrameError(f"length: header says {length} payload bytes, frame has {len(data) - HEADER_SIZE}")
    return Frame(ftype, epoch, seq, data[HEADER_SIZE:], flags, version)


def iq_bytes(iq: np.ndarray) -> bytes:
    """complex IQ ``[n]`` (any shape, flattened) as little-endian complex64 bytes (GNU Radio item layout)."""
    return np.ascontiguousarray(iq, dtype="<c8").reshape(-1).tobytes()


def iq_from_bytes(raw: bytes) -> np.ndarray:
    """Inverse of :func:`iq_bytes` (``[n]`` complex64)."""
    if len(raw) % 8:
        raise FrameError(f"iq: {len(raw)} bytes is not a whole number of complex64 samples (8 bytes each)")
    return np.frombuffer(raw, dtype="<c8").astype(np.complex64)


def side_bytes(side: dict[str, Any]) -> bytes:
    """The side info as canonical JSON bytes (at most 64 KiB)."""
    side_raw = json.dumps(side, separators=(",", ":"), sort_keys=True).encode()
    if len(side_raw) > _MAX_SIDE:
        raise FrameError(f"side info: {len(side_raw)} bytes exceeds {_MAX_SIDE}")
    return side_raw


def pack_data(side: dict[str, Any], iq: np.ndarray) -> bytes:
    """A DATA payload: side info (a JSON object) and an IQ block."""
    side_raw = side_bytes(side)
    return struct.pack(">I", len(side_raw)) + side_raw + iq_bytes(iq)


def split_symbols(payload: bytes) -> tuple[bytes, bytes]:
    """A FLAG_SYMBOLS payload ``u32 n | n bytes (AEAD of the side info) | IQ`` as (sealed part, IQ bytes)."""
    if len(payload) < 4:
        raise FrameError(f"sealed_len: payload of {len(payload)} bytes has no 4-byte length")
    (n,) = struct.unpack_from(">I", payload)
    if 4 + n > len(payload) or (len(payload) - 4 - n) % 8:
        raise FrameError(f"sealed_len: {n} sealed bytes leave no whole IQ block in a payload of {len(payload)}")
    return payload[4:4 + n], payload[4 + n:]


def unpack_data(payload: bytes) -> tuple[dict[str, Any], np.ndarray]:
    """Inverse of :func:`pack_data`; raises :class:`FrameError` on malformed payloads."""
    if len(payload) < 4:
        raise FrameError(f"side_len: payload of {len(payload)} bytes has no 4-byte side-info length")
    (n,) = struct.unpack_from(">I", payload)
    if n > _MAX_SIDE or 4 + n > len(payload):
        raise FrameError(f"side_len: {n} side-info bytes do not fit a payload of {len(payload)}")
    try:
        side = json.loads(payload[4:4 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FrameError(f"side info: not UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(side, dict):
        raise FrameError(f"side info: expected a JSON object, got {type(side).__name__}")
    iq = iq_from_bytes(payload[4 + n:])
    return side, iq
