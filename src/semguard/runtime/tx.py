"""The transmitter process: source blocks -> (codec symbols) -> sealed frames -> ZeroMQ PUSH.

Sources: ``raw`` (seeded complex Gaussian IQ blocks of ``n_symbols``, unit mean power) or a
pre-encoded block list given by the caller (see :mod:`semguard.runtime.codec_io`).  With
``handshake`` set, the transmitter answers the receiver's handshake (REP, bound) and seals every
frame under the agreed master; each completed handshake (a receiver that restarted) moves to a
new epoch at seq 0, as does every ``epoch_frames`` frames (re-keying by epoch).  Send
back-pressure: a full queue, or no emulator connected, blocks up to ``send_timeout_s``, then the frame is counted
``send_timeout`` and not retried.  The sent log (JSONL, one line per frame: i, epoch, seq, digest
of the clear payload) is how tests check exactly-once delivery; it holds no key material.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from semguard.runtime._net import StopFlag, check_endpoint, socket, write_json_atomic
from semguard.runtime.frames import Frame, FrameType, encode_frame, iq_bytes, pack_data, side_bytes
from semguard.runtime.handshake import HandshakeError, KbView
from semguard.runtime.keysource import responder
from semguard.runtime.scramble import SymbolScrambler
from semguard.runtime.secure import Sealer

__all__ = ["TxConfig", "run_tx", "raw_blocks"]

log = logging.getLogger(__name__)


@dataclass
class TxConfig:
    connect: str                          #: the emulator's listen endpoint (or rx's directly)
    frames: int = 100
    n_symbols: int = 256
    rate: float = 0.0                     #: frames per second, 0 = as fast as back-pressure allows
    handshake: str | None = None          #: REP endpoint to bind; None = clear frames (security off)
    kb: KbView = field(default_factory=lambda: KbView("none", 0, ""))
    identity: Ed25519PrivateKey | None = field(default=None, repr=False)
    peer_public: bytes | None = None
    key_source: str = "plkg"              #: "plkg" (probes through the emulator) or "x25519"
    plkg: Any = None                      #: a PlkgConfig (None: its defaults)
    seal: str = "bytes"                   #: "bytes" (AEAD over side info and IQ) or "symbols" (see secure)
    epoch_frames: int = 0                 #: re-key every this many frames (0 = only on handshake)
    handshake_timeout_s: float = 120.0
    send_timeout_s: float = 2.0
    seed: int = 0
    sent_log: str | None = None
    stats: str | None = None
    hwm: int = 256
    #: benchmarks only: which frames (by index) to seal once a key exists; the others go clear, so sealed and
    #: clear frames can be timed interleaved on one link (None: seal every frame)
    seal_only: Callable[[int], bool] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_endpoint(self.connect, "connect")
        if self.handshake is not None:
            check_endpoint(self.handshake, "handshake")
        if self.frames < 1 or self.n_symbols < 1:
            raise ValueError(f"frames and n_symbols must be >= 1, got {self.frames}, {self.n_symbols}")
        if self.seal not in ("bytes", "symbols"):
            raise ValueError(f"seal must be 'bytes' or 'symbols', got {self.seal!r}")
        if self.rate < 0 or self.epoch_frames < 0:
            raise ValueError(f"rate and epoch_frames must be >= 0, got {self.rate}, {self.epoch_frames}")


def raw_blocks(n: int, n_symbols: int, seed: int) -> Iterator[tuple[dict, np.ndarray]]:
    """``n`` seeded CN(0, 1) blocks of ``n_symbols`` with side info ``{"i", "shape"}``."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        z = (rng.standard_normal(n_symbols) + 1j * rng.standard_normal(n_symbols)) / np.sqrt(2)
        yield {"i": i, "shape": [n_symbols]}, z.astype(np.complex64)


class _Responder:
    """The tx side of the handshake on a REP socket (one pending exchange at a time; a new hello
    starts over)."""

    def __init__(self, sock: zmq.Socket, cfg: TxConfig) -> None:
        self.sock, self.cfg = sock, cfg
        self.pending = None
        self.last_info: dict = {}

    def _reply(self, obj: dict) -> None:
        self.sock.send(json.dumps(obj).encode())

    def step(self, timeout_ms: int) -> bytes | None:
        """Serve one request if any arrives; return a new master when a handshake completes."""
        if not self.sock.poll(timeout_ms):
            return None
        try:
            msg = json.loads(self.sock.recv())
            if not isinstance(msg, dict) or not isinstance(msg.get("m"), str):
                raise ValueError("not a message")
        except ValueError:
            self._reply({"m": "error", "e": "malformed"})
            return None
        cfg = self.cfg
        try:
            if msg["m"] == "hello":
                self.pending = responder(cfg.key_source, cfg.kb, msg, identity=cfg.identity,
                                         peer_public=cfg.peer_public, plkg=cfg.plkg)
            if self.pending is None:
                raise HandshakeError(f"unexpected message {msg['m']!r} before a hello")
            self._reply(self.pending.handle(msg))
        except (HandshakeError, ValueError, KeyError, TypeError) as exc:
            log.warning("handshake refused: %s", exc)
            self.pending = None
            self._reply({"m": "error", "e": str(exc)})
            return None
        master = self.pending.master
        if master is not None:
            self.last_info, self.pending = dict(self.pending.info), None
        return master


