"""Spreading benchmark: shipped image codecs with and without DFT-spread precoding
(``semguard.codecs.precoded``) over Rayleigh fading of several coherence lengths, on the shipped
256x256 photos, same channel draws for both; PSNR and the gain, written as JSON.

    python bench/spreading.py [--codecs softcast-cbr1_6 analog-cbr1_6 adjscc-cbr1_6]
                              [--coherence 16 64 1024] [--snr 0 10 20] [--equalizer mmse]
                              [--realizations 3] [--images 7] [--out bench-spreading.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from semguard.channels import Rayleigh
from semguard.codecs.precoded import Precoded
from semguard.codecs.zoo import ZOO, pretrained
from semguard.evaluation.image_eval import eval_codec

from _photos import add_photo_args, photo_setup  # bench/, beside this script

log = logging.getLogger("bench.spreading")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--codecs", nargs="+", default=["softcast-cbr1_6", "analog-cbr1_6", "adjscc-cbr1_6"],
                   choices=sorted(ZOO))
    p.add_argument("--coherence", type=int, nargs="+", default=[16, 64, 1024])
    p.add_argument("--snr", type=float, nargs="+", default=[0.0, 10.0, 20.0])
    p.add_argument("--equalizer", default="mmse", choices=["mmse", "zf"])
    p.add_argument("--realizations", type=int, default=3)
    p.add_argument("--out", default="bench-spreading.json")
    add_photo_args(p)
    args = p.parse_args(argv)
    images = photo_setup(args)
    rows = []
    for name in args.codecs:
        plain = pretrained(name)
        spread = Precoded.around(plain)
        for coh in args.coherence:
            channel = Rayleigh(coherence=coh, equalizer=args.equalizer)
            for snr in args.snr:
                t0 = time.perf_counter()
                a = eval_codec(plain, images, channel, snr, realizations=args.realizations, seed=1)["psnr"]
                b = eval_codec(spread, images, channel, snr, realizations=args.realizations, seed=1)["psnr"]
                rows.append({"codec": name, "coherence": coh, "equalizer": args.equalizer, "snr_db": snr,
                             "psnr_plain": a, "psnr_spread": b, "gain_db": b - a,
                             "seconds": time.perf_counter() - t0})
                log.info("%-16s coherence %5d  %5.1f dB  plain %6.2f  spread %6.2f  gain %+5.2f", name, coh, snr,
                         a, b, b - a)
    out = {"name": "spreading", "images": f"shipped photos x{images.shape[0]} 256x256",
           "realizations": args.realizations, "results": rows}
    Path(args.out).write_text(json.dumps(out, indent=1))
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
