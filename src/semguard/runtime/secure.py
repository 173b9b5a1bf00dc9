"""AEAD-sealed frames: AES-256-GCM, nonce = epoch || seq, the header as associated data.

The key of epoch ``e`` is ``KeySchedule(master, salt=SALT).key(e, "frames")`` of
:mod:`semguard.keys.kdf` (HKDF-SHA256 of ``"frames|epoch=e"``), computed by :func:`epoch_key`; that
module loads no torch, so the processes start in well under a second.  Because the nonce is the
frame's own (epoch, seq), a sender never reuses a nonce under one key as long as it never reuses a
sequence number, and the receiver needs no extra field.  :class:`ReplayWindow` is the anti-replay window of IPsec (RFC 4303, section 3.4.3):
a frame is accepted once; one older than ``window`` below the highest accepted sequence number is
rejected as too old (``window=1``: strict order).  :class:`Opener` counts each rejection by cause.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from semguard.keys.kdf import KeySchedule
from semguard.runtime.frames import FLAG_SEALED, FLAG_SYMBOLS, Frame, FrameError, split_symbols

__all__ = ["epoch_key", "SALT", "frame_nonce", "Sealer", "Opener", "ReplayWindow", "Rejected", "TAG_SIZE"]

TAG_SIZE = 16
SALT = b"semguard-runtime"


def epoch_key(master: bytes, epoch: int, purpose: str = "frames") -> bytes:
    """The 256-bit AEAD key of ``epoch``: ``HKDF-SHA256(master, salt=SALT, info=purpose|epoch=e)``,
    i.e. ``KeySchedule(master, salt=SALT).key(epoch, purpose)`` of :mod:`semguard.keys.kdf`."""
    return KeySchedule(master, salt=SALT).key(epoch, purpose)


def frame_nonce(epoch: int, seq: int) -> bytes:
    """The 12-byte GCM nonce of frame (epoch, seq): u32 epoch || u64 seq, big-endian."""
    if not (0 <= epoch < 2 ** 32 and 0 <= seq < 2 ** 64):
        raise ValueError(f"epoch/seq out of range: epoch={epoch}, seq={seq}")
    return epoch.to_bytes(4, "big") + seq.to_bytes(8, "big")


class Rejected(ValueError):
    """A frame the receiver refused; ``reason`` is one of forged, replay, too_old, stale_epoch, malformed."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class _Keys:
    def __init__(self, master: bytes) -> None:
        epoch_key(master, 0)  # validates the master
        self._master = master
        self._cache: dict[int, AESGCM] = {}

    def __repr__(self) -> str:  # never show key material
        return "_Keys(<secret>)"

    def aead(self, epoch: int) -> AESGCM:
        if epoch not in self._cache:
            self._cache = {epoch: AESGCM(epoch_key(self._master, epoch))}  # keep one epoch
        return self._cache[epoch]


class Sealer:
    """Seal clear frames of one sender (``master``: the agreed session master key, >= 16 bytes)."""

    def __init__(self, master: bytes) -> None:
        self._keys = _Keys(master)
        self.master = master  # for the symbol scrambler's key schedule; never logged (no repr)

    def __repr__(self) -> str:
        return "Sealer(<secret>)"

    def seal(self, frame: Frame) -> Frame:
        sealed_len = len(frame.payload) + TAG_SIZE
        out = Frame(frame.type, frame.epoch, frame.seq, b"", frame.flags | FLAG_SEALED)
        aad = out.header(sealed_len)
        ct = self._keys.aead(frame.epoch).encrypt(frame_nonce(frame.epoch, frame.seq), frame.payload, aad)
        return Frame(frame.type, frame.epoch, frame.seq, ct, frame.flags | FLAG_SEALED)

    def seal_symbols(self, frame: Frame, iq_raw: bytes) -> Frame:
        """Seal ``frame.payload`` (the side info) and append the IQ bytes outside the AEAD
        (``FLAG_SYMBOLS``): the header, with the whole length, is the associated data."""
        flags = frame.flags | FLAG_SEALED | FLAG_SYMBOLS
        total = 4 + len(frame.payload) + TAG_SIZE + len(iq_raw)
        aad = Frame(frame.type, frame.epoch, frame.seq, b"", flags).header(total)
        ct = self._keys.aead(frame.epoch).encrypt(frame_nonce(frame.epoch, frame.seq), frame.payload, aad)
        return Frame(frame.type, frame.epoch, frame.seq, struct.pack(">I", len(ct)) + ct + iq_raw, flags)


