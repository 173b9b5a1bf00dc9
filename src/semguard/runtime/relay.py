"""The emulator's handshake relay: ROUTER (rx side, where rx's ``--handshake`` connects) <-> DEALER (tx's
handshake endpoint).  Each request and reply passes through; each probe block is replaced by what the
other end receives through the reciprocal probe channel (:mod:`semguard.runtime.probe_channel`).

Every message goes to the tap as a HANDSHAKE frame (what Eve hears of the public discussion); with an
Eve at ``eve_distance`` wavelengths from Bob, what she overheard of each of Alice's probe blocks follows
as one more HANDSHAKE frame ``{"m": "eve_probe", "round", "probe": {"iq"}, "distance_wavelengths"}``
(:mod:`semguard.runtime.plkg_eve` reads both back).
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from typing import IO, Any

import zmq

from semguard.runtime._net import socket
from semguard.runtime.frames import Frame, FrameType, encode_frame

__all__ = ["EVE_PROBE", "HandshakeRelay", "RelayEnds", "tap_write"]

#: the message type of Eve's own probe observations in the tap
EVE_PROBE = "eve_probe"


def tap_write(tap: IO[bytes] | None, raw: bytes) -> None:
    """Append one frame to a tap file (``u32 length || frame``, big-endian)."""
    if tap is not None:
        tap.write(struct.pack(">I", len(raw)) + raw)


class RelayEnds:
    """What every handshake path in the emulator holds: the ROUTER towards rx, the DEALER towards tx,
    and the tap that records each message as a HANDSHAKE frame."""

    def __init__(self, ctx: zmq.Context, cfg: Any, stats: Counter, tap: IO[bytes] | None) -> None:
        self.front = socket(ctx, zmq.ROUTER)
        self.back = socket(ctx, zmq.DEALER)
        self.front.bind(cfg.hs_listen)
        self.back.connect(cfg.hs_forward)
        self.stats, self.tap, self.n = stats, tap, 0

    def record(self, body: bytes) -> None:
        tap_write(self.tap, encode_frame(Frame(FrameType.HANDSHAKE, 0, self.n, body[: 8 * 1024 * 1024])))
        self.n += 1

    def close(self) -> None:
        self.front.close()
        self.back.close()


class HandshakeRelay(RelayEnds):
    """Relay the handshake between the two ends, probing through the emulator's channel."""

    def __init__(self, ctx: zmq.Context, cfg: Any, stats: Counter, tap: IO[bytes] | None) -> None:
        from semguard.runtime.probe_channel import ProbeChannel
        super().__init__(ctx, cfg, stats, tap)
        self.eve_distance = cfg.eve_distance if tap is not None else None
        self.probes = ProbeChannel(doppler_hz=cfg.probe_doppler_hz, snr_db=cfg.probe_snr_db,
                                   turnaround_s=cfg.probe_turnaround_s, seed=cfg.probe_seed,
                                   eve_distance=self.eve_distance, eve_snr_db=cfg.eve_snr_db)

    def _rewrite(self, body: bytes, to: str) -> bytes:
        from semguard.runtime.wire import WireError, iq_out
        try:
            msg = json.loads(body)
            if isinstance(msg, dict) and isinstance(msg.get("probe"), dict):
                body = json.dumps(self.probes.through(msg, to)).encode()
                self.stats["probe_blocks"] += 1
        except (ValueError, TypeError, WireError, AttributeError):
            self.stats["handshake_unparsed"] += 1   # relayed as is; the ends refuse it
        self.record(body)
        while self.probes.overheard:
            rid, y = self.probes.overheard.popleft()
            self.record(json.dumps({"m": EVE_PROBE, "round": rid, "probe": {"iq": iq_out(y)},
                                    "distance_wavelengths": self.eve_distance}).encode())
            self.stats["eve_probe_blocks"] += 1
        return body

    def to_tx(self) -> None:
        parts = self.front.recv_multipart()
        self.stats["handshake_requests"] += 1
        self.back.send_multipart([*parts[:-1], self._rewrite(parts[-1], "tx")])

    def to_rx(self) -> None:
        parts = self.back.recv_multipart()
        self.front.send_multipart([*parts[:-1], self._rewrite(parts[-1], "rx")])

    def on_frame(self, raw: bytes) -> list[bytes]:
        """The data path: a plain relay passes every frame on."""
        return [raw]

    def drain(self) -> list[bytes]:
        """Frames held back for later (a plain relay holds none)."""
        return []
