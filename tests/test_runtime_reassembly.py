"""The GNU Radio bridge's reassembly by sample count, on hand-built chunkings of the returned stream,
and the bridge itself against an in-test stream re-chunker standing in for a flowgraph."""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import pytest
import zmq

from semguard.runtime.frames import FLAG_SEALED, FLAG_SYMBOLS, Frame, FrameType, decode_frame, encode_frame, \
    pack_data, unpack_data
from semguard.runtime.gr_bridge import GnuRadioBridge, split_iq
from semguard.runtime.reassembly import SampleFifo

from runtime_procs import ep, free_port


def _stream(sizes):
    return np.arange(sum(sizes), dtype=np.float32).astype(np.complex64)


@pytest.mark.parametrize("chunks", [
    [3, 0, 2, 4],          # exactly the frame sizes (with a zero-sample frame)
    [9],                   # everything at once
    [1] * 9,               # one sample at a time
    [2, 5, 2],             # cuts across every frame boundary
])
def test_fifo_releases_each_frame_with_its_samples_in_order(chunks):
    sizes = [3, 0, 2, 4]
    x = _stream(sizes)
    fifo = SampleFifo(8)
    for k, n in enumerate(sizes):
        assert fifo.offer(k, n, 0.0)
    got, i = [], 0
    for c in chunks:
        got += fifo.feed(x[i:i + c], 1.0)
        i += c
    assert [k for k, _ in got] == [0, 1, 2, 3]
    starts = np.cumsum([0, *sizes[:-1]])
    for (k, y), s, n in zip(got, starts, sizes):
        np.testing.assert_array_equal(y, x[s:s + n])
    assert len(fifo) == 0 and fifo.excess == 0


def test_fifo_bounded_excess_and_timeout():
    fifo = SampleFifo(2)
    assert fifo.offer("a", 4, 0.0) and fifo.offer("b", 0, 0.0)
    assert not fifo.offer("c", 1, 0.0)                           # full: refused
    assert fifo.feed(np.ones(3, np.complex64), 0.5) == []        # "a" still owed one sample
    assert fifo.expire(1.0, 2.0) == ([], [])                     # not yet timed out
    released, lost = fifo.expire(3.0, 2.0)                       # 2.5 s without a sample
    assert lost == ["a"] and [k for k, _ in released] == ["b"] and len(fifo) == 0
    assert fifo.feed(np.ones(5, np.complex64), 3.1) == [] and fifo.excess == 5   # late samples: discarded
    assert fifo.offer("d", 2, 4.0)
    (k, y), = fifo.feed(np.full(2, 7, np.complex64), 4.1)       # the stream realigns on the next frame
    assert k == "d" and np.all(y == 7)
    with pytest.raises(ValueError, match="n must be"):
        fifo.offer("e", -1, 0.0)


def test_fifo_flush_drops_a_dead_flowgraphs_frames_so_the_next_ones_align():
    """Without the flush, a restarted flowgraph's samples would complete the dead one's frames: "b" would
    be given "c"'s first sample and every later frame shifted by one."""
    fifo = SampleFifo(8)
    assert fifo.offer("a", 2, 0.0) and fifo.offer("b", 2, 0.0) and fifo.offer("p", 0, 0.0)
    (k, y), = fifo.feed(np.array([1, 2, 3], np.complex64), 0.1)   # "a" back, one sample of "b", then the kill
    assert k == "a" and list(y) == [1, 2]
    released, lost = fifo.flush()
    assert lost == ["b"] and [k for k, _ in released] == ["p"] and len(fifo) == 0
    assert fifo.flush() == ([], [])
    assert fifo.offer("c", 2, 1.0)
    (k, y), = fifo.feed(np.array([5, 6], np.complex64), 1.1)        # the restarted flowgraph's samples
    assert k == "c" and list(y) == [5, 6] and fifo.excess == 0