def run_tx(cfg: TxConfig, blocks: Iterator[tuple[dict, np.ndarray]] | None = None,
           stop: StopFlag | None = None) -> dict[str, int]:
    """Send ``cfg.frames`` blocks (``blocks`` or :func:`raw_blocks`), then an END control frame."""
    stop = stop if stop is not None else StopFlag()
    blocks = blocks if blocks is not None else raw_blocks(cfg.frames, cfg.n_symbols, cfg.seed)
    stats = {"sent": 0, "send_timeout": 0, "handshakes": 0, "epochs": 0}
    ctx = zmq.Context()
    push = socket(ctx, zmq.PUSH, hwm=cfg.hwm)
    push.setsockopt(zmq.IMMEDIATE, 1)  # queue only towards a live peer: no peer = back-pressure
    rep = socket(ctx, zmq.REP) if cfg.handshake else None
    log_f = open(cfg.sent_log, "a") if cfg.sent_log else None
    sealer: Sealer | None = None
    epoch, seq = 0, 0
    try:
        push.connect(cfg.connect)
        responder = None
        if rep is not None:
            rep.bind(cfg.handshake)
            responder = _Responder(rep, cfg)
            deadline = time.monotonic() + cfg.handshake_timeout_s
            while sealer is None and not stop:
                if time.monotonic() > deadline:
                    raise HandshakeError(f"no receiver completed the handshake within {cfg.handshake_timeout_s} s")
                master = responder.step(100)
                if master is not None:
                    sealer = Sealer(master)
                    stats["handshakes"] += 1
                    stats["key"] = responder.last_info
        if rep is not None and sealer is None:  # stopped before any key: a secured sender sends nothing clear
            return stats
        period = 1.0 / cfg.rate if cfg.rate else 0.0
        scrambler: list = []
        t_next = time.monotonic()

        def emit(ftype: FrameType, payload: bytes, side: dict | None = None, iq: np.ndarray | None = None,
                 seal: bool = True) -> bool:
            if not seal:
                frame = Frame(ftype, epoch, seq, payload)
            elif sealer is not None and iq is not None and cfg.seal == "symbols":
                if not scrambler or scrambler[0] is not sealer:
                    scrambler[:] = [sealer, SymbolScrambler(sealer.master)]
                raw = iq_bytes(scrambler[1].encrypt(iq, epoch, seq))
                frame = sealer.seal_symbols(Frame(ftype, epoch, seq, side_bytes(side or {})), raw)
            else:
                frame = Frame(ftype, epoch, seq, payload)
                if sealer is not None:
                    frame = sealer.seal(frame)
            if push.poll(int(cfg.send_timeout_s * 1000), zmq.POLLOUT):
                push.send(encode_frame(frame), zmq.NOBLOCK)
                return True
            stats["send_timeout"] += 1
            return False

        for n, (side, iq) in enumerate(blocks):
            if stop or n >= cfg.frames:
                break
            if responder is not None:  # a restarted receiver may ask for a new key at any time
                master = responder.step(0)
                if master is not None:
                    sealer, epoch, seq = Sealer(master), epoch + 1, 0
                    stats["handshakes"] += 1
                    stats["key"] = responder.last_info
                    stats["epochs"] += 1
            if cfg.epoch_frames and n and n % cfg.epoch_frames == 0:
                epoch, seq = epoch + 1, 0
                stats["epochs"] += 1
            if period:
                time.sleep(max(0.0, t_next - time.monotonic()))
                t_next += period
            side = {**side, "t_ns": time.time_ns()}
            seal = cfg.seal_only is None or cfg.seal_only(n)
            if emit(FrameType.DATA, pack_data(side, iq), side, iq, seal):
                stats["sent"] += 1
                if log_f is not None:
                    digest = hashlib.sha256(iq.tobytes()).hexdigest()[:32]
                    log_f.write(json.dumps({"i": side.get("i", n), "epoch": epoch, "seq": seq, "digest": digest}) + "\n")
            seq += 1
        emit(FrameType.CONTROL, json.dumps({"end": True, "sent": stats["sent"]}).encode())
    finally:
        if log_f is not None:
            log_f.close()
        push.close()
        if rep is not None:
            rep.close()
        ctx.term()
        if cfg.stats:
            write_json_atomic(cfg.stats, stats)
    return stats
