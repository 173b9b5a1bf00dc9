"""The channel emulator: relays frames tx -> rx, injects faults, applies a registered channel and a
registered blind attack, relays (and probes through) the handshake, and taps what Eve receives.

Faults, each per frame with its own probability and one seeded generator: drop, bit-flip (1-8
random bits anywhere in the frame), duplicate (sent twice), reorder (held back and sent after the
next frame).  A registered semguard channel (``build("channel", name)``) at ``snr_db``, with an
optional attack on top (:mod:`semguard.runtime.iq_path`), acts on the IQ of clear DATA frames and of
``FLAG_SYMBOLS`` sealed frames (only their side info is under the AEAD; the IQ block is keyed-scrambled
symbols the channel can act on); a frame sealed whole (``FLAG_SEALED`` alone) cannot be perturbed below
its tag and is relayed as bytes (counted ``channel_skipped_sealed``).

The handshake relay (``hs_listen``, ROUTER, where rx connects; ``hs_forward``, DEALER, tx's handshake
endpoint) passes each request and reply through, and replaces each probe block by what the other end
receives through the reciprocal probe channel (:mod:`semguard.runtime.relay`); with ``mitm`` a man in
the middle takes its place (:mod:`semguard.runtime.mallory`).

With ``gnuradio_out`` / ``gnuradio_in`` the IQ of every radio-able DATA frame goes through a GNU Radio
flowgraph over ZeroMQ after the emulator's own channel and before the faults
(:mod:`semguard.runtime.gr_bridge`); frames sealed whole and non-DATA frames keep their place in the
order and are relayed as bytes.

The tap file is what Eve receives: every frame as relayed, every handshake message as a HANDSHAKE
frame and, with ``eve_distance``, her own observation of each of Alice's probe blocks
(``u32 length || frame``, big-endian).  Counters go to ``stats`` (JSON) every
second and on exit.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from semguard.runtime._net import StopFlag, check_endpoint, socket, write_json_atomic
from semguard.runtime.relay import tap_write
from semguard.runtime.frames import FLAG_SEALED, FLAG_SYMBOLS, Frame, FrameError, FrameType, decode_frame, \
    encode_frame, iq_bytes, iq_from_bytes, pack_data, split_symbols, unpack_data

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
    attack: str | None = None   #: a blind registered attack (gaussian, universal) radiated on the IQ
    psr_db: float | None = None
    attack_file: str | None = None
    hs_listen: str | None = None    #: handshake relay: rx's --handshake connects here (ROUTER, bound)
    hs_forward: str | None = None   #: tx's --handshake endpoint (DEALER connects)
    probe_doppler_hz: float = 100.0
    probe_snr_db: float = 30.0
    probe_turnaround_s: float = 1e-4
    probe_seed: int | None = None   #: None: fresh OS entropy (a physical channel does not replay)
    eve_distance: float | None = None  #: with a tap: Eve this many wavelengths from Bob overhears the probes
    eve_snr_db: float | None = None    #: Eve's probing SNR (None: the probe SNR)
    mitm: bool = False                 #: Mallory in the handshake relay (runtime.mallory)
    mitm_identity: Any = field(default=None, repr=False)  #: her Ed25519 private key (None: no identity)
    mitm_claim_tx: bytes | None = None  #: the identity she announces to Bob (Alice's public key)
    mitm_claim_rx: bytes | None = None  #: the identity she announces to Alice (Bob's public key)
    mitm_forge: bool = False           #: negate every IQ block she relays
    mitm_tap: str | None = None        #: what she read: clear DATA frames
    tap: str | None = None
    stats: str | None = None
    hwm: int = 256
    send_timeout_s: float = 1.0
    max_runtime_s: float = 600.0
    gnuradio_out: str | None = None  #: bridge: IQ out to a GNU Radio zeromq.pull_source (PUSH, bound)
    gnuradio_in: str | None = None   #: bridge: the flowgraph's zeromq.push_sink (PULL connects)
    gnuradio_timeout_s: float = 2.0  #: frames owed samples for this long without any arriving are lost
    gnuradio_max_pending: int = 256  #: frames in the flowgraph at once (more are dropped, counted)

    def __post_init__(self) -> None:
        check_endpoint(self.listen, "listen")
        check_endpoint(self.forward, "forward")
        if (self.hs_listen is None) != (self.hs_forward is None):
            raise ValueError("hs_listen and hs_forward: give both (the handshake relay) or neither")
        for name in ("hs_listen", "hs_forward"):
            if getattr(self, name) is not None:
                check_endpoint(getattr(self, name), name)
        for name in ("drop", "duplicate", "reorder", "bitflip"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
        if self.attack is not None and self.channel is None:
            raise ValueError("attack: the emulator radiates an attack on top of a channel; give --channel too")
        if (self.gnuradio_out is None) != (self.gnuradio_in is None):
            raise ValueError("gnuradio_out and gnuradio_in: give both (the GNU Radio bridge) or neither")
        for name in ("gnuradio_out", "gnuradio_in"):
            if getattr(self, name) is not None:
                check_endpoint(getattr(self, name), name)
        if self.gnuradio_timeout_s <= 0 or self.gnuradio_max_pending < 1:
            raise ValueError("gnuradio_timeout_s must be > 0 and gnuradio_max_pending >= 1")
        if self.mitm and self.hs_listen is None:
            raise ValueError("mitm: Mallory sits in the handshake relay; give --hs-listen and --hs-forward")
        if self.eve_distance is not None and not (0 <= self.eve_distance < 1e3):
            raise ValueError(f"eve_distance must be in [0, 1000) wavelengths, got {self.eve_distance}")
        if self.max_runtime_s <= 0:
            raise ValueError(f"max_runtime_s must be > 0, got {self.max_runtime_s}")


class _OnIq:
    """Apply the IQ path to the IQ of clear and FLAG_SYMBOLS DATA frames."""

    def __init__(self, cfg: EmulatorConfig, stats: Counter) -> None:
        from semguard.runtime.iq_path import IqPath
        assert cfg.channel is not None
        self.path = IqPath(cfg.channel, cfg.snr_db, cfg.seed, attack=cfg.attack, psr_db=cfg.psr_db,
                           attack_file=cfg.attack_file)
        self.stats = stats

    def __call__(self, raw: bytes) -> bytes:
        frame = decode_frame(raw)
        if frame.type != FrameType.DATA:
            return raw
        if frame.flags & FLAG_SEALED and not frame.flags & FLAG_SYMBOLS:
            self.stats["channel_skipped_sealed"] += 1
            return raw
        if frame.flags & FLAG_SYMBOLS:
            sealed, tail = split_symbols(frame.payload)
            y = self.path(iq_from_bytes(tail))
            payload = frame.payload[: 4 + len(sealed)] + iq_bytes(y)
        else:
            side, iq = unpack_data(frame.payload)
            payload = pack_data({**side, **self.path.describe()}, self.path(iq))
        self.stats["channel_applied"] += 1
        return encode_frame(Frame(frame.type, frame.epoch, frame.seq, payload, frame.flags))


def run_emulator(cfg: EmulatorConfig, stop: StopFlag | None = None) -> dict[str, Any]:
    """Relay until stopped (SIGTERM) or ``max_runtime_s``; return the counters."""
    stop = stop if stop is not None else StopFlag()
    rng = np.random.default_rng(cfg.seed)
    stats: Counter = Counter()
    chan = _OnIq(cfg, stats) if cfg.channel else None
    ctx = zmq.Context()
    pull = socket(ctx, zmq.PULL, hwm=cfg.hwm)
    push = socket(ctx, zmq.PUSH, hwm=cfg.hwm)
    tap = open(cfg.tap, "ab") if cfg.tap else None
    relay: Any = None
    bridge = None
    held: bytes | None = None

    def report() -> dict[str, Any]:
        out: dict[str, Any] = dict(stats)
        if chan is not None and chan.path.psr_measured:
            m = chan.path.psr_measured
            out.update(psr_db_measured_mean=float(np.mean(m)), psr_db_measured_min=float(np.min(m)),
                       psr_db_measured_max=float(np.max(m)))
        return out

    try:
        pull.bind(cfg.listen)
        push.bind(cfg.forward)
        poller = zmq.Poller()
        poller.register(pull, zmq.POLLIN)
        if cfg.hs_listen:
            if cfg.mitm:
                from semguard.runtime.mallory import Mallory
                relay = Mallory(ctx, cfg, stats, tap)
            else:
                from semguard.runtime.relay import HandshakeRelay
                relay = HandshakeRelay(ctx, cfg, stats, tap)
            poller.register(relay.front, zmq.POLLIN)
            poller.register(relay.back, zmq.POLLIN)
        if cfg.gnuradio_out:
            from semguard.runtime.gr_bridge import GnuRadioBridge
            bridge = GnuRadioBridge(ctx, cfg.gnuradio_out, cfg.gnuradio_in, stats, max_pending=cfg.gnuradio_max_pending,
                                    timeout_s=cfg.gnuradio_timeout_s, hwm=cfg.hwm, send_timeout_s=cfg.send_timeout_s)
            poller.register(bridge.pull, zmq.POLLIN)
        t_end = time.monotonic() + cfg.max_runtime_s
        last_stats = time.monotonic()
        if cfg.stats:  # its first appearance says the emulator is bound and ready
            write_json_atomic(cfg.stats, report())

        def send(raw: bytes) -> None:
            if push.poll(int(cfg.send_timeout_s * 1000), zmq.POLLOUT):
                push.send(raw, zmq.NOBLOCK)
                stats["forwarded"] += 1
                tap_write(tap, raw)
            else:  # rx absent or slow: bounded queue full, the frame is lost (counted)
                stats["overflow"] += 1

        def faults(raw: bytes, held: bytes | None) -> bytes | None:
            """Drop / bit-flip / duplicate / reorder one frame on its way to rx; return the held frame."""
            if rng.random() < cfg.drop:
                stats["dropped"] += 1
                return held
            if rng.random() < cfg.bitflip:
                b = bytearray(raw)
                for bit in rng.integers(0, 8 * len(b), size=int(rng.integers(1, 9))):
                    b[bit // 8] ^= 1 << int(bit % 8)
                raw = bytes(b)
                stats["bitflipped"] += 1
            copies = 2 if rng.random() < cfg.duplicate else 1
            stats["duplicated"] += copies - 1
            if held is None and rng.random() < cfg.reorder:
                stats["reordered"] += 1
                return raw
            for _ in range(copies):
                send(raw)
            if held is not None:
                send(held)
            return None

        def through(raw: bytes, held: bytes | None) -> bytes | None:
            """The channel, the radio and the faults, on one frame from tx."""
            if chan is not None:
                try:
                    raw = chan(raw)
                except FrameError:
                    stats["channel_skipped_malformed"] += 1
            for out in (bridge.send(raw) if bridge is not None else [raw]):
                held = faults(out, held)
            return held

        while not stop and time.monotonic() < t_end:
            if time.monotonic() - last_stats > 1.0 and cfg.stats:
                write_json_atomic(cfg.stats, report())
                last_stats = time.monotonic()
            if bridge is not None:  # back-pressure: no new frame from tx while the flowgraph's FIFO is full
                poller.modify(pull, 0 if bridge.full() else zmq.POLLIN)
            events = dict(poller.poll(100))
            if relay is not None:
                if relay.front in events:
                    relay.to_tx()
                if relay.back in events:
                    relay.to_rx()
                for raw in relay.drain():  # frames a man in the middle held until she had both keys
                    held = through(raw, held)
            if bridge is not None:
                for out in bridge.poll_in():
                    held = faults(out, held)
            if pull not in events:
                if not events and held is not None:
                    send(held)
                    held = None
                continue
            raw = pull.recv()
            stats["received"] += 1
            for out in (relay.on_frame(raw) if relay is not None else [raw]):
                held = through(out, held)
    finally:
        if tap is not None:
            tap.close()
        if relay is not None:
            relay.close()
        if bridge is not None:
            bridge.close()
        pull.close()
        push.close()
        ctx.term()
        if cfg.stats:
            write_json_atomic(cfg.stats, report())
    return report()


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
