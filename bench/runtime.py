"""Benchmark of the semantic link as processes vs the same link in one process.

    python bench/runtime.py --out runtime_bench.json [--frames 200]

For the default image codec and the default text codec (``semguard.codecs.zoo``), one source per
frame, AWGN at 10 dB:

* ``inproc``: :class:`semguard.link.Link` in one process (encode -> channel -> decode);
  ``inproc_ops``: the very calls the process pipeline makes (``codec.encode``, ``channel``,
  ``codec.decode``) in one loop, the like-for-like baseline.
* ``procs_clear`` / ``procs_sealed``: the bench process encodes and sends (``run_tx`` thread), the
  frames cross a ``semguard channel`` emulator *process* (relay, no faults) and come back to the
  bench's receiver (``run_rx`` thread), which applies the same channel and decodes
  (``procs_sealed``: handshake + AES-256-GCM on every frame).  The channel runs at the receiver in
  both cases because a sealed frame's IQ cannot be perturbed under its tag.

Latency per frame = encode start to decoded output (p50/p99, ms); frames/s = frames / wall time.
Each configuration runs twice: unpaced (throughput) and paced at half the in-process rate
(latency without queueing).  Loopback 127.0.0.1 only; the emulator is stopped by its pid.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import argparse
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from semguard.codecs.zoo import DEFAULT_IMAGE_CODEC, DEFAULT_TEXT_CODEC, pretrained
from semguard.link import Link
from semguard.registry import build
from semguard.runtime._net import StopFlag
from semguard.runtime.rx import RxConfig, run_rx
from semguard.runtime.tx import TxConfig, run_tx

SRC = Path(__file__).resolve().parents[1] / "src"
SNR_DB = 10.0


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _source(kind: str, codec) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if kind == "image":
        return torch.rand(1, 3, 32, 32, generator=g)
    vocab = codec.config["vocab_size"]
    return torch.randint(1, vocab, (1, 16), generator=g)


def _summary(lat_ms: list[float], wall: float, n: int) -> dict:
    return {"frames": n, "frames_per_s": n / wall if wall > 0 else None,
            "latency_ms_p50": float(np.percentile(lat_ms, 50)) if lat_ms else None,
            "latency_ms_p99": float(np.percentile(lat_ms, 99)) if lat_ms else None}


def inproc_ops(link: Link, source: torch.Tensor, n: int, rate: float) -> dict:
    """The exact operations of the process pipeline (encode, channel, decode) in one loop."""
    codec, channel = link.codec, link.channel
    kwargs = codec.decode_kwargs(source)
    g = torch.Generator().manual_seed(1)
    lat, period = [], 1.0 / rate if rate else 0.0
    t0 = time.perf_counter()
    t_next = t0
    with torch.no_grad():
        for _ in range(n):
            if period:
                time.sleep(max(0.0, t_next - time.perf_counter()))
                t_next += period
            s = time.perf_counter()
            x = codec.encode(source, torch.tensor([SNR_DB]))
            y, state = channel(x, SNR_DB, generator=g)
            codec.decode(y, state, **kwargs)
            lat.append(1e3 * (time.perf_counter() - s))
    return _summary(lat, time.perf_counter() - t0, n)


def inproc(link: Link, source: torch.Tensor, n: int, rate: float) -> dict:
    g = torch.Generator().manual_seed(1)
    lat, period = [], 1.0 / rate if rate else 0.0
    t0 = time.perf_counter()
    t_next = t0
    with torch.no_grad():
        for _ in range(n):
            if period:
                time.sleep(max(0.0, t_next - time.perf_counter()))
                t_next += period
            s = time.perf_counter()
            link(source, SNR_DB, generator=g)
            lat.append(1e3 * (time.perf_counter() - s))
    return _summary(lat, time.perf_counter() - t0, n)


def procs(link: Link, source: torch.Tensor, n: int, rate: float, sealed: bool, tmp: Path) -> dict:
    codec, channel = link.codec, link.channel
    p_in, p_out, p_hs = _port(), _port(), _port()
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    emu = subprocess.Popen([sys.executable, "-m", "semguard.cli.runtime", "channel", "--listen",
                            f"tcp://127.0.0.1:{p_in}", "--forward", f"tcp://127.0.0.1:{p_out}", "--max-runtime", "120"],
                           env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "emu.log", "w"))
    lat: list[float] = []
    kwargs = codec.decode_kwargs(source)
    g = torch.Generator().manual_seed(1)
    enc_ms: dict[int, float] = {}
    done: list[float] = []

    def on_block(side: dict, iq: np.ndarray) -> None:
        with torch.no_grad():
            x = torch.from_numpy(iq.copy()).reshape(1, -1)
            y, state = channel(x, SNR_DB, generator=g)
            codec.decode(y, state, **kwargs)
        # tx stamps t_ns just before sending (after its pacing sleep); add the encode time
        lat.append((time.time_ns() - side["t_ns"]) / 1e6 + enc_ms[side["i"]])
        done.append(time.perf_counter())

    def blocks():
        with torch.no_grad():
            for i in range(n):
                s = time.perf_counter()
                x = codec.encode(source, torch.tensor([SNR_DB])).reshape(-1).numpy()
                enc_ms[i] = 1e3 * (time.perf_counter() - s)
                yield {"i": i}, x

    hs = f"tcp://127.0.0.1:{p_hs}" if sealed else None
    rx_cfg = RxConfig(f"tcp://127.0.0.1:{p_out}", handshake=hs, idle_timeout_s=5.0, max_runtime_s=120.0)
    tx_cfg = TxConfig(f"tcp://127.0.0.1:{p_in}", frames=n, rate=rate, handshake=hs)
    res: dict = {}
    rx_t = threading.Thread(target=lambda: res.update(run_rx(rx_cfg, on_block, StopFlag())))
    try:
        time.sleep(1.0)  # emulator up (binds in ~1 s without torch)
        rx_t.start()
        first = time.perf_counter()
        if not sealed:
            time.sleep(0.3)  # let rx connect; clear mode has no handshake to wait on
            first = time.perf_counter()
        run_tx(tx_cfg, blocks(), StopFlag())
        rx_t.join(130)
    finally:
        if emu.poll() is None:
            os.kill(emu.pid, signal.SIGTERM)
            emu.wait(10)
    wall = (done[-1] - first) if done else 0.0
    out = _summary(lat, wall, len(lat))
    out["delivered"] = res.get("delivered", 0)
    out["rejected"] = res.get("rejected", {})
    return out


def aead_cost(n_symbols: int, n: int = 2000) -> dict:
    """Microseconds per frame of the security path alone: pack + seal + encode vs pack + encode,
    and decode + open + unpack vs decode + unpack, for a block of ``n_symbols``."""
    from semguard.runtime.frames import Frame, FrameType, decode_frame, encode_frame, pack_data, unpack_data
    from semguard.runtime.secure import Opener, Sealer
    iq = np.ones(n_symbols, np.complex64)
    master = os.urandom(32)
    out = {}
    for sealed in (False, True):
        sealer, opener = Sealer(master), Opener(master, window=64, require_sealed=sealed)
        t0 = time.perf_counter()
        for i in range(n):
            f = Frame(FrameType.DATA, 0, i, pack_data({"i": i}, iq))
            raw = encode_frame(sealer.seal(f) if sealed else f)
            unpack_data(opener.open(decode_frame(raw)))
        out["sealed" if sealed else "clear"] = 1e6 * (time.perf_counter() - t0) / n
    return {"us_per_frame_clear": out["clear"], "us_per_frame_sealed": out["sealed"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runtime_bench.json")
    ap.add_argument("--frames", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(args.out).resolve().parent
    result: dict = {"snr_db": SNR_DB, "frames": args.frames, "codecs": {}}
    for kind, name in (("image", DEFAULT_IMAGE_CODEC), ("text", DEFAULT_TEXT_CODEC)):
        codec = pretrained(name).eval()
        link = Link(codec, build("channel", "awgn"))
        src = _source(kind, codec)
        row: dict = {"codec": name, "n_symbols": codec.n_symbols(tuple(src.shape[1:]))}
        row["frame_path"] = aead_cost(row["n_symbols"])
        row["inproc"] = inproc(link, src, args.frames, 0.0)
        pace = row["inproc"]["frames_per_s"] / 2
        row["pace_fps"] = pace
        row["inproc_paced"] = inproc(link, src, args.frames, pace)
        row["inproc_ops"] = inproc_ops(link, src, args.frames, 0.0)
        row["inproc_ops_paced"] = inproc_ops(link, src, args.frames, pace)
        for sealed in (False, True):
            tag = "procs_sealed" if sealed else "procs_clear"
            row[tag] = procs(link, src, args.frames, 0.0, sealed, tmp)
            row[tag + "_paced"] = procs(link, src, args.frames, pace, sealed, tmp)
        result["codecs"][kind] = row
        print(json.dumps({kind: row}, indent=1))
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
