"""Deterministic certified accuracy of the task receiver against PSR by bound propagation (IBP, CROWN;
``semguard.defenses.verified``), beside what a noise-aware PGD jammer leaves (an upper bound on the true
robust accuracy), per received block with the channel noise fixed.  ``--lirpa`` cross-checks the CROWN
margins against auto_LiRPA's on the same network, if it imports (it is not a dependency).

    PYTHONPATH=src python bench/certify_crown.py --images 200 --threads 1 \\
        --out bench/results/certify_crown.json

``--channel rayleigh``: flat Rayleigh block fading with perfect CSI, one fading and noise draw per image,
the MMSE equaliser of that draw folded into the decoder (``--psr-reference``: the PSR against the
received ``h x`` or the transmitted ``x``); bounds and PGD only.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

from semguard.channels import functional as F
from semguard.channels.awgn import AWGN
from semguard.channels.rayleigh import Rayleigh
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.defenses.bounds import AffineReLUNet, crown_bounds, margin_spec
from semguard.defenses.smoothing import SmoothedClassifier
from semguard.defenses.verified import VerifiedReceiver
from semguard.link import Link


def _as_sequential(net: AffineReLUNet) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        lin = nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        layers.append(lin)
        if i < len(net.weights) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def lirpa_check(rec: VerifiedReceiver, x: torch.Tensor, snr: float, psrs: list[float], seed: int) -> dict:
    """Max |ours - auto_LiRPA| of the CROWN margin lower bounds (and of IBP's) on the receiver net."""
    from auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm
    tx, y0, eff = rec.received(x, snr, seed=seed)
    net = rec.receiver_net(float(eff[0]))
    z0 = torch.view_as_real(y0).flatten(1).double()
    spec = margin_spec(net(z0).argmax(1), net.out_features)
    model = BoundedModule(_as_sequential(net), torch.zeros_like(z0))
    out = []
    for psr in psrs:
        eps = float(F.psr_radius(tx, psr)[0])  # unit-power blocks: the same radius for all
        ours = crown_bounds(net, z0, eps, spec)[0]
        bz = BoundedTensor(z0, PerturbationLpNorm(norm=2, eps=eps))
        theirs, _ = model.compute_bounds(x=(bz,), C=spec, method="CROWN")
        out.append({"psr_db": psr, "eps": eps, "max_abs_diff": float((ours - theirs.detach()).abs().max()),
                    "max_abs_bound": float(ours.abs().max()),
                    "certified_ours": int((ours.min(1).values > 0).sum()),
                    "certified_lirpa": int((theirs.detach().min(1).values > 0).sum())})
        print(f"auto_LiRPA psr {psr:6.1f}: max |diff| {out[-1]['max_abs_diff']:.2e}, certified "
              f"{out[-1]['certified_ours']} vs {out[-1]['certified_lirpa']}", flush=True)
    return {"rows": out}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codec", default="task-fmnist")
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--psr-db", type=float, nargs="+",
                   default=[-40, -30, -25, -20, -17, -15, -12, -10, -8, -5, 0])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--restarts", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoothing-n", type=int, default=0,
                   help="also CERTIFY (randomized smoothing, channel noise only) with this many draws per image")
    p.add_argument("--extra-n0", type=float, nargs="+", default=[0.0], help="smoothing's extra receiver noise")
    p.add_argument("--skip-bounds", action="store_true", help="only the smoothing rows")
    p.add_argument("--methods", nargs="+", default=["ibp", "crown"], help="bound-propagation methods")
    p.add_argument("--no-pgd", action="store_true", help="skip the PGD upper bound")
    p.add_argument("--lirpa", action="store_true", help="cross-check CROWN against auto_LiRPA (if it imports)")
    p.add_argument("--channel", choices=("awgn", "rayleigh"), default="awgn",
                   help="awgn, or rayleigh block fading with perfect CSI (bounds and PGD only)")
    p.add_argument("--psr-reference", choices=("received", "transmitted"), default="received",
                   help="over rayleigh: the PSR against the received h x or the transmitted x")
    p.add_argument("--csi", choices=("perfect", "estimated"), default="perfect",
                   help="over rayleigh: the receiver's CSI; estimated certifies jammers on the data symbols only")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.channel == "rayleigh" and (a.smoothing_n or a.lirpa):
        p.error("--channel rayleigh: bounds and PGD only (no --smoothing-n, no --lirpa)")
    link = Link(pretrained(a.codec), AWGN() if a.channel == "awgn" else Rayleigh(csi=a.csi))
    x, y = shipped_fashion_mnist(a.images)
    res: dict = {"codec": a.codec, "channel": a.channel, "psr_reference": a.psr_reference, "csi": a.csi, "snr_db": a.snr_db, "images": a.images, "seed": a.seed,
                 "pgd": {"steps": a.steps, "restarts": a.restarts}, "psr_db": a.psr_db}
    for method in () if a.skip_bounds else a.methods:
        t0 = time.perf_counter()
        c = VerifiedReceiver(link, method=method, psr_reference=a.psr_reference, data_only=a.csi == "estimated").certify(x, a.snr_db, a.psr_db, seed=a.seed)
        res[method] = {"certified_accuracy": [c.certified_accuracy(y, q) for q in a.psr_db],
                       # the first 100 images: the ones the smoothing table in the README used
                       "certified_accuracy_first100": [
                           float(((c.prediction[:100] == y[:100]) & c.certified(q)[:100]).float().mean())
                           for q in a.psr_db],
                       "seconds": time.perf_counter() - t0}
        res["accuracy"] = float((c.prediction == y).float().mean())
        print(f"{method:5s} ({res[method]['seconds']:.1f} s): " + " ".join(
            f"{q:g}:{v:.3f}" for q, v in zip(a.psr_db, res[method]["certified_accuracy"])), flush=True)
    rec = VerifiedReceiver(link, psr_reference=a.psr_reference, data_only=a.csi == "estimated")
    if not (a.skip_bounds or a.no_pgd):
        pred = c.prediction
        t0 = time.perf_counter()
        pgd = []
        for q in a.psr_db:
            worst = rec.attack(x, a.snr_db, q, seed=a.seed, steps=a.steps, restarts=a.restarts)
            pgd.append(float(((pred == y) & (worst > 0)).float().mean()))
        res["pgd_upper"] = {"accuracy": pgd, "seconds": time.perf_counter() - t0}
        print("pgd   (upper bound): " + " ".join(f"{q:g}:{v:.3f}" for q, v in zip(a.psr_db, pgd)), flush=True)
    for extra in a.extra_n0 if a.smoothing_n > 0 else ():
        t0 = time.perf_counter()
        sm = SmoothedClassifier(link, surface="symbols", extra_n0=extra)
        cert = sm.certify(x, a.snr_db, n0=100, n=a.smoothing_n, alpha=0.001, seed=a.seed)
        row = {"extra_n0": extra, "n": a.smoothing_n, "alpha": 0.001, "sigma": cert.sigma,
               "smoothed_accuracy": float((cert.prediction == y).float().mean()), "abstain": cert.abstain_rate,
               "certified_accuracy": [cert.certified_accuracy(y, q) for q in a.psr_db],
               "seconds": time.perf_counter() - t0}
        res.setdefault("smoothing", []).append(row)
        print(f"smoothing extra_n0 {extra:g} n {a.smoothing_n} ({row['seconds']:.0f} s): " + " ".join(
            f"{q:g}:{v:.3f}" for q, v in zip(a.psr_db, row["certified_accuracy"])), flush=True)
    if a.lirpa:
        try:
            res["auto_lirpa"] = lirpa_check(rec, x, a.snr_db, a.psr_db, a.seed)
        except ImportError as e:
            res["auto_lirpa"] = {"error": f"auto_LiRPA does not import: {e}"}
            print(res["auto_lirpa"]["error"])
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1, allow_nan=False)


if __name__ == "__main__":
    main()
