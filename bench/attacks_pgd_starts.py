"""Where white-box PGD's start decides the result: SoftCast over Rayleigh (pilot CSI), 256x256 photos.

    PYTHONPATH=src python bench/attacks_pgd_starts.py --threads 1 \\
        --out bench/results/attacks256_pgd_starts_rayleigh.json

On the grid's channel draw (``robust_fidelity``, seed 0) at each ``--psr-db``: 40-step PGD with
``--restarts`` random restarts, ``--long-steps``-step PGD from one random start, and 40-step PGD
warm-started from the 40-step PGD perturbation at ``--from-db`` (scaled onto the larger budget).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from semguard.attacks.evaluate import robust_fidelity
from semguard.cli.attack import _data, load_codec, make_channel
from semguard.link import Link
from semguard.metrics.image import psnr
from semguard.registry import build


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--codec", default="softcast-cbr1_6")
    p.add_argument("--psr-db", type=float, nargs="+", default=[-10.0, -5.0])
    p.add_argument("--from-db", type=float, default=-15.0)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--restarts", type=int, default=4)
    p.add_argument("--long-steps", type=int, default=200)
    p.add_argument("--images", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench/results/attacks256_pgd_starts_rayleigh.json")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    codec = load_codec(a.codec)
    link = Link(codec, make_channel("rayleigh"))
    x, _ = _data(codec, a.images, 256)
    pgd = lambda b, **kw: build("attack", "pgd", surface="channel", psr_db=b, seed=0, **kw)
    records = []
    for b in a.psr_db:
        variants = {f"{a.restarts} restarts x {a.steps} steps": pgd(b, steps=a.steps, restarts=a.restarts),
                    f"{a.long_steps} steps": pgd(b, steps=a.long_steps),
                    f"{a.steps} steps from the {a.from_db:g} dB PGD": pgd(b, steps=a.steps,
                                                                          warm_start=pgd(a.from_db, steps=a.steps))}
        for label, atk in variants.items():
            t = time.perf_counter()
            r = robust_fidelity(link, x, atk, 10.0, metric=psnr)
            rec = {"codec": a.codec, "channel": "rayleigh", "budget": b, "variant": label, "clean": r["clean"],
                   "attacked": r["attacked"], "attacked_per_sample": r["attacked_per_sample"],
                   "config": r["config"], "wall_seconds": time.perf_counter() - t}
            records.append(rec)
            print(f"{b:g} dB, {label}: {r['attacked']:.2f} dB (" + " / ".join(f"{v:.2f}" for v in r["attacked_per_sample"])
                  + f"), {rec['wall_seconds']:.0f} s", flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"name": "attacks_pgd_starts", "description": __doc__.split("\n")[0],
                               "config": vars(a), "records": records}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
