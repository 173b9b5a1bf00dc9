"""The channel emulator: relays frames tx -> rx, injects faults, applies a registered channel, and
taps what Eve receives.

Faults, each per frame with its own probability and one seeded generator: drop, bit-flip (1-8
random bits anywhere in the frame), duplicate (sent twice), reorder (held back and sent after the
next frame).  A registered semguard channel (``build("channel", name)``) is applied to the IQ of
clear DATA frames at ``snr_db`` (the block is equalised with the channel's own CSI; the side info
names the channel and SNR); sealed frames cannot be perturbed
meaningfully below the AEAD and are relayed as bytes.  The tap file is what Eve receives: every
frame as relayed, ``u32 length || frame`` (big-endian).  Counters go to ``stats`` (JSON) every
second and on exit.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zmq

from semguard.runtime._net import StopFlag, check_endpoint, socket, write_json_atomic
from semguard.runtime.frames import FLAG_SEALED, Frame, FrameError, FrameType, decode_frame, encode_frame, \
    pack_data, unpack_data

__all__ = ["EmulatorConfig", "run_emulator", "read_tap"]

log = logging.getLogger(__name__)


@dataclass
class EmulatorConfig:
    listen: str                 #: tcp://127.0.0.1:PORT, tx connects here (PULL, bound)
    forward: str                #: tcp://127.0.0.1:PORT, rx connects here (PUSH, bound)
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    bitflip: float = 0.0
    seed: int = 0
    channel: str | None = None
    snr_db: float = 20.0
    tap: str | None = None
    stats: str | None = None
    hwm: int = 256
    send_timeout_s: float = 1.0
    max_runtime_s: float = 600.0

    def __post_init__(self) -> None:
        check_endpoint(self.listen, "listen")
        check_endpoint(self.forward, "forward")
        for name in ("drop", "duplicate", "reorder", "bitflip"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
        if self.max_runtime_s <= 0:
            raise ValueError(f"max_runtime_s must be > 0, got {self.max_runtime_s}")


class _ChannelOnIq:
    def __init__(self, name: str, snr_db: float, seed: int) -> None:
        import torch

        from semguard.registry import build
        self.torch = torch
        self.channel = build("channel", name)
        self.snr_db = snr_db
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, raw: bytes) -> bytes:
        frame = decode_frame(raw)
        if frame.type != FrameType.DATA or frame.flags & FLAG_SEALED:
            return raw
        side, iq = unpack_data(frame.payload)
        torch = self.torch
        x = torch.from_numpy(iq.copy()).reshape(1, -1)
        with torch.no_grad():
            y, _ = self.channel(x, self.snr_db, generator=self.gen)  # equalised with its own CSI
        side = {**side, "channel": self.channel.__class__.__name__, "snr_db": self.snr_db}
        return encode_frame(Frame(frame.type, frame.epoch, frame.seq, pack_data(side, y.numpy().reshape(-1)),
                                  frame.flags))


def run_emulator(cfg: EmulatorConfig, stop: StopFlag | None = None) -> dict[str, int]:
    """Relay until stopped (SIGTERM) or ``max_runtime_s``; return the counters."""
    stop = stop if stop is not None else StopFlag()
    rng = np.random.default_rng(cfg.seed)
    chan = _ChannelOnIq(cfg.channel, cfg.snr_db, cfg.seed) if cfg.channel else None
    stats: Counter = Counter()
    ctx = zmq.Context()
    pull = socket(ctx, zmq.PULL, hwm=cfg.hwm)
    push = socket(ctx, zmq.PUSH, hwm=cfg.hwm)
    tap = open(cfg.tap, "ab") if cfg.tap else None
    held: bytes | None = None
    try:
        pull.bind(cfg.listen)
        push.bind(cfg.forward)
        t_end = time.monotonic() + cfg.max_runtime_s
        last_stats = time.monotonic()
        if cfg.stats:  # its first appearance says the emulator is bound and ready
            write_json_atomic(cfg.stats, dict(stats))

        def send(raw: bytes) -> None:
            if push.poll(int(cfg.send_timeout_s * 1000), zmq.POLLOUT):
                push.send(raw, zmq.NOBLOCK)
                stats["forwarded"] += 1
                if tap is not None:
                    tap.write(struct.pack(">I", len(raw)) + raw)
            else:  # rx absent or slow: bounded queue full, the frame is lost (counted)
                stats["overflow"] += 1

        while not stop and time.monotonic() < t_end:
            if time.monotonic() - last_stats > 1.0 and cfg.stats:
                write_json_atomic(cfg.stats, dict(stats))
                last_stats = time.monotonic()
            if not pull.poll(100):
                if held is not None:
                    send(held)
                    held = None
                continue
            raw = pull.recv()
            stats["received"] += 1
            if chan is not None:
                try:
                    raw = chan(raw)
                    stats["channel_applied"] += 1
                except FrameError:
                    stats["channel_skipped_malformed"] += 1
            if rng.random() < cfg.drop:
                stats["dropped"] += 1
                continue
            if rng.random() < cfg.bitflip:
                b = bytearray(raw)
                for bit in rng.integers(0, 8 * len(b), size=int(rng.integers(1, 9))):
                    b[bit // 8] ^= 1 << int(bit % 8)
                raw = bytes(b)
                stats["bitflipped"] += 1
            copies = 2 if rng.random() < cfg.duplicate else 1
            stats["duplicated"] += copies - 1
            if held is None and rng.random() < cfg.reorder:
                held = raw
                stats["reordered"] += 1
                continue
            for _ in range(copies):
                send(raw)
            if held is not None:
                send(held)
                held = None
    finally:
        if tap is not None:
            tap.close()
        pull.close()
        push.close()
        ctx.term()
        if cfg.stats:
            write_json_atomic(cfg.stats, dict(stats))
    return dict(stats)


def read_tap(path: str | Path) -> list[bytes]:
    """The frames Eve received (a truncated last record is ignored)."""
    data = Path(path).read_bytes()
    out, i = [], 0
    while i + 4 <= len(data):
        (n,) = struct.unpack_from(">I", data, i)
        if i + 4 + n > len(data):
            break
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    return out
