"""Adversarially trained image codec (``switched-cbr1_6-adv``, its analog part fine-tuned by
``semguard train ... --adv symbols``) against the undefended default on the evaluated shipped photos:
clean PSNR and PSNR under white Gaussian jamming and white-box PGD on the channel surface at each PSR,
the standard PGD (``--steps``, one start) and, at ``--strong-psr``, the strong one the adaptive standard
asks of adversarially trained models (``--strong-steps`` per start, ``--restarts`` random starts, each
photo keeping its best iterate); ``worst`` is per photo the lowest of every attack run.  Every attack is
built against the weights it attacks (white-box, channel draw known).  Prints one line per row and
merges its records into the JSON (keyed by codec and channel), with the command that wrote them.

    PYTHONPATH=src python bench/adv_train_image.py --threads 1 --images 2 --channel awgn \\
        --codecs switched-cbr1_6,switched-cbr1_6-adv --out bench/results/adv_train_image.json

SNR 10 dB (where the switched codecs run their analog part); PSR -20 / -15 / -10 / -5 dB.  The photos
are :func:`_photos.split_photos`'s evaluated ones (the first ``--images``, as in
``bench/defenses_keyed.py``); the codecs were trained on the Debian photos, never on these.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from pathlib import Path

import torch

from semguard.attacks.evaluate import robust_fidelity
from semguard.channels import AWGN, Rayleigh
from semguard.channels import functional as F
from semguard.codecs.zoo import ZOO, load_weights, pretrained
from semguard.link import Link
from semguard.metrics import psnr
from semguard.registry import build

from _photos import split_photos  # bench/, beside this script

SNR = 10.0
PSRS = (-20.0, -15.0, -10.0, -5.0)
SEED = 5  # the channel draw of every figure (bench/defenses_keyed.py uses the same)
log = logging.getLogger("adv_train_image")


def _r(t: torch.Tensor) -> list[float]:
    return [round(float(a), 3) for a in t.reshape(-1)]


def _codec(spec: str) -> tuple[torch.nn.Module, str]:
    """A zoo name (sha256-checked) or a weight file, and the sha256 it was loaded from."""
    c = pretrained(spec) if spec in ZOO else load_weights(spec)
    return c, str(c.weights_sha256)


def gaussian(link: Link, x: torch.Tensor, psr: float) -> torch.Tensor:
    """Per-photo PSNR under white Gaussian jamming at ``psr`` dB of the received signal (one draw)."""
    with torch.no_grad():
        o = link(x, SNR, generator=torch.Generator().manual_seed(SEED), decode=False)
        ref = o["state"].h * o["transmitted"]
        jam = F.project_psr(F.complex_normal(ref.shape, generator=torch.Generator().manual_seed(7)), ref, psr,
                            exact=True)
        return psnr(link(x, SNR, generator=torch.Generator().manual_seed(SEED), interference=jam)["output"], x)


def rows(name: str, link: Link, x: torch.Tensor, a: argparse.Namespace) -> list[dict]:
    ch = type(link.channel).__name__
    with torch.no_grad():
        clean = torch.stack([psnr(link(x, SNR, generator=torch.Generator().manual_seed(SEED + s))["output"], x)
                             for s in range(a.draws)]).mean(0)
    out = [{"codec": name, "channel": ch, "attack": "none", "psnr": _r(clean), "mean": round(float(clean.mean()), 3),
            "draws": a.draws}]
    log.info("%s", out[-1])
    for psr in a.psr:
        t0 = time.time()
        found = {"gaussian": gaussian(link, x, psr)}
        runs = [("pgd", {"steps": a.steps, "restarts": 1})]
        if psr in a.strong_psr:
            runs.append(("pgd_strong", {"steps": a.strong_steps, "restarts": a.restarts}))
        cfg = {}
        for label, kw in runs:
            atk = build("attack", "pgd", surface="channel", psr_db=psr, seed=a.attack_seed, **kw)
            r = robust_fidelity(link, x, atk, SNR, metric=psnr, batch=x.shape[0], seed=SEED)
            found[label] = torch.tensor(r["attacked_per_sample"])
            cfg[label] = r["config"]
        worst = torch.stack(list(found.values())).min(0)
        row = {"codec": name, "channel": ch, "psr_db": psr, **{k: _r(v) for k, v in found.items()},
               "worst": _r(worst.values), "worst_is": [list(found)[int(i)] for i in worst.indices],
               "worst_mean": round(float(worst.values.mean()), 3),
               "worst_pct_of_clean": round(float(100 * worst.values.mean() / clean.mean()), 1),
               "attacks": cfg, "seconds": round(time.time() - t0, 1)}
        out.append(row)
        log.info("%s", {k: v for k, v in row.items() if k != "attacks"})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--channel", choices=["awgn", "rayleigh"], default="awgn")
    p.add_argument("--images", type=int, default=2, help="evaluated shipped photos (split_photos)")
    p.add_argument("--codecs", default="switched-cbr1_6,switched-cbr1_6-adv", help="zoo names or weight files")
    p.add_argument("--steps", type=int, default=20, help="standard PGD steps (one random start)")
    p.add_argument("--strong-steps", type=int, default=60, help="strong PGD steps per restart")
    p.add_argument("--restarts", type=int, default=2, help="strong PGD random restarts")
    p.add_argument("--strong-psr", type=float, nargs="*", default=[-10.0], help="PSRs that also get the strong PGD")
    p.add_argument("--attack-seed", type=int, default=0, help="the attacks' random starts")
    p.add_argument("--draws", type=int, default=4, help="noise draws for the clean figure")
    p.add_argument("--psr", type=float, nargs="+", default=list(PSRS), help="PSR budgets in dB")
    p.add_argument("--out", default="bench/results/adv_train_image.json")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(a.threads)
    x, _ = split_photos(a.images, "are not evaluated here")
    channel = AWGN() if a.channel == "awgn" else Rayleigh(csi="estimated", pilots=8)
    out = Path(a.out)
    res = json.loads(out.read_text()) if out.exists() else {}
    for name in a.codecs.split(","):
        t = time.time()
        codec, digest = _codec(name)
        rec = {"snr_db": SNR, "images": a.images, "sha256": digest,
               "command": "python " + shlex.join(["bench/adv_train_image.py", *(sys.argv[1:] if argv is None else argv)]),
               "rows": rows(name, Link(codec, channel), x, a)}
        rec["seconds"] = round(time.time() - t, 1)
        res[f"{name}/{a.channel}"] = rec
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=1) + "\n")  # after each codec: a stopped run keeps what it measured
        log.info("-> %s (%s: %s s)", out, name, rec["seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