@dataclass
class ReplayWindow:
    """Sliding anti-replay window over sequence numbers of one epoch."""

    window: int = 64
    highest: int = -1
    bitmap: int = 0  # bit i: highest - i accepted

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")

    def check(self, seq: int) -> None:
        """Raise :class:`Rejected` unless ``seq`` is new and within the window (does not record it)."""
        if seq > self.highest:
            return
        off = self.highest - seq
        if off >= self.window:
            raise Rejected("too_old", f"seq {seq} is {off} below the highest {self.highest} (window {self.window})")
        if self.bitmap >> off & 1:
            raise Rejected("replay", f"seq {seq} already accepted")

    def accept(self, seq: int) -> None:
        self.check(seq)
        if seq > self.highest:
            shift = seq - self.highest
            self.bitmap = ((self.bitmap << shift) | 1) & ((1 << self.window) - 1)
            self.highest = seq
        else:
            self.bitmap |= 1 << (self.highest - seq)

    def to_dict(self) -> dict[str, int]:
        return {"window": self.window, "highest": self.highest, "bitmap": self.bitmap}


@dataclass
class Opener:
    """Open sealed frames: authenticate, then accept each (epoch, seq) at most once.

    ``epoch`` only moves forward: a frame of an older epoch is rejected (``stale_epoch``).  Counters:
    ``accepted`` and ``rejected[reason]``.  ``require_sealed=False`` also admits clear frames
    (security off; they still pass the replay window).
    """

    master: bytes | None = field(repr=False, default=None)
    window: int = 64
    require_sealed: bool = True
    epoch: int = 0
    replay: ReplayWindow = field(init=False)
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if self.require_sealed and self.master is None:
            raise ValueError("an Opener that requires sealed frames needs the master key")
        self._keys = _Keys(self.master) if self.master is not None else None
        self.replay = ReplayWindow(self.window)

    def __repr__(self) -> str:
        return f"Opener(epoch={self.epoch}, accepted={self.accepted}, rejected={dict(self.rejected)})"

    def _reject(self, reason: str, detail: str) -> Rejected:
        self.rejected[reason] += 1
        return Rejected(reason, detail)

    def open(self, frame: Frame) -> bytes:
        """The clear payload of ``frame``, or raise :class:`Rejected` (counted)."""
        if frame.epoch < self.epoch:
            raise self._reject("stale_epoch", f"epoch {frame.epoch} < current {self.epoch}")
        sealed = bool(frame.flags & FLAG_SEALED)
        if frame.flags & FLAG_SYMBOLS and not sealed:
            raise self._reject("malformed", "FLAG_SYMBOLS without FLAG_SEALED")
        if not sealed and self.require_sealed:
            raise self._reject("forged", "clear frame where a sealed one is required")
        if frame.epoch == self.epoch:
            try:
                self.replay.check(frame.seq)
            except Rejected as r:
                self.rejected[r.reason] += 1
                raise
        if sealed:
            if self._keys is None:
                raise self._reject("forged", "sealed frame but no key")
            try:
                sealed_part, tail = split_symbols(frame.payload) if frame.flags & FLAG_SYMBOLS else (frame.payload, b"")
                clear = self._keys.aead(frame.epoch).decrypt(
                    frame_nonce(frame.epoch, frame.seq), sealed_part, frame.header())
                if frame.flags & FLAG_SYMBOLS:  # the clear DATA layout: u32 side_len | side | IQ
                    clear = struct.pack(">I", len(clear)) + clear + tail
            except (InvalidTag, ValueError, FrameError):
                raise self._reject("forged", f"AEAD tag of epoch {frame.epoch} seq {frame.seq} does not verify") from None
        else:
            clear = frame.payload
        if frame.epoch > self.epoch:  # authenticated frame of a newer epoch: re-key
            self.epoch = frame.epoch
            self.replay = ReplayWindow(self.window)
        self.replay.accept(frame.seq)
        self.accepted += 1
        return clear

    def state(self) -> dict[str, Any]:
        """What a restarted receiver must resume from (no key material)."""
        return {"epoch": self.epoch, **self.replay.to_dict()}

    def restore(self, state: dict[str, Any]) -> None:
        try:
            self.epoch = int(state["epoch"])
            self.replay = ReplayWindow(int(state["window"]), int(state["highest"]), int(state["bitmap"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"receiver state: expected epoch/window/highest/bitmap ({exc})") from None