def test_split_iq_refuses_frames_sealed_whole():
    iq = np.arange(4, dtype=np.complex64)
    clear = encode_frame(Frame(FrameType.DATA, 0, 5, pack_data({"i": 5}, iq)))
    frame, prefix, tail = split_iq(clear)
    assert frame.seq == 5 and np.frombuffer(tail, "<c8").tolist() == iq.tolist()
    assert prefix + tail == frame.payload
    assert split_iq(encode_frame(Frame(FrameType.DATA, 0, 1, b"x" * 40, FLAG_SEALED))) is None
    sym = b"\x00\x00\x00\x03abc" + iq.astype("<c8").tobytes()
    _, prefix, tail = split_iq(encode_frame(Frame(FrameType.DATA, 0, 2, sym, FLAG_SEALED | FLAG_SYMBOLS)))
    assert prefix == b"\x00\x00\x00\x03abc" and len(tail) == 32
    assert split_iq(encode_frame(Frame(FrameType.CONTROL, 0, 3, b"{}"))) is None


def _rechunker(ctx, src, dst, stop, gain):
    """A stand-in flowgraph: connects to the bridge's PUSH, binds a PUSH, returns gain * x in 7-sample chunks."""
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.connect(src)
    push.bind(dst)
    buf = b""
    while not stop.is_set():
        if pull.poll(20):
            x = np.frombuffer(pull.recv(), "<c8") * gain
            buf += x.astype("<c8").tobytes()
        while len(buf) >= 56 or (buf and not pull.poll(0)):
            push.send(buf[:56])
            buf = buf[56:]
    pull.close(0)
    push.close(0)


def test_bridge_rebuilds_frames_in_order_through_a_rechunking_stream():
    ctx = zmq.Context()
    out_ep, in_ep = ep(free_port()), ep(free_port())
    stop = threading.Event()
    th = threading.Thread(target=_rechunker, args=(ctx, out_ep, in_ep, stop, 2.0), daemon=True)
    stats: Counter = Counter()
    bridge = GnuRadioBridge(ctx, out_ep, in_ep, stats, timeout_s=1.0)
    th.start()
    try:
        rng = np.random.default_rng(0)
        blocks = [rng.standard_normal(n).astype(np.complex64) for n in (5, 16, 1, 30, 9)]
        frames = [encode_frame(Frame(FrameType.DATA, 0, k, pack_data({"i": k}, b))) for k, b in enumerate(blocks)]
        frames.insert(2, encode_frame(Frame(FrameType.DATA, 0, 99, b"s" * 24, FLAG_SEALED)))  # relayed as bytes
        frames.append(encode_frame(Frame(FrameType.CONTROL, 0, 100, b'{"end":true}')))
        out = []
        for f in frames:
            out += bridge.send(f)
        t = time.monotonic() + 10
        while len(out) < len(frames) and time.monotonic() < t:
            out += bridge.poll_in()
            time.sleep(0.01)
        got = [decode_frame(o) for o in out]
        assert [g.seq for g in got] == [0, 1, 99, 2, 3, 4, 100]       # nothing overtook anything
        data = [g for g in got if g.type == FrameType.DATA and not g.flags]
        for g, b in zip(data, blocks):
            side, y = unpack_data(g.payload)
            assert side == {"i": g.seq}
            np.testing.assert_allclose(y, 2.0 * b, rtol=1e-6)
        assert stats["gnuradio_returned"] == 5 and stats["gnuradio_passthrough"] == 2
        # the flowgraph stops answering: the frame in flight is lost after the timeout, never a hang
        stop.set()
        th.join(5)
        assert bridge.send(frames[0]) == []   # no flowgraph: refused at send, or queued and then lost
        t = time.monotonic() + 5
        while stats["gnuradio_send_timeout"] + stats["gnuradio_lost"] == 0 and time.monotonic() < t:
            bridge.poll_in()
            time.sleep(0.05)
        assert stats["gnuradio_send_timeout"] + stats["gnuradio_lost"] == 1 and len(bridge.fifo) == 0
        lost0 = stats["gnuradio_lost"]
        hole = ctx.socket(zmq.PULL)          # a flowgraph that takes the IQ and never answers
        hole.connect(out_ep)
        time.sleep(0.3)
        assert bridge.send(frames[0]) == [] and len(bridge.fifo) == 1
        t = time.monotonic() + 5
        while stats["gnuradio_lost"] == lost0 and time.monotonic() < t:
            bridge.poll_in()
            time.sleep(0.05)
        assert stats["gnuradio_lost"] == lost0 + 1 and len(bridge.fifo) == 0
        hole.close(0)
    finally:
        stop.set()
        bridge.close()
        ctx.term()
