"""Certified accuracy of the task codecs under input randomized smoothing (Cohen et al. 2019, CERTIFY
with Clopper-Pearson) against the l2 radius, with the abstain rate: the undefended codec against the
ones trained with Gaussian augmentation at the smoothing sigma (``semguard train task --noise-sigma``).

    PYTHONPATH=src python bench/certify_input.py --images 100 --n 1000 --threads 1 \\
        --runs task-fmnist:0.25 task-fmnist-noise25:0.25 task-fmnist-noise50:0.5 task-fmnist:0.5 --out bench/results/certify_input.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from semguard.channels.awgn import AWGN
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.defenses.smoothing import SmoothedClassifier
from semguard.link import Link


def _run(spec: str) -> tuple[str, float]:
    name, _, sigma = spec.partition(":")
    try:
        return name, float(sigma)
    except ValueError:
        raise SystemExit(f"--runs {spec!r}: expected CODEC:SIGMA, e.g. task-fmnist-noise25:0.25") from None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", nargs="+", type=_run, default=[_run("task-fmnist:0.25"), _run("task-fmnist-noise25:0.25")])
    p.add_argument("--radii", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--n0", type=int, default=100)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--alpha", type=float, default=0.001)
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    x, y = shipped_fashion_mnist(a.images)
    rows = []
    for name, sigma in a.runs:
        link = Link(pretrained(name), AWGN())
        t0 = time.perf_counter()
        res = SmoothedClassifier(link, surface="input", sigma=sigma).certify(x, a.snr_db, n0=a.n0, n=a.n,
                                                                           alpha=a.alpha, seed=0)
        with torch.no_grad():
            plain = float((link(x, a.snr_db, generator=torch.Generator().manual_seed(0))["output"].argmax(1) == y)
                          .float().mean())
        row = {"codec": name, "sigma": sigma, "clean_accuracy": plain,
               "smoothed_accuracy": float((res.prediction == y).float().mean()),
               "abstain_rate": res.abstain_rate,
               "certified": {f"{r:g}": res.certified_accuracy(y, r) for r in a.radii},
               "seconds": time.perf_counter() - t0}
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {"images": a.images, "n0": a.n0, "n": a.n, "alpha": a.alpha, "snr_db": a.snr_db, "channel": "awgn",
           "data": "shipped Fashion-MNIST test images, first N", "rows": rows}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1, allow_nan=False)


if __name__ == "__main__":
    main()
