"""Adversarially trained task codec against the undefended one, on held-out images: clean accuracy
and accuracy under white-box PGD on the input (linf eps grid) and on the symbols (PSR grid), and
under the mixed attack it was trained against.  Each model is attacked by the standard PGD (20
steps, one start) and by the strong one the adaptive standard asks of adversarially trained
models (more steps, several random restarts, each image keeping its strongest); the table reports
the stronger of the two.  JSON out.

    PYTHONPATH=src python bench/adv_train.py --n 500 --threads 1 --out bench/results/adv_train.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from semguard.attacks.evaluate import robust_fidelity
from semguard.channels import AWGN
from semguard.channels import functional as F
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.link import Link
from semguard.registry import build
from semguard.training.adversarial import AdvSpec, craft

EPS = (0.05, 0.1, 0.2)
PSR = (-20.0, -15.0, -10.0, -5.0)


def hit(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == y).float()


def mixed_accuracy(link: Link, x: torch.Tensor, y: torch.Tensor, snr_db: float, eps: float, psr_db: float,
                   steps: int) -> float:
    """Accuracy under the mixed attack (input PGD, then symbol PGD answering it) on channel seed 0."""
    state = torch.Generator().manual_seed(0).get_state()
    snr = torch.full((x.shape[0],), snr_db)
    adv, delta = craft(link, x, y, snr, AdvSpec("mixed", eps=eps, psr_db=psr_db, steps=steps),
                       channel_state=state, seed=0)
    gen = torch.Generator()
    gen.set_state(state)
    with torch.no_grad():
        sym = link.codec.encode(adv, snr)
        out = link(adv, snr, generator=gen, symbols=sym + F.project_psr(delta, sym, psr_db, exact=True))
    return float(hit(out["output"], y).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=500, help="held-out images (shipped Fashion-MNIST test split)")
    p.add_argument("--codecs", default="task-fmnist,task-fmnist-adv")
    p.add_argument("--steps", type=int, default=20, help="standard PGD steps")
    p.add_argument("--strong-steps", type=int, default=60, help="strong PGD steps per restart")
    p.add_argument("--restarts", type=int, default=2, help="strong PGD random restarts")
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench/results/adv_train.json")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    x, y = shipped_fashion_mnist(a.n)
    rows = []
    t0 = time.perf_counter()
    grid = [("input", "eps", e) for e in EPS] + [("symbols", "psr_db", b) for b in PSR]
    settings = {"standard": {"steps": a.steps, "restarts": 1},
                "strong": {"steps": a.strong_steps, "restarts": a.restarts}}
    for name in a.codecs.split(","):
        codec = pretrained(name)
        link = Link(codec, AWGN())
        for surface, unit, b in grid:
            rec = {"codec": name, "sha256": codec.weights_sha256, "surface": surface, "unit": unit, "budget": b}
            for label, kw in settings.items():
                atk = build("attack", "pgd", surface=surface, **{unit: b}, **kw)
                r = robust_fidelity(link, x, atk, a.snr_db, metric=hit, labels=y, batch=a.n)
                rec["clean_accuracy"] = r["clean"]
                rec[label] = {"accuracy": r["attacked"], "config": r["config"], "seconds": r["seconds"]}
            rec["accuracy"] = min(rec["standard"]["accuracy"], rec["strong"]["accuracy"])
            rows.append(rec)
            print(f"{name:16} {surface:8} {unit}={b:<6g} clean {rec['clean_accuracy']:.3f} standard "
                  f"{rec['standard']['accuracy']:.3f} strong {rec['strong']['accuracy']:.3f}", flush=True)
        acc = mixed_accuracy(link, x, y, a.snr_db, 0.1, -10.0, a.strong_steps)
        rows.append({"codec": name, "sha256": codec.weights_sha256, "surface": "mixed", "unit": "eps+psr_db",
                     "budget": [0.1, -10.0], "accuracy": acc, "steps": a.strong_steps})
        print(f"{name:16} mixed    eps=0.1 + psr_db=-10 accuracy {acc:.3f}", flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"name": "adv_train", "config": vars(a), "seconds": time.perf_counter() - t0,
                               "records": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
