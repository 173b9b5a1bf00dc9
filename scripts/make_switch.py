"""Build the SNR-switched image codec from two weight files, choosing the threshold on the
validation photos (OpenCV's baboon and home, held out of training; never the shipped evaluation
photos).

    python scripts/make_switch.py LOW HIGH OUT [--grid -4 -2 0 ... 22] [--half]

LOW and HIGH are zoo names or safetensors files at the same cbr.  Over AWGN, the threshold is
the lowest grid SNR from which HIGH's validation PSNR stays at or above LOW's at every higher
grid point (HIGH is meant to win at high SNR).  Prints the two PSNR rows, the threshold and the
sha256 of OUT.
"""

from __future__ import annotations

import argparse
import json
import logging
from importlib import resources
from pathlib import Path

import torch
from safetensors import safe_open

from semguard.channels import AWGN
from semguard.codecs.switch import choose_threshold
from semguard.codecs.zoo import ZOO, load_weights, pretrained, save_weights
from semguard.data.sources import image_source
from semguard.evaluation.image_eval import eval_codec
from semguard.registry import build

log = logging.getLogger("make_switch")


def _load(spec: str) -> tuple[str, torch.nn.Module]:
    """(registry name, codec) of a zoo name or weight file (sha256-checked for zoo names)."""
    path = Path(str(resources.files("semguard.codecs") / "weights" / ZOO[spec].file)) if spec in ZOO else Path(spec)
    codec = pretrained(spec) if spec in ZOO else load_weights(path)
    with safe_open(str(path), framework="pt") as f:
        return (f.metadata() or {})["codec"], codec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("low")
    p.add_argument("high")
    p.add_argument("out")
    p.add_argument("--grid", type=float, nargs="+", default=[float(s) for s in range(-4, 23, 2)])
    p.add_argument("--half", action="store_true", help="store float16 weights")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    (lname, low), (hname, high) = _load(args.low), _load(args.high)
    val = torch.stack(image_source("debian-photos").val)
    rows = {side: [eval_codec(c, val, AWGN(), s)["psnr"] for s in args.grid] for side, c in (("low", low), ("high", high))}
    for side, row in rows.items():
        log.info("%-4s %s", side, " ".join(f"{v:6.2f}" for v in row))
    thr = choose_threshold(args.grid, rows["low"], rows["high"])
    sw = build("codec", "switched", low={"codec": lname, "config": low.config},
               high={"codec": hname, "config": high.config}, threshold_db=thr)
    sw.low.load_state_dict(low.state_dict())
    sw.high.load_state_dict(high.state_dict())
    extra = {"threshold_from": json.dumps({"grid_db": args.grid, "validation_psnr": rows,
                                           "photos": "debian-photos validation (OpenCV baboon, home)"}),
             "low_source": args.low, "high_source": args.high}
    digest = save_weights(sw, "switched", args.out, half=args.half, extra=extra)
    log.info("threshold %.1f dB; wrote %s sha256 %s", thr, args.out, digest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
