"""The task codec (task-fmnist) under attack: accuracy under input PGD (linf eps grid) and under
symbol-domain and over-the-air PGD (PSR grid), each beside equal-budget random noise, and the
targeted success rate (every image driven to class (y + 1) mod 10), JSON out.

    PYTHONPATH=src python bench/attacks_task.py --n 500 --steps 20 --threads 1 \\
        --out bench/results/attacks_task.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from semguard.attacks.evaluate import robust_fidelity
from semguard.channels import AWGN, Rayleigh
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.link import Link
from semguard.registry import build

EPS = (0.02, 0.05, 0.1, 0.2)
PSR = (-25.0, -20.0, -15.0, -10.0, -5.0)


def hit(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == y).float()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench/results/attacks_task.json")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    x, y = shipped_fashion_mnist(a.n)
    tgt = (y + 1) % 10
    codec = pretrained("task-fmnist")
    rows = []
    t0 = time.perf_counter()
    for ch_name, ch in (("awgn", AWGN()), ("rayleigh", Rayleigh(csi="estimated"))):
        link = Link(codec, ch)
        grid = [("input", "eps", e) for e in EPS] + [(s, "psr_db", b) for s in ("symbols", "channel") for b in PSR]
        for surface, unit, b in grid:
            kw = {"surface": surface, unit: b}
            for name in ("gaussian", "pgd"):
                atk = build("attack", name, **kw, **({"steps": a.steps} if name == "pgd" else {}))
                r = robust_fidelity(link, x, atk, a.snr_db, metric=hit, labels=y, batch=a.n)
                rec = {"channel": ch_name, "surface": surface, "unit": unit, "budget": b, "attack": name,
                       "clean_accuracy": r["clean"], "accuracy": r["attacked"], "threat_model": r["threat_model"],
                       "ms_per_sample_step": r["ms_per_sample_step"]}
                if name == "pgd":
                    t_atk = build("attack", "pgd", **kw, steps=a.steps, targeted=True)
                    t = robust_fidelity(link, x, t_atk, a.snr_db, metric=hit, labels=tgt, targets=tgt, batch=a.n)
                    rec["targeted_success"] = t["attacked"]
                rows.append(rec)
                print(f"{ch_name:8} {surface:8} {unit}={b:<6g} {name:8} acc {r['clean']:.3f} -> {r['attacked']:.3f}"
                      + (f"  targeted success {rec['targeted_success']:.3f}" if "targeted_success" in rec else ""),
                      flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"name": "attacks_task", "config": vars(a), "seconds": time.perf_counter() - t0,
                               "records": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
