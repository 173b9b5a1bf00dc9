"""Task codec benchmark: Fashion-MNIST accuracy vs SNR over AWGN and Rayleigh, next to a
noiseless reference classifier (the same architecture trained and evaluated at 60 dB).

    python bench/task.py [--out bench-task.json] [--full]

By default the 2000 test images shipped in the package; ``--full`` uses the whole 10k test
split (needs the Fashion-MNIST files: ``apt-get install dataset-fashion-mnist``).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.data.sources import labelled_source
from semguard.metrics.image import accuracy
from semguard.registry import build

log = logging.getLogger("bench.task")


@torch.no_grad()
def acc(codec: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, channel: str, snr: float, reps: int) -> float:
    ch = build("channel", channel)
    g = torch.Generator().manual_seed(0)
    return sum(float(accuracy(codec(x, ch, snr, generator=g)["logits"], y)) for _ in range(reps)) / reps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench-task.json")
    p.add_argument("--full", action="store_true")
    p.add_argument("--snr", type=float, nargs="+", default=[-5.0, 0.0, 5.0, 10.0, 15.0, 20.0])
    p.add_argument("--realizations", type=int, default=5, help="channel draws per image on Rayleigh")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.full:
        src = labelled_source("fashion-mnist")
        x, y, which = src.test_x, src.test_y, "fashion-mnist test (10000)"
    else:
        x, y = shipped_fashion_mnist()
        which = f"fashion-mnist test[:{x.shape[0]}] (shipped)"
    codec = pretrained("task-fmnist")
    ref = pretrained("task-fmnist-noiseless")
    reference = acc(ref, x, y, "awgn", 60.0, 1)
    rows = []
    for ch in ("awgn", "rayleigh"):
        reps = 1 if ch == "awgn" else args.realizations
        for snr in args.snr:
            a = acc(codec, x, y, ch, snr, reps)
            rows.append({"channel": ch, "snr_db": snr, "accuracy": a, "gap_to_noiseless_points": 100 * (reference - a)})
            log.info("%-9s %5.1f dB  accuracy %.4f  (noiseless reference %.4f, gap %.2f points)", ch, snr, a,
                     reference, 100 * (reference - a))
    doc = {"name": "task", "data": which, "n_symbols": codec.config["n_symbols"],
           "noiseless_reference_accuracy": reference, "results": rows}
    Path(args.out).write_text(json.dumps(doc, indent=1))
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
