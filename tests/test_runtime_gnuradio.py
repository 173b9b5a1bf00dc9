"""tx -> semguard channel -> a real GNU Radio flowgraph (examples/gnuradio/awgn_channel.py: ZeroMQ pull
source, complex gain, AWGN, ZeroMQ push sink) -> semguard channel -> rx, all as processes on loopback.

Needs Debian's GNU Radio for the system interpreter (``/usr/bin/python3 -c "import gnuradio"``);
skipped with that reason elsewhere.  Every process is stopped by its pid."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from semguard.knowledge.keys import generate_key, public_bytes, save_private_key
from semguard.runtime.emulator import read_tap
from semguard.runtime.frames import FLAG_SYMBOLS, FrameType, decode_frame, unpack_data
from semguard.runtime.tx import raw_blocks

from runtime_procs import ep, free_port, jsonl, running, start, stop, wait_file

GR_PYTHON = os.environ.get("SEMGUARD_GR_PYTHON", "/usr/bin/python3")
FLOWGRAPH = Path(__file__).resolve().parents[1] / "examples" / "gnuradio" / "awgn_channel.py"


def _has_gnuradio() -> bool:
    try:
        return subprocess.run([GR_PYTHON, "-c", "from gnuradio import gr, blocks, zeromq, analog"],
                              capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(not _has_gnuradio(),
                                reason=f"GNU Radio not importable by {GR_PYTHON} (Debian package gnuradio)")

N0, GAIN = 0.05, complex(0.8, 0.3)


def _radio_link(tmp_path, frames: int, tx_extra=(), rx_extra=(), rate: str = "100", n0: float = N0,
                gain: complex = GAIN):
    p_in, p_out, p_gr_out, p_gr_in = free_port(), free_port(), free_port(), free_port()
    with running() as procs:
        fg = subprocess.Popen([GR_PYTHON, str(FLOWGRAPH), "--source", ep(p_gr_out), "--sink", ep(p_gr_in),
                               "--n0", str(n0), "--gain-re", str(gain.real), "--gain-im", str(gain.imag),
                               "--seed", "7", "--max-runtime", "120"],
                              stdout=open(tmp_path / "gr.log", "w"), stderr=subprocess.STDOUT)
        procs.append(fg)
        procs.append(start("channel", "--listen", ep(p_in), "--forward", ep(p_out), "--gnuradio-out", ep(p_gr_out),
                           "--gnuradio-in", ep(p_gr_in), "--gnuradio-timeout", "3", "--stats", str(tmp_path / "ch.json"),
                           "--tap", str(tmp_path / "eve.bin"), "--max-runtime", "90", log=tmp_path / "ch.log"))
        wait_file(tmp_path / "ch.json", 60)
        procs.append(start("rx", "--connect", ep(p_out), "--delivery-log", str(tmp_path / "rx.jsonl"),
                           "--metrics", str(tmp_path / "rx.json"), "--idle-timeout", "20", "--max-runtime", "60",
                           *rx_extra, log=tmp_path / "rx.log"))
        tx = start("tx", "--connect", ep(p_in), "--frames", str(frames), "--rate", rate, "--n-symbols", "64",
                   "--sent-log", str(tmp_path / "tx.jsonl"), *tx_extra, log=tmp_path / "tx.log")
        procs.append(tx)
        assert tx.wait(60) == 0, (tmp_path / "tx.log").read_text()
        metrics = wait_file(tmp_path / "rx.json", 30)
        assert fg.poll() is None, (tmp_path / "gr.log").read_text()   # the flowgraph ran throughout
    return metrics, wait_file(tmp_path / "ch.json", 5)


@pytest.mark.parametrize("n0, gain", [(N0, GAIN), (0.2, complex(1.0, 0.0))])
def test_frames_through_a_gnuradio_awgn_flowgraph(tmp_path, n0, gain):
    """Clear frames: each delivered once, in its place, and the IQ Bob gets is gain * x + CN(0, n0) --
    the flowgraph, not the emulator, applied the channel."""
    n = int(os.environ.get("SEMGUARD_GR_FRAMES", "60"))
    metrics, ch = _radio_link(tmp_path, n, rate=os.environ.get("SEMGUARD_GR_RATE", "100"), n0=n0, gain=gain)
    sent, delivered = jsonl(tmp_path / "tx.jsonl"), jsonl(tmp_path / "rx.jsonl")
    assert metrics["delivered"] == len(delivered) == len(sent) == n and metrics.get("end") == 1
    assert len({(d["epoch"], d["seq"]) for d in delivered}) == n
    assert ch["gnuradio_sent"] == ch["gnuradio_returned"] == n and ch.get("gnuradio_lost", 0) == 0
    assert ch["gnuradio_passthrough"] == 1 and ch.get("gnuradio_excess_samples", 0) == 0   # the end frame
    x = {side["i"]: iq for side, iq in raw_blocks(n, 64, 0)}
    gains, err = [], []
    for raw in read_tap(tmp_path / "eve.bin"):   # the tap holds what rx received
        f = decode_frame(raw)
        if f.type != FrameType.DATA:
            continue
        side, y = unpack_data(f.payload)
        xi = x[side["i"]].astype(np.complex128)
        gains.append(np.vdot(xi, y) / np.vdot(xi, xi))
        err.append(np.mean(np.abs(y - gain * xi) ** 2))
    assert len(err) == n
    err = np.asarray(err)
    # 64 samples a frame: each frame's error power is N0 * chi2(128)/128 (sd 12.5 %); the mean over 60 frames 1.6 %
    assert np.mean(err) == pytest.approx(n0, rel=0.06)
    assert np.all((err > 0.5 * n0) & (err < 1.6 * n0))
    assert abs(np.mean(gains) - gain) < 0.02 + 0.05 * np.sqrt(n0)
    print("gnuradio awgn:", {"frames": n, "err_power_mean": float(np.mean(err)), "err_power_min": float(err.min()),
                             "err_power_max": float(err.max()), "n0": n0, "gain_mean": complex(np.mean(gains)),
                             "emulator": ch})


def test_sealed_symbols_frames_open_after_the_radio(tmp_path):
    """--seal symbols (X25519 keys, pinned identities): the side info's AEAD still opens after GNU Radio
    changed the IQ (header and length unchanged), every frame is delivered once and none rejected."""
    a, b = generate_key(), generate_key()
    save_private_key(a, tmp_path / "tx.pem")
    save_private_key(b, tmp_path / "rx.pem")
    p_hs = free_port()
    common = ["--handshake", ep(p_hs), "--key-source", "x25519"]
    n = 40
    metrics, ch = _radio_link(
        tmp_path, n,
        tx_extra=[*common, "--identity", str(tmp_path / "tx.pem"), "--peer-key", public_bytes(b).hex(),
                  "--seal", "symbols"],
        rx_extra=[*common, "--identity", str(tmp_path / "rx.pem"), "--peer-key", public_bytes(a).hex()])
    sent, delivered = jsonl(tmp_path / "tx.jsonl"), jsonl(tmp_path / "rx.jsonl")
    assert metrics["delivered"] == len(delivered) == len(sent) == n and metrics["rejected"] == {}
    assert len({(d["epoch"], d["seq"]) for d in delivered}) == n
    assert ch["gnuradio_returned"] == n
    assert not {s["digest"] for s in sent} & {d["digest"] for d in delivered}   # the radio changed every block
    eve = [decode_frame(f) for f in read_tap(tmp_path / "eve.bin")]
    assert sum(1 for f in eve if f.flags & FLAG_SYMBOLS) == n


@pytest.mark.slow
def test_flowgraph_killed_midstream_frames_counted_lost_no_hang(tmp_path):
    """SIGKILL the GNU Radio process mid-stream: the frames in it are counted lost (or refused at send),
    the rest of the stream ends (the end frame still reaches rx), nothing is delivered twice."""
    import signal
    import time
    p_in, p_out, p_gr_out, p_gr_in = free_port(), free_port(), free_port(), free_port()
    with running() as procs:
        fg = subprocess.Popen([GR_PYTHON, str(FLOWGRAPH), "--source", ep(p_gr_out), "--sink", ep(p_gr_in),
                               "--n0", str(N0), "--max-runtime", "120"],
                              stdout=open(tmp_path / "gr.log", "w"), stderr=subprocess.STDOUT)
        procs.append(fg)
        procs.append(start("channel", "--listen", ep(p_in), "--forward", ep(p_out), "--gnuradio-out", ep(p_gr_out),
                           "--gnuradio-in", ep(p_gr_in), "--gnuradio-timeout", "1", "--stats", str(tmp_path / "ch.json"),
                           "--max-runtime", "90", log=tmp_path / "ch.log"))
        wait_file(tmp_path / "ch.json", 60)
        rx = start("rx", "--connect", ep(p_out), "--delivery-log", str(tmp_path / "rx.jsonl"), "--metrics",
                   str(tmp_path / "rx.json"), "--idle-timeout", "8", "--max-runtime", "60", log=tmp_path / "rx.log")
        procs.append(rx)
        tx = start("tx", "--connect", ep(p_in), "--frames", "300", "--rate", "50", "--n-symbols", "64",
                   "--sent-log", str(tmp_path / "tx.jsonl"), log=tmp_path / "tx.log")
        procs.append(tx)
        t = time.monotonic() + 60
        while len(jsonl(tmp_path / "rx.jsonl")) < 50 and time.monotonic() < t:
            time.sleep(0.05)
        stop(fg, signal.SIGKILL)
        assert tx.wait(60) == 0, (tmp_path / "tx.log").read_text()
        metrics = wait_file(tmp_path / "rx.json", 30)
    ch = wait_file(tmp_path / "ch.json", 5)
    sent, delivered = jsonl(tmp_path / "tx.jsonl"), jsonl(tmp_path / "rx.jsonl")
    keys = [(d["epoch"], d["seq"]) for d in delivered]
    assert len(keys) == len(set(keys)) >= 50
    unanswered = ch.get("gnuradio_lost", 0) + ch.get("gnuradio_send_timeout", 0)
    assert unanswered > 0 and metrics.get("end") == 1      # the end frame still reached rx
    assert len(delivered) + unanswered + ch.get("gnuradio_overflow", 0) + ch.get("overflow", 0) == len(sent)
    print("flowgraph killed:", {"sent": len(sent), "delivered_once": len(delivered), "rx": metrics, "emulator": ch})


def _tap_error_powers(tap: Path, n_frames: int, gain: complex) -> dict[int, float]:
    """Per delivered frame index: ``mean |y - g x|^2`` of what rx received against what tx sent."""
    x = {side["i"]: iq for side, iq in raw_blocks(n_frames, 64, 0)}
    err = {}
    for raw in read_tap(tap):
        f = decode_frame(raw)
        if f.type == FrameType.DATA:
            side, y = unpack_data(f.payload)
            err[side["i"]] = float(np.mean(np.abs(y - gain * x[side["i"]].astype(np.complex128)) ** 2))
    return err


@pytest.mark.slow
def test_flowgraph_restarted_midstream_realigns(tmp_path):
    """The flowgraph is frozen (SIGSTOP) for 0.6 s so frames pile up inside it, SIGKILLed with them, and a
    new flowgraph is started on the same addresses while the emulator still waits for those samples (its
    --gnuradio-timeout is 20 s).  The frames that died in the old flowgraph are counted lost at its
    disconnect, and every frame delivered after the restart carries its own samples: its error power
    against its own block is N0's (a stream shifted by the lost samples would show |g|^2 * 2 + N0 = 1.5)."""
    import signal
    import time
    n = 400
    p_in, p_out, p_gr_out, p_gr_in = free_port(), free_port(), free_port(), free_port()

    def flowgraph(seed: int) -> subprocess.Popen:
        return subprocess.Popen([GR_PYTHON, str(FLOWGRAPH), "--source", ep(p_gr_out), "--sink", ep(p_gr_in),
                                 "--n0", str(N0), "--gain-re", str(GAIN.real), "--gain-im", str(GAIN.imag),
                                 "--seed", str(seed), "--max-runtime", "150"],
                                stdout=open(tmp_path / f"gr{seed}.log", "w"), stderr=subprocess.STDOUT)

    with running() as procs:
        fg = flowgraph(7)
        procs.append(fg)
        procs.append(start("channel", "--listen", ep(p_in), "--forward", ep(p_out), "--gnuradio-out", ep(p_gr_out),
                           "--gnuradio-in", ep(p_gr_in), "--gnuradio-timeout", "20", "--stats", str(tmp_path / "ch.json"),
                           "--tap", str(tmp_path / "eve.bin"), "--max-runtime", "140", log=tmp_path / "ch.log"))
        wait_file(tmp_path / "ch.json", 60)
        rx = start("rx", "--connect", ep(p_out), "--delivery-log", str(tmp_path / "rx.jsonl"), "--metrics",
                   str(tmp_path / "rx.json"), "--idle-timeout", "30", "--max-runtime", "120", log=tmp_path / "rx.log")
        procs.append(rx)
        tx = start("tx", "--connect", ep(p_in), "--frames", str(n), "--rate", "40", "--n-symbols", "64",
                   "--sent-log", str(tmp_path / "tx.jsonl"), log=tmp_path / "tx.log")
        procs.append(tx)
        t = time.monotonic() + 60
        while len(jsonl(tmp_path / "rx.jsonl")) < 60 and time.monotonic() < t:
            time.sleep(0.05)
        os.kill(fg.pid, signal.SIGSTOP)
        time.sleep(0.6)
        stop(fg, signal.SIGKILL)
        before = len(jsonl(tmp_path / "rx.jsonl"))
        procs.append(flowgraph(8))
        assert tx.wait(90) == 0, (tmp_path / "tx.log").read_text()
        metrics = wait_file(tmp_path / "rx.json", 60)
    ch = wait_file(tmp_path / "ch.json", 5)
    sent, delivered = jsonl(tmp_path / "tx.jsonl"), jsonl(tmp_path / "rx.jsonl")
    keys = [(d["epoch"], d["seq"]) for d in delivered]
    assert len(keys) == len(set(keys)) and metrics.get("end") == 1
    err = _tap_error_powers(tmp_path / "eve.bin", n, GAIN)
    after = [i for i in err if i > max(d["i"] for d in delivered[:before])]
    assert len(after) >= 100, ch                                   # the stream came back through the new flowgraph
    bad = {i: round(e, 3) for i, e in err.items() if not 0.5 * N0 < e < 1.6 * N0}
    assert not bad, (bad, ch)
    assert ch.get("gnuradio_lost", 0) >= 10                        # the frames frozen in the killed flowgraph
    unanswered = ch.get("gnuradio_lost", 0) + ch.get("gnuradio_send_timeout", 0)
    assert len(delivered) + unanswered + ch.get("gnuradio_overflow", 0) + ch.get("overflow", 0) == len(sent)
    print("flowgraph restarted:", {"sent": len(sent), "delivered_once": len(delivered), "after_restart": len(after),
                                   "rx": metrics, "emulator": ch})
