"""Benchmark of the semantic link as processes vs the same link in one process, measured side by side.

    python bench/runtime.py --out runtime_bench.json [--frames 150] [--repeats 5]

For the default image codec and the default text codec (``semguard.codecs.zoo``), one source per
frame, AWGN at 10 dB, three configurations:

* ``inproc``: the very calls the process pipeline makes (``codec.encode``, ``channel``,
  ``codec.decode``) in one loop;
* ``clear`` / ``sealed``: the bench encodes and sends (``run_tx`` thread), the frames cross one
  ``semguard channel`` emulator *process* (relay, no faults; started once, stopped by its pid) and
  come back to the bench's receiver (``run_rx`` thread), which applies the same channel and decodes.
  ``sealed``: the PLKG handshake through the emulator's relay (timed: ``handshake_s``, and amortised
  over the run in ``frames_per_s_with_handshake``), then AES-256-GCM on every frame.

Each configuration runs unpaced (throughput: frames / (last decode - first send)) and paced at half
the in-process rate (latency without queueing: encode start to decoded output, p50 / p99).  The three
run interleaved, in a rotated order, ``--repeats`` times, so slow drifts of a shared machine's load
hit all three alike; the ratios (clear / inproc throughput, sealed / clear latency) are taken within a
repeat and summarised by their median, min and max.  ``mixed`` (paced) is one keyed link whose even
frames are sealed and odd frames clear, so each sealed frame is timed beside a clear one under the same
load (``mixed_p50_sealed_over_clear``): the closest this machine allows to a quiet A/B.  ``pooled_paced`` is the p50 / p99 of every paced
sealed frame over that of every paced clear frame, with a bootstrap interval over repeats.  Loopback
127.0.0.1 only.
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



def encoded_blocks(codec, source, n: int, enc_ms: dict[int, float], t_ready: list[float]):
    """The tx's blocks: ``n`` encodes of ``source`` at ``SNR_DB``, each timed into ``enc_ms[i]`` (ms),
    the start time appended to ``t_ready``; yields ``({"i": i}, symbols)``."""
    t_ready.append(time.perf_counter())
    with torch.no_grad():
        for i in range(n):
            s = time.perf_counter()
            x = codec.encode(source, torch.tensor([SNR_DB])).reshape(-1).numpy()
            enc_ms[i] = 1e3 * (time.perf_counter() - s)
            yield {"i": i}, x


def _source(kind: str, codec) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if kind == "image":
        return torch.rand(1, 3, 32, 32, generator=g)
    vocab = codec.config["vocab_size"]
    return torch.randint(1, vocab, (1, 16), generator=g)


def _summary(lat_ms: list[float], wall: float, n: int) -> dict:
    return {"frames": n, "lat_ms": [round(v, 3) for v in lat_ms], "frames_per_s": n / wall if wall > 0 else None,
            "latency_ms_p50": float(np.percentile(lat_ms, 50)) if lat_ms else None,
            "latency_ms_p99": float(np.percentile(lat_ms, 99)) if lat_ms else None}


def inproc(codec, channel, source: torch.Tensor, n: int, rate: float) -> dict:
    """The exact operations of the process pipeline (encode, channel, decode) in one loop."""
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


class Emulator:
    """One ``semguard channel`` process (data relay and handshake relay) for the whole bench."""

    def __init__(self, tmp: Path, extra: tuple[str, ...] = ()) -> None:
        self.p_in, self.p_out, self.p_hs, self.p_relay = _port(), _port(), _port(), _port()
        env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
        self.stats = tmp / "bench_emu.json"
        self.stats.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "semguard.cli.runtime", "channel", "--listen", self.ep(self.p_in), "--forward",
             self.ep(self.p_out), "--hs-listen", self.ep(self.p_relay), "--hs-forward", self.ep(self.p_hs),
             "--stats", str(self.stats), "--max-runtime", "3000", *extra],
            env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "bench_emu.log", "w"))
        t = time.monotonic() + 120
        while not self.stats.exists():  # written once both relays are bound
            if time.monotonic() > t or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("the emulator did not start (see bench_emu.log)")
            time.sleep(0.2)

    @staticmethod
    def ep(port: int) -> str:
        return f"tcp://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)


def procs(emu: Emulator, codec, channel, source: torch.Tensor, n: int, rate: float, sealed: bool,
          mixed: int | None = None) -> dict:
    """One process-link run; ``mixed`` (0 or 1): keyed, but only the frames with ``(i + mixed)`` even
    sealed, the others clear, so each sealed frame is timed next to a clear one under the same load (the
    phase alternates between repeats, so no parity effect can pass for a sealing cost)."""
    mixed_on = mixed is not None
    lat: list[float] = []
    by_i: dict[int, float] = {}
    kwargs = codec.decode_kwargs(source)
    g = torch.Generator().manual_seed(1)
    enc_ms: dict[int, float] = {}
    first_ns: list[int] = []
    done_ns: list[int] = []
    t_ready: list[float] = []   # run_tx asks for the first block once its handshake is done

    def on_block(side: dict, iq: np.ndarray) -> None:
        with torch.no_grad():
            x = torch.from_numpy(iq.copy()).reshape(1, -1)
            y, state = channel(x, SNR_DB, generator=g)
            codec.decode(y, state, **kwargs)
        now = time.time_ns()
        # tx stamps t_ns just before sending (after its pacing sleep); add the encode time
        lat.append((now - side["t_ns"]) / 1e6 + enc_ms[side["i"]])
        by_i[side["i"]] = lat[-1]
        if side["i"] == 0:
            first_ns.append(side["t_ns"] - int(enc_ms[0] * 1e6))
        done_ns.append(now)

    def blocks():
        return encoded_blocks(codec, source, n, enc_ms, t_ready)

    hs_rx = emu.ep(emu.p_relay) if sealed else None
    hs_tx = emu.ep(emu.p_hs) if sealed else None
    rx_cfg = RxConfig(emu.ep(emu.p_out), handshake=hs_rx, idle_timeout_s=10.0, max_runtime_s=300.0,
                      handshake_timeout_s=20.0, require_sealed=not mixed_on)
    tx_cfg = TxConfig(emu.ep(emu.p_in), frames=n, rate=rate, handshake=hs_tx, handshake_timeout_s=120.0,
                      seal_only=(lambda i: (i + mixed) % 2 == 0) if mixed_on else None)
    res: dict = {}
    rx_t = threading.Thread(target=lambda: res.update(run_rx(rx_cfg, on_block, StopFlag())))
    rx_t.start()
    if not sealed:
        time.sleep(0.5)  # let rx connect; clear mode has no handshake to wait on
    t_start = time.perf_counter()
    run_tx(tx_cfg, blocks(), StopFlag())
    rx_t.join(300)
    wall = (done_ns[-1] - first_ns[0]) / 1e9 if done_ns and first_ns else 0.0
    out = _summary(lat, wall, len(lat))
    out["delivered"] = res.get("delivered", 0)
    out["rejected"] = res.get("rejected", {})
    if mixed_on:
        out["lat_ms_sealed"] = [round(v, 3) for i, v in sorted(by_i.items()) if (i + mixed) % 2 == 0]
        out["lat_ms_clear"] = [round(v, 3) for i, v in sorted(by_i.items()) if (i + mixed) % 2 == 1]
    if sealed:
        out["key_bits"] = res.get("key", {}).get("key_bits")
        # the one-off handshake (probes, reconciliation, signatures through the relay), amortised over the run
        out["handshake_s"] = t_ready[0] - t_start if t_ready else None
        if out["handshake_s"] is not None and wall > 0:
            out["frames_per_s_with_handshake"] = len(lat) / (wall + out["handshake_s"])
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


def _spread(values: list[float]) -> dict:
    v = [x for x in values if x is not None]
    return {"median": float(np.median(v)), "min": float(min(v)), "max": float(max(v)), "n": len(v)} if v else {}


def pooled_ratio(runs: list[dict], num: str, den: str, q: float, n_boot: int = 2000,
                 keys: tuple[str, str] = ("lat_ms", "lat_ms")) -> dict:
    """Percentile ``q`` of every frame latency of ``num`` over that of ``den``, pooled across repeats,
    with a 95 % bootstrap interval that resamples whole repeats (the load drifts between repeats)."""
    rng = np.random.default_rng(0)

    def ratio(idx: np.ndarray) -> float:
        a = np.concatenate([runs[i][num][keys[0]] for i in idx])
        b = np.concatenate([runs[i][den][keys[1]] for i in idx])
        return float(np.percentile(a, q) / np.percentile(b, q))

    k = len(runs)
    boot = [ratio(rng.integers(0, k, k)) for _ in range(n_boot)]
    return {"ratio": ratio(np.arange(k)), "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]}


def bench_codec(emu: Emulator, kind: str, name: str, frames: int, repeats: int) -> dict:
    codec = pretrained(name).eval()
    channel = build("channel", "awgn")
    src = _source(kind, codec)
    row: dict = {"codec": name, "n_symbols": codec.n_symbols(tuple(src.shape[1:])), "runs": []}
    row["frame_path_us"] = aead_cost(row["n_symbols"])
    inproc(codec, channel, src, 20, 0.0)  # warm-up
    pace = inproc(codec, channel, src, frames, 0.0)["frames_per_s"] / 2
    row["pace_fps"] = pace
    configs = ("inproc", "clear", "sealed", "mixed")
    for rep in range(repeats):
        run: dict = {"order": []}
        for k in range(len(configs)):
            cfg = configs[(rep + k) % len(configs)]
            run["order"].append(cfg)
            for paced in (False, True) if cfg != "mixed" else (True,):
                rate = pace if paced else 0.0
                tag = cfg + ("_paced" if paced else "")
                run[tag] = (inproc(codec, channel, src, frames, rate) if cfg == "inproc"
                            else procs(emu, codec, channel, src, frames, rate, cfg != "clear",
                                  rep % 2 if cfg == "mixed" else None))
        row["runs"].append(run)
        print(json.dumps({kind: {"repeat": rep, **{t: {k: v for k, v in r.items() if k not in ("rejected", "lat_ms", "lat_ms_sealed", "lat_ms_clear")}
                                                   for t, r in run.items() if t != "order"}}}), flush=True)
    rs = row["runs"]
    row["ratios"] = {
        "throughput_clear_over_inproc": _spread([r["clear"]["frames_per_s"] / r["inproc"]["frames_per_s"] for r in rs]),
        "throughput_sealed_over_inproc": _spread([r["sealed"]["frames_per_s"] / r["inproc"]["frames_per_s"] for r in rs]),
        "p50_sealed_over_clear": _spread([r["sealed_paced"]["latency_ms_p50"] / r["clear_paced"]["latency_ms_p50"] for r in rs]),
        "p99_sealed_over_clear": _spread([r["sealed_paced"]["latency_ms_p99"] / r["clear_paced"]["latency_ms_p99"] for r in rs]),
        "p50_clear_over_inproc": _spread([r["clear_paced"]["latency_ms_p50"] / r["inproc_paced"]["latency_ms_p50"] for r in rs]),
        "throughput_sealed_over_clear": _spread([r["sealed"]["frames_per_s"] / r["clear"]["frames_per_s"] for r in rs]),
        "throughput_sealed_with_handshake_over_clear": _spread(
            [r["sealed"]["frames_per_s_with_handshake"] / r["clear"]["frames_per_s"] for r in rs]),
    }
    row["handshake_s"] = _spread([r[t]["handshake_s"] for r in rs for t in ("sealed", "sealed_paced")])
    row["pooled_paced"] = {q: pooled_ratio(rs, "sealed_paced", "clear_paced", q) for q in (50, 99)}
    for q in (50, 99):  # the interleaved measure: sealed and clear frames of one paced run
        row["ratios"][f"mixed_p{q}_sealed_over_clear"] = _spread(
            [float(np.percentile(r["mixed_paced"]["lat_ms_sealed"], q) / np.percentile(r["mixed_paced"]["lat_ms_clear"], q))
             for r in rs])
    row["pooled_mixed"] = {q: pooled_ratio(rs, "mixed_paced", "mixed_paced", q, keys=("lat_ms_sealed", "lat_ms_clear"))
                           for q in (50, 99)}
    row["absolute"] = {tag: {m: _spread([r[tag][m] for r in rs]) for m in ("frames_per_s", "latency_ms_p50", "latency_ms_p99")}
                       for tag in ("inproc", "clear", "sealed", "inproc_paced", "clear_paced", "sealed_paced",
                                   "mixed_paced")}
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runtime_bench.json")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--codecs", default="image,text")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(args.out).resolve().parent
    result: dict = {"snr_db": SNR_DB, "frames": args.frames, "repeats": args.repeats, "codecs": {}}
    names = {"image": DEFAULT_IMAGE_CODEC, "text": DEFAULT_TEXT_CODEC}
    emu = Emulator(tmp)
    try:
        for kind in args.codecs.split(","):
            result["codecs"][kind] = bench_codec(emu, kind, names[kind], args.frames, args.repeats)
            print(json.dumps({kind: {"ratios": result["codecs"][kind]["ratios"]}}, indent=1), flush=True)
    finally:
        emu.stop()
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
