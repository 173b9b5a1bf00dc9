"""What prior desynchronisation costs the shipped task codec: the shipped weights are version v,
300 more training steps (same recipe, lr 1e-4) make version v+1; accuracy on the Fashion-MNIST
test split for matched pairs and for encoder v+1 against decoder v (and the reverse).

    python bench/desync.py [--out bench-desync.json] [--steps 300] [--snr 10]

Needs the Fashion-MNIST files (``apt-get install dataset-fashion-mnist``).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import tempfile
from pathlib import Path

import torch

from semguard.codecs.zoo import pretrained
from semguard.data.sources import labelled_source
from semguard.metrics.image import accuracy
from semguard.registry import build
from semguard.training.loop import TrainConfig, train
from semguard.training.tasks import ClassifyTask

log = logging.getLogger("bench.desync")


@torch.no_grad()
def pair_accuracy(enc: torch.nn.Module, dec: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, channel: str,
                  snr: float, reps: int) -> float:
    enc.eval()
    dec.eval()
    ch = build("channel", channel)
    g = torch.Generator().manual_seed(0)
    accs = []
    for _ in range(reps):
        sym = enc.encode(x, snr)
        r, state = ch(sym, snr, generator=g)
        accs.append(float(accuracy(dec.decode(r, state), y)))
    return sum(accs) / reps


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench-desync.json")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--snr", type=float, default=10.0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    src = labelled_source("fashion-mnist")
    v = pretrained("task-fmnist")
    v1 = copy.deepcopy(v)
    task = ClassifyTask(src.train_x[:-5000], src.train_y[:-5000], src.train_x[-5000:], src.train_y[-5000:])
    channels = [("awgn", build("channel", "awgn")), ("rayleigh", build("channel", "rayleigh"))]
    cfg = TrainConfig(steps=args.steps, batch=128, lr=1e-4, lr_min=1e-5, snr_min_db=-2, snr_max_db=22, seed=1,
                      ckpt_every=10**9, val_every=10**9)
    with tempfile.TemporaryDirectory() as d:
        train(v1, task, channels, cfg, d, progress=False)
    rows = []
    for ch, reps in (("awgn", 1), ("rayleigh", 5)):
        res = {"channel": ch, "snr_db": args.snr}
        for name, enc, dec in (("v/v", v, v), ("v+1/v+1", v1, v1), ("enc v+1 / dec v", v1, v),
                               ("enc v / dec v+1", v, v1)):
            res[name] = pair_accuracy(enc, dec, src.test_x, src.test_y, ch, args.snr, reps)
        rows.append(res)
        log.info("%s", res)
    Path(args.out).write_text(json.dumps({"name": "desync", "steps": args.steps, "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
