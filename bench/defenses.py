"""Defences of the shipped task codec (Fashion-MNIST, AWGN): clean cost, robust gain, the adaptive attack
that knows each defence, and certificates.  Prints the tables and writes JSON.

    PYTHONPATH=src python bench/defenses.py --threads 1 --out bench/results/defenses.json

* blur before the encoder (random width 0.5..1.5 px + 8-bit quantisation, and fixed 1 px): accuracy
  clean, under input PGD crafted on the undefended codec (non-adaptive, transferred), white-box PGD on
  the defended link as it is (masked gradient), and the adaptive attack (BPDA + EOT);
* the residual jamming detector (energy and whitened): ROC AUC, false-alarm rate at 95 % detection, and
  detection rate at a 5 % false-alarm threshold against Gaussian jamming and symbol PGD at -20 / -10 dB,
  and the joint adaptive attack; on an alarm the block is dropped (retransmission), so the harm that gets
  through is "wrong and not alarmed";
* a receiver that blanks outlier symbols: impulsive jamming (the budget on one symbol), Gaussian jamming
  and white-box PGD through it;
* randomized smoothing: certified accuracy against PSR (symbol domain, the channel's noise plus the
  receiver's extra draws) and against input l2 radius, with the abstain rate.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from semguard.channels import AWGN
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.defenses import BlankingDefense, BlurDefense, DetectorAwarePGD, ResidualDetector, SmoothedClassifier
from semguard.defenses import far_at_detection, roc_auc
from semguard.link import Link
from semguard.registry import build

SNR = 10.0


def _acc(out: torch.Tensor, y: torch.Tensor) -> float:
    return round(float((out.argmax(1) == y).float().mean()), 4)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def blur_table(link: Link, x: torch.Tensor, y: torch.Tensor, eps: list[float], steps: int) -> list[dict]:
    rows = []
    for label, kw in (("blur 1px", {"sigma": 1.0}), ("blur 0.5-1.5px + 8-bit", {"sigma": (0.5, 1.5), "quantize": True})):
        d = BlurDefense(eot=4, **kw)
        deployed, view = d.wrap(link), d.attacker_view(link)
        with torch.no_grad():
            clean_u = _acc(link(x, SNR, generator=_gen(0))["output"], y)
            clean_d = _acc(deployed(x, SNR, generator=_gen(0))["output"], y)
        for e in eps:
            pgd = build("attack", "pgd", surface="input", eps=e, steps=steps)
            crafted = pgd(link, x, SNR, labels=y, generator=_gen(0))
            with torch.no_grad():
                transfer = _acc(deployed((x + crafted.perturbation).clamp(0, 1), SNR, generator=_gen(0))["output"], y)
            naive = _acc(pgd(deployed, x, SNR, labels=y, generator=_gen(0)).output, y)
            ad = d.adaptive_attack(pgd)(view, x, SNR, labels=y, generator=_gen(0))
            with torch.no_grad():
                adaptive = _acc(deployed((x + ad.perturbation).clamp(0, 1), SNR, generator=_gen(0))["output"], y)
            rows.append({"defence": label, "eps_linf": e, "clean_undefended": clean_u, "clean_defended": clean_d,
                         "pgd_undefended": _acc(crafted.output, y), "non_adaptive_transfer": transfer,
                         "white_box_as_is": naive, "adaptive_bpda_eot": adaptive})
    return rows


def detector_table(codec, link: Link, ref: torch.Tensor, x: torch.Tensor, y: torch.Tensor, steps: int) -> list[dict]:
    rows = []
    with torch.no_grad():
        cal = link(ref, SNR, generator=_gen(9))
        clean = link(x, SNR, generator=_gen(5))
    for stat in ("energy", "whitened"):
        det = ResidualDetector(statistic=stat).fit(codec, ref)
        det.calibrate(det.score(cal["received"], cal["state"]), 0.05)
        cs = det.score(clean["received"], clean["state"])
        for psr in (-20.0, -10.0):
            attacks = {"gaussian": build("attack", "gaussian", surface="symbols", psr_db=psr),
                       "pgd": build("attack", "pgd", surface="symbols", psr_db=psr, steps=steps),
                       "adaptive (detector-aware pgd)": DetectorAwarePGD(detector=det, surface="symbols", psr_db=psr,
                                                                         steps=2 * steps, full_power=False,
                                                                         weight=1000.0)}
            for name, atk in attacks.items():
                r = atk(link, x, SNR, labels=y, generator=_gen(5))
                s = det.score(r.link["received"], r.link["state"])
                alarm = s > det.threshold
                rows.append({"detector": stat, "psr_db": psr, "attack": name, "accuracy": _acc(r.output, y),
                             "roc_auc": round(roc_auc(cs, s), 4), "far_at_95_detection": round(far_at_detection(cs, s), 4),
                             "detected_at_5pct_far": round(float(alarm.double().mean()), 4),
                             "wrong_and_not_alarmed": round(float(((r.output.argmax(1) != y) & ~alarm).double().mean()), 4),
                             "clean_false_alarm": round(float((cs > det.threshold).double().mean()), 4)})
    return rows


def blanking_table(codec, link: Link, ref: torch.Tensor, x: torch.Tensor, y: torch.Tensor, steps: int) -> list[dict]:
    import math
    bl = BlankingDefense(false_blank=0.01).fit(codec, ref).wrap(link)
    rows = []
    with torch.no_grad():
        rows.append({"attack": "none", "undefended": _acc(link(x, SNR, generator=_gen(5))["output"], y),
                     "blanking": _acc(bl(x, SNR, generator=_gen(5))["output"], y)})
        x0 = codec.encode(x, SNR)
        for psr in (0.0, 5.0, 10.0):  # the block's whole budget on one symbol
            g = _gen(1)
            k = torch.randint(0, x0.shape[1], (x0.shape[0],), generator=g)
            ph = torch.rand(x0.shape[0], generator=g) * 2 * math.pi
            d = torch.zeros_like(x0)
            d[torch.arange(x0.shape[0]), k] = (math.sqrt(10 ** (psr / 10) * x0.shape[1]) * torch.exp(1j * ph)).to(x0.dtype)
            rows.append({"attack": "impulse (1 symbol)", "psr_db": psr,
                         "undefended": _acc(link(x, SNR, generator=_gen(5), symbols=x0 + d)["output"], y),
                         "blanking": _acc(bl(x, SNR, generator=_gen(5), symbols=x0 + d)["output"], y)})
    for psr in (-10.0,):
        for name, kw in (("gaussian", {}), ("pgd (white-box through the blanking)", {"steps": steps})):
            a = build("attack", name.split()[0], surface="symbols", psr_db=psr, **kw)
            rows.append({"attack": name, "psr_db": psr, "undefended": _acc(a(link, x, SNR, labels=y, generator=_gen(5)).output, y),
                         "blanking": _acc(a(bl, x, SNR, labels=y, generator=_gen(5)).output, y)})
    return rows


def smoothing_table(link: Link, x: torch.Tensor, y: torch.Tensor, xi: torch.Tensor, yi: torch.Tensor,
                    n: int, n_input: int) -> list[dict]:
    rows = []
    for extra in (0.0, 0.1, 0.3, 1.0):
        c = SmoothedClassifier(link, surface="symbols", extra_n0=extra).certify(x, SNR, n0=100, n=n, seed=0)
        for psr in (-30.0, -20.0, -17.0, -15.0, -12.0, -10.0, -8.0):
            rows.append({"surface": "symbols", "extra_n0": extra, "sigma": round(c.sigma, 4), "psr_db": psr,
                         "certified_accuracy": round(c.certified_accuracy(y, psr), 4), "abstain": round(c.abstain_rate, 4),
                         "smoothed_accuracy": round(float((c.prediction == y).float().mean()), 4)})
    for sigma in (0.05, 0.12):
        c = SmoothedClassifier(link, surface="input", sigma=sigma).certify(xi, SNR, n0=50, n=n_input, seed=0)
        for r in (0.0, 0.05, 0.1, 0.2):
            rows.append({"surface": "input", "sigma": sigma, "l2_radius": r, "certified_accuracy": round(c.certified_accuracy(yi, r), 4),
                         "abstain": round(c.abstain_rate, 4)})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--images", type=int, default=200, help="evaluation images (test images 1000..)")
    p.add_argument("--cert-images", type=int, default=100, help="images certified in the symbol domain")
    p.add_argument("--input-cert-images", type=int, default=20, help="images certified on the input")
    p.add_argument("--n", type=int, default=10000, help="CERTIFY estimation draws in the symbol domain")
    p.add_argument("--n-input", type=int, default=500, help="CERTIFY estimation draws on the input")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--out", default="bench/results/defenses.json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    X, Y = shipped_fashion_mnist(2000)
    ref, x, y = X[:1000], X[1000:1000 + a.images], Y[1000:1000 + a.images]
    codec = pretrained("task-fmnist")
    link = Link(codec, AWGN())
    res: dict = {"codec": "task-fmnist", "channel": "awgn", "snr_db": SNR, "images": a.images,
                 "detector_reference": "shipped test images 0..999 (disjoint from the evaluated 1000..)"}
    t = time.time()
    res["blur"] = blur_table(link, x, y, [0.05, 0.1], a.steps)
    res["detector"] = detector_table(codec, link, ref, x, y, a.steps)
    res["blanking"] = blanking_table(codec, link, ref, x, y, a.steps)
    res["smoothing"] = smoothing_table(link, x[:a.cert_images], y[:a.cert_images], x[:a.input_cert_images],
                                       y[:a.input_cert_images], a.n, a.n_input)
    res["seconds"] = round(time.time() - t, 1)
    for k in ("blur", "detector", "blanking", "smoothing"):
        print(f"== {k}")
        for r in res[k]:
            print("  " + "  ".join(f"{kk}={v}" for kk, v in r.items()))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"-> {out} ({res['seconds']} s)")


if __name__ == "__main__":
    main()
