"""The emulator's GNU Radio bridge: DATA frames' IQ out to a flowgraph, the processed stream back.

For each frame the emulator relays, :meth:`GnuRadioBridge.send` sends the IQ block of a clear or
``FLAG_SYMBOLS`` DATA frame as one raw little-endian complex64 message on a bound ZeroMQ PUSH socket
(what ``zeromq.pull_source(gr.sizeof_gr_complex, 1, addr, ..., pass_tags=False)`` reads) and queues
the frame's header and side info (the payload before the IQ) in a :class:`~semguard.runtime.reassembly.SampleFifo`.
:meth:`poll_in` reads the flowgraph's stream from a PULL socket connected to its ``zeromq.push_sink``,
and rebuilds each frame whose samples are back: same header, same side info, the processed IQ (the
length is unchanged, so a ``FLAG_SYMBOLS`` frame's AEAD, whose associated data is the header, still
opens).  Frames sealed whole (``FLAG_SEALED`` alone: the IQ is inside the AEAD) and non-DATA frames
cannot go through a radio: they are queued owed zero samples, i.e. relayed as bytes in their place in
the order (counted ``gnuradio_passthrough``).  Counters: ``gnuradio_sent``, ``gnuradio_returned``,
``gnuradio_overflow`` (FIFO full: dropped; the emulator
stops reading from tx while it is full, so this is back-pressure's last resort), ``gnuradio_lost`` (no answer within the timeout),
``gnuradio_excess_samples``, ``gnuradio_send_timeout`` (no flowgraph connected: after the first
timeout the bridge waits no more, each frame is counted at once, until a flowgraph is back).

A flowgraph that goes away (killed, restarted) takes the samples inside it along: left owed, those
frames would be credited with a restarted flowgraph's samples, every later frame shifted by the
samples lost.  Both sockets are monitored; once both connections to the flowgraph have ended (the
PULL side's end comes after every message it had delivered, so nothing the old flowgraph sent is left
to arrive), whatever was returned is read, and the frames still owed samples are lost
(``gnuradio_lost``, ``gnuradio_disconnects``).  The two notices arrive within milliseconds of each
other; a restarted flowgraph (GNU Radio takes seconds to start) cannot have sent anything by then.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from semguard.runtime._net import check_endpoint, socket
from semguard.runtime.frames import FLAG_SEALED, FLAG_SYMBOLS, Frame, FrameError, FrameType, decode_frame, \
    encode_frame, iq_bytes, iq_from_bytes, split_symbols
from semguard.runtime.reassembly import SampleFifo

__all__ = ["GnuRadioBridge", "split_iq"]


def split_iq(raw: bytes) -> tuple[Frame, bytes, bytes] | None:
    """(frame, payload prefix, IQ bytes) of a frame a radio can carry, or None (relay it as bytes)."""
    frame = decode_frame(raw)
    if frame.type != FrameType.DATA or (frame.flags & FLAG_SEALED and not frame.flags & FLAG_SYMBOLS):
        return None
    if frame.flags & FLAG_SYMBOLS:
        sealed, tail = split_symbols(frame.payload)
    else:
        if len(frame.payload) < 4:
            raise FrameError(f"side_len: payload of {len(frame.payload)} bytes has no 4-byte side-info length")
        n = int.from_bytes(frame.payload[:4], "big")
        if 4 + n > len(frame.payload) or (len(frame.payload) - 4 - n) % 8:
            raise FrameError(f"side_len: {n} side-info bytes leave no whole IQ block in {len(frame.payload)}")
        tail = frame.payload[4 + n:]
    cut = len(frame.payload) - len(tail)
    return frame, frame.payload[:cut], tail


class GnuRadioBridge:
    def __init__(self, ctx: zmq.Context, out_ep: str, in_ep: str, stats: Counter, *, max_pending: int = 256,
                 timeout_s: float = 2.0, hwm: int = 256, send_timeout_s: float = 1.0) -> None:
        check_endpoint(out_ep, "gnuradio_out")
        check_endpoint(in_ep, "gnuradio_in")
        if timeout_s <= 0:
            raise ValueError(f"gnuradio_timeout must be > 0 s, got {timeout_s}")
        self.push = socket(ctx, zmq.PUSH, hwm=hwm)
        self.pull = socket(ctx, zmq.PULL, hwm=hwm)
        self.push.bind(out_ep)      # GNU Radio's pull_source connects
        self.pull.connect(in_ep)    # GNU Radio's push_sink binds
        self.fifo = SampleFifo(max_pending)
        self.stats, self.timeout_s, self.send_timeout_s = stats, timeout_s, send_timeout_s
        self._down = False
        self._monitors = {"push": self.push.get_monitor_socket(zmq.EVENT_DISCONNECTED),
                          "pull": self.pull.get_monitor_socket(zmq.EVENT_DISCONNECTED)}
        self._gone: set[str] = set()    # which of the flowgraph's two connections have ended since the last flush

    def send(self, raw: bytes) -> list[bytes]:
        """Queue one relayed frame; return the frames now ready (in order)."""
        now = time.monotonic()
        try:
            parts = split_iq(raw)
        except FrameError:
            parts = None
            self.stats["gnuradio_malformed"] += 1
        if parts is None:
            if self.fifo.offer(raw, 0, now):
                self.stats["gnuradio_passthrough"] += 1
            else:
                self.stats["gnuradio_overflow"] += 1
            return self._ready(self.fifo.release_ready())
        frame, prefix, iq = parts
        if len(self.fifo) >= self.fifo.max_pending:
            self.stats["gnuradio_overflow"] += 1
            return []
        # no flowgraph connected: the frame is lost; after one timeout, wait no more until it is back
        if iq and not self.push.poll(0 if self._down else int(self.send_timeout_s * 1000), zmq.POLLOUT):
            self.stats["gnuradio_send_timeout"] += 1
            self._down = True
            return []
        self._down = False
        if iq:
            self.push.send(iq, zmq.NOBLOCK)
        self.fifo.offer((frame, prefix), len(iq) // 8, now)
        self.stats["gnuradio_sent"] += 1
        return self._ready(self.fifo.release_ready())

    def full(self) -> bool:
        """True while ``max_pending`` frames are in the flowgraph (the emulator stops reading from tx)."""
        return len(self.fifo) >= self.fifo.max_pending

    def _disconnected(self) -> bool:
        """True once both connections to the flowgraph have ended (then the record starts over)."""
        for name, mon in self._monitors.items():
            while mon.poll(0, zmq.POLLIN):
                if recv_monitor_message(mon)["event"] == zmq.EVENT_DISCONNECTED:
                    self._gone.add(name)
        if len(self._gone) < 2:
            return False
        self._gone.clear()
        return True

    def poll_in(self) -> list[bytes]:
        """Read what the flowgraph returned (non-blocking); return the frames it completes, in order."""
        gone = self._disconnected()   # checked first: what the old flowgraph sent is queued before its end
        out: list[bytes] = []
        while self.pull.poll(0, zmq.POLLIN):
            msg = self.pull.recv()
            if len(msg) % 8:
                self.stats["gnuradio_bad_message"] += 1
                continue
            out += self._ready(self.fifo.feed(iq_from_bytes(msg), time.monotonic()))
        if gone:
            self.stats["gnuradio_disconnects"] += 1
            released, lost = self.fifo.flush()
            self.stats["gnuradio_lost"] += len(lost)
            out += self._ready(released)
        released, lost = self.fifo.expire(time.monotonic(), self.timeout_s)
        self.stats["gnuradio_lost"] += len(lost)
        out += self._ready(released)
        self.stats["gnuradio_excess_samples"] = self.fifo.excess
        return out

    def _ready(self, items: list[tuple[object, np.ndarray]]) -> list[bytes]:
        out = []
        for item, y in items:
            if isinstance(item, bytes):
                out.append(item)
                continue
            frame, prefix = item
            out.append(encode_frame(Frame(frame.type, frame.epoch, frame.seq, prefix + iq_bytes(y), frame.flags)))
            self.stats["gnuradio_returned"] += 1
        return out

    def close(self) -> None:
        for sock in (self.push, self.pull):
            sock.disable_monitor()
        for mon in self._monitors.values():
            mon.close(linger=0)
        self.push.close(linger=0)
        self.pull.close(linger=0)
