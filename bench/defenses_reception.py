"""Physical-layer defences and the input detector, each against the adaptive attack that knows it.
Prints the tables and writes JSON.

    PYTHONPATH=src python bench/defenses_reception.py --threads 1 --images 2 --steps 10 \\
        --out bench/results/defenses_reception.json

SNR 10 dB throughout; PSR -20 / -15 / -10 / -5 dB; PSNR in dB per photo (the first ``--images`` shipped
photos; the receivers' clean statistics are fitted on the remaining shipped photos with their flips and
transposes, never on an evaluated one).  Fashion-MNIST: detector / statistics fitted on shipped test
images 0..999, evaluated on 1000.. .

* ``lmmse``: the interference-aware LMMSE receiver on the default image codec (``switched-cbr1_6``) over
  AWGN and Rayleigh (8 pilots, one fading block per image) and on the task codec: white-box PGD on the
  channel surface against the undefended link, the same interference replayed through the defended
  receiver (non-adaptive), PGD through the defended receiver (adaptive: it differentiates through the
  estimator and its gate; the defence has no randomness, so no EOT), and the worse of the two per sample
  ("strongest"); a partial-band Gaussian jammer (1/8 of the chunks) shows where the receiver helps.
* ``pilots``: the pilot-consistency check over Rayleigh with estimated CSI (8 pilots; the image codec
  with 8 fading blocks of 4096 symbols, where its blind refinement does not apply; the task codec with
  one): pilot PGD on the undefended link, replayed (non-adaptive), and adaptive = per sample the worst
  of plain pilot PGD through the checking receiver and the check-aware attack (penalty above the
  threshold); the alarm's ROC AUC, false-alarm rate at 95 % detection and detection at the calibrated
  5 % threshold.
* ``detector``: the learned input detector of the task codec: non-adaptive input PGD and the joint
  detector-aware attack at linf eps 0.02 / 0.05 / 0.1.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from semguard.channels import AWGN, Rayleigh
from semguard.channels import functional as F
from semguard.codecs.zoo import DEFAULT_IMAGE_CODEC, pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.defenses import far_at_detection, roc_auc
from semguard.defenses.input_detector import DetectorAwareInputPGD, InputDetector
from semguard.defenses.interference import InterferenceAwareDefense
from semguard.defenses.pilot_check import CheckAwarePilotAttack, PilotCheckDefense
from semguard.link import Link
from semguard.metrics import psnr
from semguard.registry import build

from _photos import split_photos  # bench/, beside this script

SNR = 10.0
PSRS = (-20.0, -15.0, -10.0, -5.0)
log = logging.getLogger("defenses_reception")


def _gen(seed: int = 5) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _fid(out: torch.Tensor, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Per-sample fidelity: PSNR (images) or correctness (task)."""
    return psnr(out, x) if y is None else (out.argmax(1) == y).double()


def _r(t: torch.Tensor) -> list[float] | float:
    v = [round(float(a), 3) for a in t.reshape(-1)]
    return v if len(v) > 1 else v[0]


def _mean(t: torch.Tensor) -> float:
    return round(float(t.double().mean()), 4)



def _partial_band(x0: torch.Tensor, ids: torch.Tensor, psr: float, frac: float = 0.125) -> torch.Tensor:
    g = _gen(11)
    k = int(ids.max()) + 1
    d = torch.zeros_like(x0)
    for b in range(x0.shape[0]):
        chosen = torch.randperm(k, generator=g)[: max(1, round(frac * k))]
        mask = torch.isin(ids, chosen)
        d[b, mask] = F.complex_normal((int(mask.sum()),), generator=g)
    return F.project_psr(d, x0, psr, exact=True)


