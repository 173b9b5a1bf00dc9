"""Certified PSNR of the default image codec's receiver under median smoothing (Chiang et al. 2020)
inside a PSR ball, against the block length and the receiver's own noise: where the bound is useful
and where it collapses (``semguard.defenses.median_smoothing``).

    PYTHONPATH=src python bench/certify_psnr.py --images 2 --draws 1000 --threads 1 \\
        --out bench/results/certify_psnr.json
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from semguard.channels.awgn import AWGN
from semguard.codecs.zoo import pretrained
from semguard.data.photos import shipped_photos
from semguard.defenses.median_smoothing import MedianSmoothedReceiver, required_extra_n0
from semguard.link import Link


def _strict(values: list[float]) -> list[float | None]:
    """Strict JSON: a bound that collapsed to -inf (no rank reaches it) is written as null."""
    return [v if math.isfinite(v) else None for v in values]


def _plain_psnr(link: Link, x: torch.Tensor, snr: float, seed: int) -> list[float]:
    with torch.no_grad():
        out = link(x, snr, generator=torch.Generator().manual_seed(seed))["output"].clamp(0, 1)
    return (-10 * torch.log10((out - x).square().flatten(1).mean(1))).tolist()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codec", default="switched-cbr1_6")
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--sides", type=int, nargs="+", default=[16, 32, 128])
    p.add_argument("--extra-n0", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument("--psr-db", type=float, nargs="+", default=[-50, -40, -30, -20, -10])
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--alpha", type=float, default=0.001)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    link = Link(pretrained(a.codec), AWGN())
    photos = shipped_photos()[: a.images]
    rows = []
    for side in a.sides:
        top = (photos.shape[-1] - side) // 2
        x = photos[:, :, top:top + side, top:top + side].contiguous()
        n = link.n_symbols(tuple(x.shape[1:]))
        plain = _plain_psnr(link, x, a.snr_db, 0)
        for extra in a.extra_n0:
            rec = MedianSmoothedReceiver(link, extra_n0=extra, draws=a.draws, batch=250)
            t0 = time.perf_counter()
            certs = rec.certify_grid(x, a.snr_db, a.psr_db, alpha=a.alpha, seed=0)
            seconds = time.perf_counter() - t0
            for psr, c in zip(a.psr_db, certs):
                row = {"side": side, "n_symbols": n, "extra_n0": extra, "psr_db": psr,
                       "eps_over_sigma": c.eps_over_sigma, "plain_psnr": plain,
                       "median_psnr": c.median_psnr.tolist(), "median_bound": _strict(c.median_bound.tolist()),
                       "p50_bound": _strict(c.percentile_bound.tolist()),
                       "extra_n0_for_eps_eq_sigma": required_extra_n0(psr, n, 1.0), "grid_seconds": seconds}
                rows.append(row)
                print(f"side {side:3d} n {n:5d} extra_n0 {extra:4.1f} psr {psr:6.1f} eps/sigma {c.eps_over_sigma:8.2f} "
                      f"plain {sum(plain) / len(plain):5.2f} median {c.median_psnr.mean():5.2f} "
                      f"bound {c.median_bound.mean():5.2f} p50-bound {c.percentile_bound.mean():6.2f}", flush=True)
    res = {"codec": a.codec, "snr_db": a.snr_db, "draws": a.draws, "alpha": a.alpha, "images": a.images,
           "rows": rows}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1, allow_nan=False)
    print(json.dumps({"rows": len(rows)}))


if __name__ == "__main__":
    main()
