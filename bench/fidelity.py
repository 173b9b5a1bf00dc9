"""Fidelity benchmark: PSNR and MS-SSIM vs SNR of the learned image codec(s) next to the
separation baselines (JPEG/WebP at the ideal-code limit, WebP + 5G LDPC + QAM with AMC) at
cbr 1/6 and 1/12 on the shipped 256x256 photos, plus codec throughput (images/s).

    python bench/fidelity.py [--out bench-fidelity.json] [--snr 0 5 10 15 20] [--images 7]
                             [--weights cbr=FILE ...] [--channels awgn rayleigh]

Codecs: every shipped zoo entry at each cbr (the learned ones and the fitted SoftCast-style
analog codec); add others with ``--weights`` (files written by ``semguard train ... --export``).
A cbr without a codec is reported for the baselines only, and the JSON says so.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from fractions import Fraction
from pathlib import Path

import torch

from semguard.codecs.zoo import ZOO, load_weights, pretrained
from semguard.evaluation.image_eval import eval_baseline, eval_codec
from semguard.registry import build

from _photos import add_photo_args, photo_setup  # bench/, beside this script

log = logging.getLogger("bench.fidelity")
BASELINES = ("jpeg_capacity", "webp_capacity", "webp_ldpc")


def throughput(codec: torch.nn.Module, images: torch.Tensor, repeats: int = 3) -> dict[str, float]:
    """Encoder and decoder images/s (batch of all images, best of ``repeats``)."""
    channel = build("channel", "awgn")
    enc_t, dec_t = [], []
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            sym = codec.encode(images, 10.0)
            t1 = time.perf_counter()
            y, state = channel(sym, 10.0)
            t2 = time.perf_counter()
            codec.decode(y, state, size=tuple(images.shape[-2:]))
            t3 = time.perf_counter()
            enc_t.append(t1 - t0)
            dec_t.append(t3 - t2)
    n = images.shape[0]
    return {"encode_images_per_s": n / min(enc_t), "decode_images_per_s": n / min(dec_t)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench-fidelity.json")
    p.add_argument("--snr", type=float, nargs="+", default=[0.0, 5.0, 10.0, 15.0, 20.0])
    p.add_argument("--channels", nargs="+", default=["awgn"])
    p.add_argument("--realizations", type=int, default=3, help="channel draws per image on fading channels")
    p.add_argument("--weights", nargs="*", default=[], help="extra learned codecs as cbr=FILE (cbr like 1/12)")
    p.add_argument("--cbr", nargs="+", default=["1/6", "1/12"], help="bandwidth ratios to measure")
    add_photo_args(p)
    args = p.parse_args(argv)

    images = photo_setup(args)
    codecs: dict[Fraction, list[tuple[str, torch.nn.Module]]] = {}
    for name in ZOO:
        c = pretrained(name)
        if c.output_key == "x_hat":  # image codecs (the switched one has no cbr key of its own)
            cbr = Fraction(c.n_symbols(tuple(images.shape[1:])), images[0].numel()).limit_denominator(100)
            codecs.setdefault(cbr, []).append((name, c))
    for spec in args.weights:
        cbr, _, path = spec.partition("=")
        codecs.setdefault(Fraction(cbr), []).append((Path(path).stem, load_weights(path)))

    results: dict[str, object] = {"name": "fidelity", "images": f"shipped photos x{images.shape[0]} 256x256",
                                  "snr_db": args.snr, "results": []}
    rows = results["results"]
    assert isinstance(rows, list)
    for cbr in (Fraction(c) for c in args.cbr):
        n = int(cbr * images[0].numel())
        at_cbr = codecs.get(cbr, [])
        if not at_cbr:
            log.info("cbr %s: no codec shipped or given; baselines only", cbr)
        for name, codec in at_cbr:
            rows.append({"codec": name, "cbr": str(cbr), "n_symbols": n, **throughput(codec, images)})
        for ch_name in args.channels:
            channel = build("channel", ch_name)
            reps = args.realizations if channel.fading else 1
            for snr in args.snr:
                entries = [(b, lambda b=b: eval_baseline(build("baseline", b), images, channel, snr, n,
                                                         realizations=reps)) for b in BASELINES]
                entries[:0] = [(name, lambda c=codec: eval_codec(c, images, channel, snr, realizations=reps))
                               for name, codec in at_cbr]
                for name, measure in entries:
                    t0 = time.perf_counter()
                    m = measure()
                    row = {"codec": name, "cbr": str(cbr), "n_symbols": n, "channel": ch_name, "snr_db": snr,
                           **m, "seconds": time.perf_counter() - t0}
                    rows.append(row)
                    log.info("cbr %-5s %-9s %5.1f dB %-16s PSNR %6.2f  MS-SSIM %.4f%s", cbr, ch_name, snr, name,
                             m["psnr"], m.get("ms_ssim", float("nan")),
                             f"  delivered {m['delivered']:.2f}" if "delivered" in m else "")
    Path(args.out).write_text(json.dumps(results, indent=1))
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
