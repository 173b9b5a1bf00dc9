"""The receiver process: ZeroMQ PULL -> parse -> open (AEAD, replay window) -> deliver once.

Every delivered frame is one line appended (and flushed) to the delivery log (JSONL: i, epoch,
seq, digest of the clear IQ, latency).  A restarted receiver first reads its own log back: a
truncated last line (killed mid-write) is cut, and every (epoch, seq) in it enters the replay
window, so nothing logged is delivered again; it then runs a fresh handshake, and the
transmitter moves to a new epoch under the new master.  Malformed frames (parser errors) and
rejected ones (forged, replay, too_old, stale_epoch) are counted, never raised.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zmq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from semguard.runtime._net import StopFlag, check_endpoint, socket, write_json_atomic
from semguard.runtime.frames import FLAG_SYMBOLS, FrameError, FrameType, decode_frame, unpack_data
from semguard.runtime.handshake import HandshakeError, KbView
from semguard.runtime.keysource import initiator
from semguard.runtime.secure import Opener, Rejected

__all__ = ["RxConfig", "run_rx", "read_delivery_log", "handshake_client"]

log = logging.getLogger(__name__)


@dataclass
class RxConfig:
    connect: str                          #: the emulator's forward endpoint (or tx's directly)
    handshake: str | None = None          #: tx's handshake endpoint; None = accept clear frames
    kb: KbView = field(default_factory=lambda: KbView("none", 0, ""))
    identity: Ed25519PrivateKey | None = field(default=None, repr=False)
    peer_public: bytes | None = None
    key_source: str = "plkg"              #: "plkg" (probes through the emulator) or "x25519"
    plkg: Any = None                      #: a PlkgConfig (None: its defaults)
    window: int = 64
    delivery_log: str | None = None
    metrics: str | None = None
    idle_timeout_s: float = 3.0
    max_runtime_s: float = 120.0
    handshake_timeout_s: float = 5.0
    handshake_attempts: int = 10
    hwm: int = 256
    #: benchmarks only: False admits clear frames too on a keyed link (see TxConfig.seal_only)
    require_sealed: bool = True

    def __post_init__(self) -> None:
        check_endpoint(self.connect, "connect")
        if self.handshake is not None:
            check_endpoint(self.handshake, "handshake")
        if self.idle_timeout_s <= 0 or self.max_runtime_s <= 0:
            raise ValueError("idle_timeout_s and max_runtime_s must be > 0")


def read_delivery_log(path: str | Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """The delivered records; with ``repair`` a truncated last line is cut from the file."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if repair and cut != len(data):
        with open(path, "r+b") as f:
            f.truncate(cut)
    return [json.loads(line) for line in data[:cut].splitlines() if line.strip()]


def handshake_client(ctx: zmq.Context, cfg: RxConfig) -> tuple[bytes, dict[str, Any]]:
    """Run the rx side over REQ (lazy-pirate retries: a fresh socket and a fresh session per attempt).

    Returns the master and the session's figures (no key material).  A refusal by the transmitter
    or a failed check here (knowledge base, signature, key confirmation) ends the attempts at once
    unless it is a key agreement that may succeed on a new channel realisation (``plkg:`` errors)."""
    last = "no answer"
    for _ in range(cfg.handshake_attempts):
        proto = initiator(cfg.key_source, cfg.kb, identity=cfg.identity, peer_public=cfg.peer_public, plkg=cfg.plkg)
        req = socket(ctx, zmq.REQ)
        try:
            req.connect(cfg.handshake)
            msg = proto.first()
            while msg is not None:
                req.send(json.dumps(msg).encode())
                if not req.poll(int(cfg.handshake_timeout_s * 1000)):
                    break
                reply = json.loads(req.recv())
                if not isinstance(reply, dict):
                    raise ValueError("reply is not an object")
                msg = proto.handle(reply)
            if proto.master is not None:
                return proto.master, dict(proto.info)
        except HandshakeError as exc:
            if "plkg:" not in str(exc):
                raise
            last = str(exc)
            log.info("key agreement attempt failed: %s", exc)
        except (ValueError, KeyError) as exc:
            last = f"malformed reply ({exc})"
        finally:
            req.close()
    raise HandshakeError(f"handshake with {cfg.handshake}: {last} after {cfg.handshake_attempts} attempts")


