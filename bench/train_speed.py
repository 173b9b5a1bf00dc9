"""Training-step speed of the image codecs: float32 against bfloat16 autocast (``semguard train --bf16``),
interleaved in one run so the ratio survives a noisy machine.

    python bench/train_speed.py [--out bench-train-speed.json] [--threads 1] [--repeats 3]
                                [--models deepjscc:32 adjscc:64 adjscc:96]

One step is the training loop's own ``train_step``: forward through AWGN at 10 dB, MSE, backward,
Adam, on a batch of 32 64x64 crops (the training recipe's shape).  Reports the median milliseconds
per step of each setting and the ratio.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import torch

from semguard.registry import build
from semguard.training.loop import train_step
from semguard.training.tasks import mse_loss

log = logging.getLogger("bench.train_speed")


def step_times(codec: torch.nn.Module, bf16: bool, steps: int, *, batch: int = 32, crop: int = 64) -> list[float]:
    """Seconds per :func:`~semguard.training.loop.train_step` (after two warm-up steps), bf16 or not."""
    channel = build("channel", "awgn")
    opt = torch.optim.Adam(codec.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, crop, crop, generator=gen)
    snr = torch.full((batch,), 10.0)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        train_step(codec, mse_loss, opt, x, x, channel, snr, bf16=bf16, generator=gen)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench-train-speed.json")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds of 5 steps per setting")
    p.add_argument("--models", nargs="+", default=["deepjscc:32", "adjscc:64", "adjscc:96"],
                   help="registry codec:width pairs")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    rows = []
    for spec in args.models:
        name, width = spec.split(":")
        torch.manual_seed(0)
        codecs = {bf16: build("codec", name, width=int(width)) for bf16 in (False, True)}
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeats):  # interleaved: both settings see the same machine load
            for bf16 in (False, True):
                times[bf16] += step_times(codecs[bf16], bf16, 5)
        ms = {bf16: 1000 * statistics.median(t) for bf16, t in times.items()}
        row = {"codec": name, "width": int(width), "params": sum(q.numel() for q in codecs[False].parameters()),
               "threads": args.threads, "float32_ms_per_step": ms[False], "bf16_ms_per_step": ms[True],
               "speedup": ms[False] / ms[True]}
        rows.append(row)
        log.info("%-9s width %3d  float32 %6.0f ms  bf16 %6.0f ms  speed-up %.2fx", name, int(width),
                 ms[False], ms[True], row["speedup"])
    Path(args.out).write_text(json.dumps({"name": "train_speed", "batch": 32, "crop": 64, "results": rows}, indent=1))
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
