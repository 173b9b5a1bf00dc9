"""The tx and rx loops in-process on 127.0.0.1: back-pressure with no receiver is bounded and
counted; garbage, forged and replayed frames sent straight to rx are counted, never raised."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import zmq

from semguard.runtime._net import StopFlag
from semguard.runtime.frames import Frame, FrameType, encode_frame, pack_data
from semguard.runtime.rx import RxConfig, read_delivery_log, run_rx
from semguard.runtime.tx import TxConfig, run_tx

from runtime_procs import ep, free_port


def test_no_receiver_send_timeouts_are_bounded_and_counted():
    cfg = TxConfig(ep(free_port()), frames=3, n_symbols=8, send_timeout_s=0.2)
    t0 = time.monotonic()
    stats = run_tx(cfg, stop=StopFlag())
    assert stats["sent"] == 0 and stats["send_timeout"] == 4  # 3 blocks + END
    assert time.monotonic() - t0 < 5


def test_rx_counts_garbage_and_replays_and_delivers_once(tmp_path):
    port = free_port()
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.bind(ep(port))
    cfg = RxConfig(ep(port), delivery_log=str(tmp_path / "rx.jsonl"), idle_timeout_s=1.0, max_runtime_s=20)
    res: dict = {}
    t = threading.Thread(target=lambda: res.update(run_rx(cfg, stop=StopFlag())))
    t.start()
    try:
        iq = np.ones(4, np.complex64)
        good = [encode_frame(Frame(FrameType.DATA, 0, i, pack_data({"i": i, "t_ns": time.time_ns()}, iq)))
                for i in range(5)]
        rng = np.random.default_rng(0)
        msgs = [good[0], b"", b"SGRF", os.urandom(100), good[1], good[1], good[0], good[3], good[2],
                good[4][:-3], bytes(rng.integers(0, 256, 30, dtype=np.uint8)), good[4],
                encode_frame(Frame(FrameType.DATA, 0, 9, b"\x00\x00"))]  # well framed, bad payload
        time.sleep(0.3)
        for m in msgs:
            push.send(m)
        t.join(15)
    finally:
        push.close()
        ctx.term()
    assert not t.is_alive()
    assert res["delivered"] == 5 and res["received"] == len(msgs)
    assert res["rejected"] == {"replay": 2}
    assert res["malformed"] == 6
    assert sorted(r["seq"] for r in read_delivery_log(tmp_path / "rx.jsonl")) == [0, 1, 2, 3, 4]


def test_delivery_log_repair_cuts_a_torn_line(tmp_path):
    p = tmp_path / "rx.jsonl"
    p.write_text('{"epoch": 0, "seq": 0}\n{"epoch": 0, "se')
    assert read_delivery_log(p, repair=True) == [{"epoch": 0, "seq": 0}]
    assert p.read_text() == '{"epoch": 0, "seq": 0}\n'
    with pytest.raises(ValueError, match="connect"):
        RxConfig("tcp://0.0.0.0:1")
