"""What sealing costs in latency, measured as paired trials on one link of real processes.

    python bench/runtime_seal_ab.py --out bench/results/runtime_seal_ab.json \
        [--codecs image,text] [--sessions 8] [--pairs 200] [--separate 10] [--max-minutes 40]

The link is bench/runtime.py's: the bench's tx thread encodes and sends, one ``semguard channel``
emulator *process* relays (loopback only), the bench's rx thread opens, applies AWGN at 10 dB and
decodes.  A frame's latency is encode start to decoded output (ms); its *transport* part is the
tx send stamp (after encoding, before sealing) to the rx callback (after opening, before the
channel and decoding).

**Paired arm** (the estimate).  ``--sessions`` keyed links (a PLKG handshake each, then
AES-256-GCM), each streaming ``--pairs`` pairs of frames, paced at ``--pace`` of the in-process
rate (no queueing).  Within each pair one frame is sealed and one clear, the order drawn per pair
from a seeded generator, so load, position and order effects fall on both arms alike.  The first
``--warmup`` frames of every session are discarded.  Figures: the ratio of the sealed frames' p50
to the clear frames' p50, the same for p99, the median paired difference (ms), each with a 95 %
bootstrap interval that resamples whole runs of ``--segment`` consecutive pairs (the load is
correlated in time; resampling frames one by one would understate the interval).

**Separate arm** (the cause of the old separate-run gap).  ``--separate`` repeats of three short
links in a rotated order: ``clear`` (no handshake), ``keyed_clear`` (a PLKG handshake, then every
frame clear: the sealed run's setup without its sealing) and ``sealed`` (handshake, every frame
sealed); per-run p50 ratios against the clear run of the same repeat.

Bounded: the run stops adding sessions / repeats after ``--max-minutes`` and records how many it
did.  JSON: settings, load averages, per-codec ``paired`` and ``separate`` summaries and the raw
per-frame latencies.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from runtime import SNR_DB, Emulator, _source, encoded_blocks, inproc  # bench/runtime.py, the same link and codec calls
from semguard.codecs.zoo import DEFAULT_IMAGE_CODEC, DEFAULT_TEXT_CODEC, pretrained
from semguard.registry import build
from semguard.runtime._net import StopFlag
from semguard.runtime.rx import RxConfig, run_rx
from semguard.runtime.tx import TxConfig, run_tx


def link_run(emu: Emulator, codec, channel, source: torch.Tensor, n: int, rate: float, keyed: bool,
             seal: Callable[[int], bool] | None) -> dict:
    """One link session of ``n`` paced frames; ``keyed``: a PLKG handshake first; ``seal(i)``: which
    frames are sealed (None: all, when keyed).  Returns per-frame latency and transport (ms) by index."""
    kwargs = codec.decode_kwargs(source)
    g = torch.Generator().manual_seed(1)
    enc_ms: dict[int, float] = {}
    lat: dict[int, float] = {}
    transport: dict[int, float] = {}
    t_ready: list[float] = []

    def on_block(side: dict, iq: np.ndarray) -> None:
        t_in = time.time_ns()
        with torch.no_grad():
            y, state = channel(torch.from_numpy(iq.copy()).reshape(1, -1), SNR_DB, generator=g)
            codec.decode(y, state, **kwargs)
        i = side["i"]
        transport[i] = (t_in - side["t_ns"]) / 1e6
        lat[i] = (time.time_ns() - side["t_ns"]) / 1e6 + enc_ms[i]

    def blocks():
        return encoded_blocks(codec, source, n, enc_ms, t_ready)

    rx_cfg = RxConfig(emu.ep(emu.p_out), handshake=emu.ep(emu.p_relay) if keyed else None, idle_timeout_s=30.0,
                      max_runtime_s=900.0, handshake_timeout_s=20.0, require_sealed=keyed and seal is None)
    tx_cfg = TxConfig(emu.ep(emu.p_in), frames=n, rate=rate, handshake=emu.ep(emu.p_hs) if keyed else None,
                      handshake_timeout_s=120.0, seal_only=seal)
    res: dict = {}
    rx_t = threading.Thread(target=lambda: res.update(run_rx(rx_cfg, on_block, StopFlag())))
    rx_t.start()
    if not keyed:
        time.sleep(0.5)  # let rx connect; a clear link has no handshake to wait on
    t0 = time.perf_counter()
    run_tx(tx_cfg, blocks(), StopFlag())
    rx_t.join(900)
    return {"lat": lat, "transport": transport, "delivered": res.get("delivered", 0),
            "rejected": res.get("rejected", {}), "key_bits": res.get("key", {}).get("key_bits") if keyed else None,
            "handshake_s": (t_ready[0] - t0) if keyed and t_ready else None}


def _segments(pairs: list[tuple[float, float]], size: int) -> list[np.ndarray]:
    arr = np.asarray(pairs, dtype=np.float64)
    return [arr[i:i + size] for i in range(0, len(arr) - size + 1, size)]


def paired_summary(sessions: list[list[tuple[float, float]]], segment: int, n_boot: int, seed: int = 0) -> dict:
    """Ratios of sealed to clear p50 / p99 and the median paired difference, with 95 % intervals from a
    bootstrap over runs of ``segment`` consecutive (sealed, clear) pairs."""
    segs = [s for sess in sessions for s in _segments(sess, segment)]
    if not segs:
        return {}
    rng = np.random.default_rng(seed)

    def figures(chosen: list[np.ndarray]) -> tuple[float, float, float]:
        a = np.concatenate(chosen)
        return (float(np.percentile(a[:, 0], 50) / np.percentile(a[:, 1], 50)),
                float(np.percentile(a[:, 0], 99) / np.percentile(a[:, 1], 99)),
                float(np.median(a[:, 0] - a[:, 1])))

    point = figures(segs)
    boot = np.array([figures([segs[j] for j in rng.integers(0, len(segs), len(segs))]) for _ in range(n_boot)])
    lo, hi = np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)
    allp = np.concatenate(segs)
    names = ("p50_ratio", "p99_ratio", "median_diff_ms")
    out = {k: {"estimate": point[j], "ci95": [float(lo[j]), float(hi[j])]} for j, k in enumerate(names)}
    out.update({"pairs": int(len(allp)), "segments": len(segs), "segment_pairs": segment,
                "sealed_p50_ms": float(np.percentile(allp[:, 0], 50)), "clear_p50_ms": float(np.percentile(allp[:, 1], 50)),
                "sealed_p99_ms": float(np.percentile(allp[:, 0], 99)), "clear_p99_ms": float(np.percentile(allp[:, 1], 99)),
                "share_sealed_slower": float(np.mean(allp[:, 0] > allp[:, 1]))})
    return out


def paired_arm(emu, codec, channel, src, rate: float, args, deadline: float) -> dict:
    sessions: dict[str, list[list[tuple[float, float]]]] = {"latency": [], "transport": []}
    meta = []
    for s in range(args.sessions):
        if time.monotonic() > deadline:
            break
        rng = np.random.default_rng(1000 + s)
        sealed_first = rng.integers(0, 2, args.pairs).astype(bool)  # per pair: which of its two frames is sealed
        n = 2 * args.pairs + args.warmup

        def seal(i: int, w=args.warmup, f=sealed_first) -> bool:
            if i < w:
                return i % 2 == 0
            k, r = divmod(i - w, 2)
            return bool(f[k]) == (r == 0)

        run = link_run(emu, codec, channel, src, n, rate, True, seal)
        meta.append({k: run[k] for k in ("delivered", "rejected", "key_bits", "handshake_s")})
        for key, field in (("latency", "lat"), ("transport", "transport")):
            d = run[field]
            pairs = []
            for k in range(args.pairs):
                i0, i1 = args.warmup + 2 * k, args.warmup + 2 * k + 1
                if i0 in d and i1 in d:  # a pair counts only when both frames arrived
                    ws, wc = (i0, i1) if sealed_first[k] else (i1, i0)
                    pairs.append((d[ws], d[wc]))
            sessions[key].append(pairs)
        print(json.dumps({"session": s, **meta[-1], "pairs": len(sessions["latency"][-1])}), flush=True)
    return {"sessions": meta,
            "latency": paired_summary(sessions["latency"], args.segment, args.boot),
            "transport": paired_summary(sessions["transport"], args.segment, args.boot),
            "raw_ms": {k: [[[round(a, 3), round(b, 3)] for a, b in p] for p in v] for k, v in sessions.items()}}


def separate_arm(emu, codec, channel, src, rate: float, args, deadline: float) -> dict:
    configs = ("clear", "keyed_clear", "sealed")
    reps = []
    for r in range(args.separate):
        if time.monotonic() > deadline:
            break
        rep: dict = {"order": []}
        for k in range(3):
            cfg = configs[(r + k) % 3]
            rep["order"].append(cfg)
            run = link_run(emu, codec, channel, src, args.separate_frames, rate, cfg != "clear",
                           (lambda i: False) if cfg == "keyed_clear" else None)
            lat = [run["lat"][i] for i in sorted(run["lat"]) if i >= args.warmup]
            tr = [run["transport"][i] for i in sorted(run["transport"]) if i >= args.warmup]
            rep[cfg] = {"p50_ms": float(np.median(lat)), "p99_ms": float(np.percentile(lat, 99)),
                        "transport_p50_ms": float(np.median(tr)), "delivered": run["delivered"],
                        "handshake_s": run["handshake_s"], "lat_ms": [round(v, 3) for v in lat]}
        reps.append(rep)
        print(json.dumps({"repeat": r, **{c: {k: v for k, v in rep[c].items() if k != "lat_ms"} for c in configs}}),
              flush=True)

    def spread(v: list[float]) -> dict:
        return {"median": float(np.median(v)), "min": float(min(v)), "max": float(max(v)), "n": len(v)} if v else {}

    return {"repeats": reps, "frames": args.separate_frames,
            "p50_over_clear": {c: spread([rep[c]["p50_ms"] / rep["clear"]["p50_ms"] for rep in reps])
                               for c in ("keyed_clear", "sealed")},
            "p50_sealed_over_keyed_clear": spread([rep["sealed"]["p50_ms"] / rep["keyed_clear"]["p50_ms"] for rep in reps])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/runtime_seal_ab.json")
    ap.add_argument("--codecs", default="image,text")
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--pairs", type=int, default=200, help="pairs per session")
    ap.add_argument("--warmup", type=int, default=10, help="frames discarded at the start of every link")
    ap.add_argument("--pace", type=float, default=0.4, help="fraction of the in-process rate to send at")
    ap.add_argument("--segment", type=int, default=20, help="pairs per bootstrap block")
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--separate", type=int, default=10, help="repeats of the separate-run arm (0: skip)")
    ap.add_argument("--separate-frames", type=int, default=70)
    ap.add_argument("--max-minutes", type=float, default=40.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    for k, v in (("sessions", args.sessions), ("pairs", args.pairs), ("segment", args.segment), ("boot", args.boot)):
        if v < 1:
            raise SystemExit(f"--{k} must be >= 1, got {v}")
    if not 0 < args.pace <= 1:
        raise SystemExit(f"--pace must be in (0, 1], got {args.pace}")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 60 * args.max_minutes
    kinds = args.codecs.split(",")
    names = {"image": DEFAULT_IMAGE_CODEC, "text": DEFAULT_TEXT_CODEC}
    result: dict = {"name": "runtime_seal_ab", "settings": {k: v for k, v in vars(args).items() if k != "out"},
                    "snr_db": SNR_DB, "load_avg_start": os.getloadavg(), "codecs": {}}
    emu = Emulator(out.resolve().parent)
    try:
        for kind in kinds:
            codec = pretrained(names[kind]).eval()
            channel = build("channel", "awgn")
            src = _source(kind, codec)
            inproc(codec, channel, src, 20, 0.0)  # warm-up
            rate = args.pace * inproc(codec, channel, src, 100, 0.0)["frames_per_s"]
            share = (deadline - time.monotonic()) / (len(kinds) - kinds.index(kind))
            row: dict = {"codec": names[kind], "rate_fps": rate}
            row["paired"] = paired_arm(emu, codec, channel, src, rate, args,
                                       time.monotonic() + (0.7 if args.separate else 1.0) * share)
            print(json.dumps({kind: {k: row["paired"][k] for k in ("latency", "transport")}}, indent=1), flush=True)
            if args.separate:
                row["separate"] = separate_arm(emu, codec, channel, src, rate, args, time.monotonic() + 0.3 * share)
                print(json.dumps({kind: {k: v for k, v in row["separate"].items() if k != "repeats"}}), flush=True)
            result["codecs"][kind] = row
            result["load_avg_end"] = os.getloadavg()
            out.write_text(json.dumps(result, indent=1))  # partial results survive a stop
    finally:
        emu.stop()
    result["load_avg_end"] = os.getloadavg()
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
