"""The task codec (task-fmnist) under attack, JSON out:

* accuracy under input PGD (linf eps grid) and under symbol-domain and over-the-air PGD (PSR grid),
  each beside equal-budget random noise;
* a universal perturbation (symbols and over the air), fitted at every PSR on the attacker's own
  Fashion-MNIST images (test images 1000-1999; the evaluated ones are the first ``--n``);
* a transfer attack from a surrogate task codec the attacker trains itself on those images (half the
  width, another seed), on the input (eps grid) and on the air (PSR grid);
* targeted success rates (every image driven to class (y + 1) mod 10) with cross-entropy and with the
  Carlini-Wagner logit margin, over the PSR grid extended to -2 and 0 dB (where targeted symbol
  attacks start to succeed: below -5 dB the budget cannot reach the target class at all, see
  docs/attacks.md).

    PYTHONPATH=src python bench/attacks_task.py --n 300 --steps 20 --threads 1 \\
        --out bench/results/attacks_task.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from semguard.attacks.evaluate import robust_fidelity
from semguard.attacks.sources import train_task_surrogate
from semguard.channels import AWGN, Rayleigh
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.link import Link
from semguard.registry import build

EPS = (0.02, 0.05, 0.1, 0.2)
PSR = (-25.0, -20.0, -15.0, -10.0, -5.0)
PSR_TARGETED = (-2.0, 0.0)


def hit(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == y).float()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--universal-steps", type=int, default=300)
    p.add_argument("--surrogate-steps", type=int, default=1500)
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--channels", nargs="+", default=["awgn", "rayleigh"], choices=("awgn", "rayleigh"))
    p.add_argument("--surfaces", nargs="+", default=["input", "symbols", "channel"],
                   choices=("input", "symbols", "channel"), help="the surfaces to attack (default: all three)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench/results/attacks_task.json")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    xs, ys = shipped_fashion_mnist(2000)
    x, y = xs[: a.n], ys[: a.n]
    x_att, y_att = xs[1000:], ys[1000:]  # the attacker's own labelled images
    tgt = (y + 1) % 10
    codec = pretrained("task-fmnist")
    t0 = time.perf_counter()
    torch.manual_seed(1)
    sur = build("codec", "task", width=codec.config["width"] // 2, n_symbols=codec.config["n_symbols"])
    sur = train_task_surrogate(sur, x_att, y_att, [AWGN(), Rayleigh(csi="estimated")], steps=a.surrogate_steps, seed=1)
    sur_seconds = time.perf_counter() - t0
    with torch.no_grad():
        sur_acc = hit(Link(sur, AWGN())(x, a.snr_db, generator=torch.Generator().manual_seed(0))["output"], y).mean()
    print(f"surrogate (width {sur.config['width']}, seed 1): accuracy {sur_acc:.3f} on the evaluated images "
          f"over AWGN, trained in {sur_seconds:.0f} s", flush=True)
    rows = []
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(done: bool) -> None:  # after every record, so an interrupted run keeps what it measured
        out.write_text(json.dumps({"name": "attacks_task", "config": vars(a), "seconds": time.perf_counter() - t0,
                                   "complete": done,
                                   "surrogate": {"config": sur.config, "seed": 1, "steps": a.surrogate_steps,
                                                 "accuracy_awgn": float(sur_acc), "seconds": sur_seconds},
                                   "records": rows}, indent=1))

    def record(ch_name: str, surface: str, unit: str, b: float, name: str, r: dict, **extra) -> None:
        rows.append({"channel": ch_name, "surface": surface, "unit": unit, "budget": b, "attack": name,
                     "clean_accuracy": r["clean"], "accuracy": r["attacked"], "threat_model": r["threat_model"],
                     "config": r["config"], "ms_per_sample_step": r["ms_per_sample_step"], **extra})
        print(f"{ch_name:8} {surface:8} {unit}={b:<6g} {name:18} acc {r['clean']:.3f} -> {r['attacked']:.3f}",
              flush=True)
        save(False)

    for ch_name in a.channels:
        link = Link(codec, AWGN() if ch_name == "awgn" else Rayleigh(csi="estimated"))
        grid = [("input", "eps", e) for e in EPS] + [(s, "psr_db", b) for s in ("symbols", "channel")
                                                     for b in PSR + PSR_TARGETED]
        grid = [cell for cell in grid if cell[0] in a.surfaces]
        for surface, unit, b in grid:
            kw = {"surface": surface, unit: b}
            untargeted = b not in PSR_TARGETED
            if untargeted:
                for name in ("gaussian", "pgd", "transfer"):
                    extra = {"steps": a.steps} if name == "pgd" else {}
                    if name == "transfer":
                        extra = {"steps": a.steps, "surrogate": sur, "eot": 2}
                    r = robust_fidelity(link, x, build("attack", name, **kw, **extra), a.snr_db, metric=hit,
                                        labels=y, batch=a.n)
                    record(ch_name, surface, unit, b, name, r)
                if surface != "input":
                    u = build("attack", "universal", **kw, steps=a.universal_steps, batch=64, lr=0.05)
                    u.fit(link, x_att, a.snr_db, labels=y_att)
                    r = robust_fidelity(link, x, u, a.snr_db, metric=hit, labels=y, batch=a.n)
                    record(ch_name, surface, unit, b, "universal", r, fit_seconds=u.fit_seconds)
            for loss in ("ce", "margin"):
                atk = build("attack", "pgd", **kw, steps=a.steps, targeted=True, task_loss=loss)
                r = robust_fidelity(link, x, atk, a.snr_db, metric=hit, labels=tgt, targets=tgt, batch=a.n)
                record(ch_name, surface, unit, b, f"pgd-targeted-{loss}", r, targeted_success=r["attacked"])
    save(True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
