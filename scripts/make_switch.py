"""Choose the threshold of an SNR-switched image codec on the validation photos (OpenCV's
baboon and home, held out of training; never the shipped evaluation photos).

    python scripts/make_switch.py LOW HIGH [--grid -4 -2 0 ... 22] [--out FILE [--half]]

LOW and HIGH are zoo names or safetensors files at the same cbr.  Over AWGN, the threshold is
the lowest grid SNR from which HIGH's validation PSNR stays at or above LOW's at every higher
grid point (HIGH is meant to win at high SNR).  Prints the two PSNR rows, the threshold and the
``SwitchEntry`` to put in ``semguard/codecs/zoo.py`` (shipped switched codecs are their two
parts plus this threshold).  ``--out`` also writes a standalone weight file holding both parts.
"""

from __future__ import annotations

import argparse
import json
import logging

import torch

from semguard.channels import AWGN
from semguard.codecs.switch import SNRSwitch, choose_threshold
from semguard.codecs.zoo import ZOO, load_weights, pretrained, save_weights, sha256_file
from semguard.data.sources import image_source
from semguard.evaluation.image_eval import eval_codec

log = logging.getLogger("make_switch")


def _load(spec: str) -> tuple[torch.nn.Module, str]:
    """(codec, sha256 of its weights) of a zoo name (sha256-checked) or a weight file."""
    if spec in ZOO:
        return pretrained(spec), ZOO[spec].sha256
    return load_weights(spec), sha256_file(spec)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("low")
    p.add_argument("high")
    p.add_argument("--out", default=None, help="also write a standalone weight file of the switched codec")
    p.add_argument("--grid", type=float, nargs="+", default=[float(s) for s in range(-4, 23, 2)])
    p.add_argument("--half", action="store_true", help="store float16 weights")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    (low, low_sha), (high, high_sha) = _load(args.low), _load(args.high)
    val = torch.stack(image_source("debian-photos").val)
    rows = {side: [eval_codec(c, val, AWGN(), s)["psnr"] for s in args.grid]
            for side, c in (("low", low), ("high", high))}
    for side, row in rows.items():
        log.info("%-4s %s", side, " ".join(f"{v:6.2f}" for v in row))
    thr = choose_threshold(args.grid, rows["low"], rows["high"])
    log.info("threshold %.1f dB; the zoo entry:\n    SwitchEntry(%r, %r, %r,\n        (%r,\n         %r), ...)",
             thr, args.low, args.high, thr, low_sha, high_sha)
    if args.out:
        sw = SNRSwitch.of(low, high, thr)
        extra = {"threshold_from": json.dumps({"grid_db": args.grid, "validation_psnr": rows,
                                               "photos": "debian-photos validation (OpenCV baboon, home)"}),
                 "low_source": args.low, "high_source": args.high}
        digest = save_weights(sw, "switched", args.out, half=args.half, extra=extra)
        log.info("wrote %s sha256 %s", args.out, digest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