def _percentile(x: list[float], q: float) -> float | None:
    return float(np.percentile(x, q)) if x else None


def run_rx(cfg: RxConfig, on_block: Callable[[dict, np.ndarray], None] | None = None,
           stop: StopFlag | None = None) -> dict[str, Any]:
    """Receive until END, ``idle_timeout_s`` without frames, ``max_runtime_s`` or SIGTERM."""
    stop = stop if stop is not None else StopFlag()
    previous = read_delivery_log(cfg.delivery_log, repair=True) if cfg.delivery_log else []
    ctx = zmq.Context()
    pull = socket(ctx, zmq.PULL, hwm=cfg.hwm)
    counts: Counter = Counter()
    latency_us: list[float] = []
    out = open(cfg.delivery_log, "a") if cfg.delivery_log else None
    t0 = time.monotonic()
    try:
        master, key_info = handshake_client(ctx, cfg) if cfg.handshake else (None, {})
        counts["key"] = key_info
        opener = Opener(master, window=cfg.window, require_sealed=master is not None and cfg.require_sealed)
        if previous:  # resume: what was delivered before stays delivered once
            last_epoch = max(r["epoch"] for r in previous)
            opener.restore({"epoch": last_epoch, "window": cfg.window, "highest": -1, "bitmap": 0})
            for r in previous:
                if r["epoch"] == last_epoch:
                    opener.replay.accept(r["seq"])
            counts["resumed_from_log"] = len(previous)
        pull.connect(cfg.connect)
        scrambler = None
        last_frame = time.monotonic()
        while not stop and time.monotonic() - t0 < cfg.max_runtime_s:
            if not pull.poll(50):
                if time.monotonic() - last_frame > cfg.idle_timeout_s:
                    counts["idle_timeout"] = 1
                    break
                continue
            raw = pull.recv()
            last_frame = time.monotonic()
            counts["received"] += 1
            try:
                frame = decode_frame(raw)
                clear = opener.open(frame)
                if frame.type == FrameType.CONTROL:
                    counts["end"] = 1
                    break
                if frame.type != FrameType.DATA:
                    counts["ignored"] += 1
                    continue
                side, iq = unpack_data(clear)
                if frame.flags & FLAG_SYMBOLS:  # the IQ came through the channel keyed-scrambled
                    if scrambler is None:
                        from semguard.runtime.scramble import SymbolScrambler
                        scrambler = SymbolScrambler(master)
                    iq = scrambler.decrypt(iq, frame.epoch, frame.seq)
            except FrameError:
                counts["malformed"] += 1
                continue
            except Rejected:
                continue
            lat = (time.time_ns() - int(side.get("t_ns", time.time_ns()))) / 1e3
            latency_us.append(lat)
            if on_block is not None:
                on_block(side, iq)
            if out is not None:
                digest = hashlib.sha256(iq.tobytes()).hexdigest()[:32]
                out.write(json.dumps({"i": side.get("i"), "epoch": frame.epoch, "seq": frame.seq,
                                      "digest": digest, "lat_us": round(lat, 1)}) + "\n")
                out.flush()
            counts["delivered"] += 1
    finally:
        if out is not None:
            out.close()
        pull.close()
        ctx.term()
    elapsed = time.monotonic() - t0
    metrics = {**counts, "rejected": dict(opener.rejected) if "opener" in locals() else {},
               "latency_us_p50": _percentile(latency_us, 50), "latency_us_p99": _percentile(latency_us, 99),
               "elapsed_s": elapsed, "pid": os.getpid()}
    if cfg.metrics:
        write_json_atomic(cfg.metrics, metrics)
    return metrics
