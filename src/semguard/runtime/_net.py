"""ZeroMQ plumbing shared by the tx, channel and rx processes (loopback endpoints only)."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import zmq

__all__ = ["check_endpoint", "socket", "StopFlag", "write_json_atomic"]


def check_endpoint(endpoint: str, what: str) -> str:
    """Accept only ``tcp://127.0.0.1:PORT`` (the runtime never leaves loopback)."""
    prefix = "tcp://127.0.0.1:"
    if not endpoint.startswith(prefix) or not endpoint[len(prefix):].isdigit():
        raise ValueError(f"{what}: expected tcp://127.0.0.1:PORT, got {endpoint!r}")
    port = int(endpoint[len(prefix):])
    if not 1 <= port <= 65535:
        raise ValueError(f"{what}: port must be in 1..65535, got {port}")
    return endpoint


def socket(ctx: zmq.Context, kind: int, *, hwm: int = 256, linger_ms: int = 0) -> zmq.Socket:
    """A socket with bounded queues (``hwm`` messages each way) and no linger on close."""
    s = ctx.socket(kind)
    s.setsockopt(zmq.SNDHWM, hwm)
    s.setsockopt(zmq.RCVHWM, hwm)
    s.setsockopt(zmq.LINGER, linger_ms)
    return s


class StopFlag:
    """Set by SIGTERM / SIGINT (main thread only), polled by the loops."""

    def __init__(self) -> None:
        self._event = threading.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self._event.set())

    def __bool__(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()


def write_json_atomic(path: str | Path, obj: Any) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)