def lmmse_rows(name: str, link: Link, ref: torch.Tensor, x: torch.Tensor, y: torch.Tensor | None,
               steps: int, chunk: int) -> list[dict]:
    t = time.time()
    dfn = InterferenceAwareDefense(chunk=chunk).fit(link, ref, SNR)
    dl = dfn.wrap(link)
    agg = _r if y is None else _mean
    with torch.no_grad():
        cu, cd = _fid(link(x, SNR, generator=_gen())["output"], x, y), _fid(dl(x, SNR, generator=_gen())["output"], x, y)
    rows = [{"codec": name, "channel": link.channel.__class__.__name__, "attack": "none", "undefended": agg(cu),
             "defended": agg(cd)}]
    for psr in PSRS:
        kw = {} if y is None else {"labels": y}
        pgd = build("attack", "pgd", surface="channel", psr_db=psr, steps=steps)
        r = pgd(link, x, SNR, generator=_gen(), **kw)
        with torch.no_grad():
            replay = _fid(dl(x, SNR, generator=_gen(), interference=r.link["interference"])["output"], x, y)
            jam = _partial_band(r.link["state"].h * r.link["transmitted"], dl.codec.ids, psr)
            jam_u = _fid(link(x, SNR, generator=_gen(), interference=jam)["output"], x, y)
            jam_d = _fid(dl(x, SNR, generator=_gen(), interference=jam)["output"], x, y)
        ad = _fid(pgd(dl, x, SNR, generator=_gen(), **kw).output, x, y)
        rows.append({"codec": name, "channel": link.channel.__class__.__name__, "psr_db": psr,
                     "pgd_undefended": agg(_fid(r.output, x, y)), "non_adaptive": agg(replay), "adaptive": agg(ad),
                     "strongest": agg(torch.minimum(replay, ad)), "partial_band_undefended": agg(jam_u),
                     "partial_band_defended": agg(jam_d)})
        log.info("%s", rows[-1])
    log.info("lmmse %s %s: %.0f s", name, link.channel.__class__.__name__, time.time() - t)
    return rows


def pilot_rows(name: str, link: Link, ref: torch.Tensor, x: torch.Tensor, y: torch.Tensor | None,
               steps: int, repeats: int) -> list[dict]:
    t = time.time()
    dfn = PilotCheckDefense(false_alarm=0.05).fit(link, ref, SNR, repeats=repeats)
    dl = dfn.wrap(link)
    agg = _r if y is None else _mean
    kw = {} if y is None else {"labels": y}
    L = dfn.coherence
    with torch.no_grad():
        o = link(x, SNR, generator=_gen())
        cu, cd = _fid(o["output"], x, y), _fid(dl(x, SNR, generator=_gen())["output"], x, y)
        clean_scores = torch.cat([dl.codec.check(*(lambda q: (q["received"], q["state"]))(
            link(x, SNR, generator=_gen(100 + k), decode=False)))[2] for k in range(8)])
    rows = [{"codec": name, "attack": "none", "undefended": agg(cu), "defended": agg(cd),
             "threshold": round(dfn.threshold, 3),
             "clean_false_alarm": _mean(clean_scores > dfn.threshold)}]
    for psr in PSRS:
        r = build("attack", "pilot", psr_db=psr, steps=steps)(link, x, SNR, generator=_gen(), **kw)
        delta = r.link["state"].h_est[:, ::L] - o["state"].h_est[:, ::L]  # what reached the pilots
        with torch.no_grad():
            replay_out = dl(x, SNR, generator=_gen(), pilot_interference=delta)
            s_na = dl.codec.check(replay_out["received"], replay_out["state"])[2]
        replay = _fid(replay_out["output"], x, y)
        plain = build("attack", "pilot", psr_db=psr, steps=steps)(dl, x, SNR, generator=_gen(), **kw)
        aware = CheckAwarePilotAttack(psr_db=psr, steps=steps)(dl, x, SNR, generator=_gen(), **kw)
        f_plain, f_aware = _fid(plain.output, x, y), _fid(aware.output, x, y)
        with torch.no_grad():
            s_aw = dl.codec.check(aware.link["received"], aware.link["state"])[2]
        cs = clean_scores
        rows.append({"codec": name, "psr_db": psr, "pilot_pgd_undefended": agg(_fid(r.output, x, y)),
                     "non_adaptive": agg(replay), "adaptive_plain": agg(f_plain), "adaptive_check_aware": agg(f_aware),
                     "strongest": agg(torch.minimum(torch.minimum(replay, f_plain), f_aware)),
                     "auc_non_adaptive": round(roc_auc(cs, s_na), 4), "far95_non_adaptive": round(far_at_detection(cs, s_na), 4),
                     "detected_non_adaptive": _mean(s_na > dfn.threshold),
                     "auc_adaptive": round(roc_auc(cs, s_aw), 4), "far95_adaptive": round(far_at_detection(cs, s_aw), 4),
                     "detected_adaptive": _mean(s_aw > dfn.threshold)})
        log.info("%s", rows[-1])
    log.info("pilots %s: %.0f s", name, time.time() - t)
    return rows


def detector_rows(codec, steps: int) -> list[dict]:
    t = time.time()
    X, Y = shipped_fashion_mnist(2000)
    link = Link(codec, AWGN())
    parts = []
    for i, e in enumerate((0.02, 0.05, 0.1)):  # training set: refs 0..799, mixed budgets
        sl = slice(i * 267, min((i + 1) * 267, 800))
        r = build("attack", "pgd", surface="input", eps=e, steps=steps)(link, X[sl], SNR, labels=Y[sl], generator=_gen(i))
        parts.append((X[sl] + r.perturbation).clamp(0, 1))
    det = InputDetector(codec).fit(X[:800], torch.cat(parts), steps=300)
    with torch.no_grad():
        det.calibrate(det.score(X[800:1000]), 0.05)  # held-out clean refs
    x, y = X[1000:1200], Y[1000:1200]
    with torch.no_grad():
        cs = det.score(x)
    rows = [{"attack": "none", "accuracy": _mean(link(x, SNR, generator=_gen())["output"].argmax(1) == y),
             "clean_false_alarm": _mean(cs > det.threshold)}]
    for e in (0.02, 0.05, 0.1):
        for label, atk in (("pgd (non-adaptive)", build("attack", "pgd", surface="input", eps=e, steps=steps)),
                           ("detector-aware pgd (adaptive)", DetectorAwareInputPGD(detector=det, eps=e, steps=2 * steps))):
            r = atk(link, x, SNR, labels=y, generator=_gen(7))
            with torch.no_grad():
                s = det.score((x + r.perturbation).clamp(0, 1))
            alarm, wrong = s > det.threshold, r.output.argmax(1) != y
            rows.append({"attack": label, "eps_linf": e, "accuracy": _mean(~wrong), "roc_auc": round(roc_auc(cs, s), 4),
                         "far_at_95_detection": round(far_at_detection(cs, s), 4), "detected_at_5pct_far": _mean(alarm),
                         "wrong_and_not_alarmed": _mean(wrong & ~alarm)})
            log.info("%s", rows[-1])
    log.info("detector: %.0f s", time.time() - t)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--images", type=int, default=2, help="evaluated shipped photos (the rest fit the receivers)")
    p.add_argument("--task-images", type=int, default=300, help="evaluated Fashion-MNIST images (1000..)")
    p.add_argument("--steps", type=int, default=10, help="PGD steps (the adaptive input attack takes twice)")
    p.add_argument("--only", nargs="*", default=["lmmse", "pilots", "detector"],
                   choices=["lmmse", "pilots", "detector"])
    p.add_argument("--out", default="bench/results/defenses_reception.json")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(a.threads)
    x, ref = split_photos(a.images, "fit the receivers")
    X, Y = shipped_fashion_mnist(2000)
    xt, yt = X[1000:1000 + a.task_images], Y[1000:1000 + a.task_images]
    image, task = pretrained(DEFAULT_IMAGE_CODEC), pretrained("task-fmnist")
    res: dict = {"snr_db": SNR, "images": a.images, "task_images": a.task_images, "steps": a.steps,
                 "image_codec": DEFAULT_IMAGE_CODEC, "task_codec": "task-fmnist"}
    t = time.time()
    if "lmmse" in a.only:
        res["lmmse"] = (lmmse_rows(DEFAULT_IMAGE_CODEC, Link(image, AWGN()), ref, x, None, a.steps, 512)
                        + lmmse_rows(DEFAULT_IMAGE_CODEC, Link(image, Rayleigh(csi="estimated", pilots=8)), ref, x,
                                     None, a.steps, 512)
                        + lmmse_rows("task-fmnist", Link(task, AWGN()), X[:1000], xt, yt, a.steps, 4))
    if "pilots" in a.only:
        res["pilots"] = (pilot_rows(DEFAULT_IMAGE_CODEC, Link(image, Rayleigh(csi="estimated", pilots=8, coherence=4096)),
                                    ref, x, None, a.steps, 4)
                         + pilot_rows("task-fmnist", Link(task, Rayleigh(csi="estimated", pilots=8)), X[:1000], xt, yt,
                                      a.steps, 1))
    if "detector" in a.only:
        res["detector"] = detector_rows(task, a.steps)
    res["seconds"] = round(time.time() - t, 1)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**old, **res}, indent=2) + "\n")
    log.info("-> %s (%s s)", out, res["seconds"])


if __name__ == "__main__":
    main()
