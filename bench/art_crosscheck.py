"""Cross-check of semguard's input attacks against the Adversarial Robustness Toolbox (ART) on the same
wrapped model: the task codec's image -> decision over AWGN at 10 dB, as an ART
``PyTorchClassifier``.

For the two attack libraries to attack one and the same function, the channel's noise is one
frozen draw (:class:`FrozenAWGN`: the same ``CN(0, N0)`` vector added to every image's symbols,
whatever the batch), so the decision is deterministic and independent of how either library
batches.  Robust accuracy at linf ``eps`` on the same held-out images under: semguard PGD
(standard and strong), ART ``ProjectedGradientDescent`` (100 steps, random restarts), ART
``AutoProjectedGradientDescent`` with cross-entropy and DLR losses and, with ``--autoattack``,
ART's ``AutoAttack`` over APGD-CE, APGD-DLR and a Square attack.  JSON out.

    PYTHONPATH=src python bench/art_crosscheck.py --codec task-fmnist-adv --n 500 --threads 1 \\
        --out bench/results/art_crosscheck.json --autoattack
    PYTHONPATH=src python bench/art_crosscheck.py --codec task-fmnist --eps 0.02 --n 500 --threads 1 \
        --out bench/results/art_crosscheck_undefended.json --autoattack
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from semguard.attacks.evaluate import robust_fidelity
from semguard.channels import AWGN
from semguard.channels import functional as F
from semguard.channels.base import ChannelState, check_symbols
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.link import Link
from semguard.registry import build

log = logging.getLogger("bench.art_crosscheck")


class FrozenAWGN(AWGN):
    """AWGN whose noise is one frozen draw ``w0 [n]`` (``CN(0, 1)``, scaled by ``sqrt(N0)``) added to
    every block: a deterministic channel, for comparing attack libraries on one function."""

    def __init__(self, n: int, seed: int = 0) -> None:
        super().__init__()
        self.register_buffer("w0", F.complex_normal((1, n), generator=torch.Generator().manual_seed(seed)))

    def apply(self, x: Tensor, state: ChannelState, *, generator: torch.Generator | None = None,
              interference: Tensor | None = None) -> Tensor:
        check_symbols(x)
        y = state.h * x + self.w0 * torch.sqrt(state.n0)
        return y if interference is None else y + interference


class Decision(nn.Module):
    """The link's image -> class logits at a fixed SNR (what ART wraps)."""

    def __init__(self, link: Link, snr_db: float) -> None:
        super().__init__()
        self.link, self.snr_db = link, snr_db

    def forward(self, x: Tensor) -> Tensor:
        return self.link(x, self.snr_db)["output"]


def _hit(logits: Tensor, y: Tensor) -> Tensor:
    return (logits.argmax(1) == y).float()


#: semguard's attacks (label -> registry name and arguments; ``attack`` defaults to pgd)
SEMGUARD: dict[str, dict[str, Any]] = {
    "semguard PGD 20 steps": {"steps": 20},
    "semguard PGD 100 steps x 2 restarts": {"steps": 100, "restarts": 2},
    "semguard APGD-CE 100 steps": {"attack": "apgd", "steps": 100},
    "semguard APGD-DLR 100 steps": {"attack": "apgd", "steps": 100, "task_loss": "dlr"},
    # the frozen channel decides each image alone, so the members may cascade (attack only what is unbroken)
    "semguard AutoAttack (APGD-CE, APGD-T x3, Square 1000)": {"attack": "autoattack", "steps": 100,
                                                             "targets": 3, "queries": 1000, "cascade": True},
}


def crosscheck(codec_name: str, n: int, eps: float, *, snr_db: float = 10.0, autoattack: bool = False,
               semguard_settings: dict[str, dict[str, Any]] | None = None, art_steps: int = 100,
               art_restarts: int = 2, art: bool = True, semguard: bool = True) -> dict[str, Any]:
    """Robust accuracy of ``codec_name`` at linf ``eps`` on ``n`` shipped test images under each
    library's attacks (see the module docstring); all on the same frozen-noise link."""
    from art.attacks.evasion import AutoAttack, AutoProjectedGradientDescent, ProjectedGradientDescent, SquareAttack
    from art.estimators.classification import PyTorchClassifier

    x, y = shipped_fashion_mnist(n)
    codec = pretrained(codec_name).eval()
    link = Link(codec, FrozenAWGN(codec.n_symbols(tuple(x.shape[1:]))))
    for p in link.parameters():
        p.requires_grad_(False)
    model = Decision(link, snr_db).eval()
    clf = PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                            nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")
    xn, yn = x.numpy(), y.numpy()
    res: dict[str, Any] = {"codec": codec_name, "sha256": codec.weights_sha256, "n": n, "eps": eps,
                           "snr_db": snr_db, "channel": "awgn, one frozen noise draw (seed 0)", "attacks": {}}
    with torch.no_grad():
        res["clean_accuracy"] = float(_hit(model(x), y).mean())

    def art_acc(adv: np.ndarray) -> float:
        assert np.abs(adv - xn).max() <= eps + 1e-5 and adv.min() >= 0 and adv.max() <= 1
        return float((clf.predict(adv, batch_size=n).argmax(1) == yn).mean())

    for label, kw in (semguard_settings or SEMGUARD).items() if semguard else ():
        kw = dict(kw)
        t = time.perf_counter()
        atk = build("attack", kw.pop("attack", "pgd"), surface="input", eps=eps, **kw)
        r = robust_fidelity(link, x, atk, snr_db, metric=_hit, labels=y, batch=n)
        res["attacks"][label] = {"accuracy": r["attacked"], "seconds": time.perf_counter() - t, "config": r["config"]}
        log.info("%s: accuracy %.3f (%.0f s)", label, r["attacked"], res["attacks"][label]["seconds"])
    art_attacks: dict[str, Any] = {
        f"ART PGD {art_steps} steps x {art_restarts} restarts": ProjectedGradientDescent(
            clf, norm=np.inf, eps=eps, eps_step=eps / 10, max_iter=art_steps, num_random_init=art_restarts,
            batch_size=n, verbose=False),
        f"ART APGD-CE {art_steps} steps": AutoProjectedGradientDescent(
            clf, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=art_steps, nb_random_init=1, batch_size=n,
            loss_type="cross_entropy", verbose=False),
        f"ART APGD-DLR {art_steps} steps": AutoProjectedGradientDescent(
            clf, norm=np.inf, eps=eps, eps_step=2 * eps, max_iter=art_steps, nb_random_init=1, batch_size=n,
            loss_type="difference_logits_ratio", verbose=False),
    }
    if autoattack:
        parts = [art_attacks[f"ART APGD-CE {art_steps} steps"], art_attacks[f"ART APGD-DLR {art_steps} steps"],
                 SquareAttack(clf, norm=np.inf, eps=eps, max_iter=1000, nb_restarts=1, batch_size=n, verbose=False)]
        art_attacks["ART AutoAttack (APGD-CE, APGD-DLR, Square 1000)"] = AutoAttack(
            clf, norm=np.inf, eps=eps, eps_step=2 * eps, attacks=parts, batch_size=n)
    for label, attack in (art_attacks if art else {}).items():
        t = time.perf_counter()
        adv = attack.generate(x=xn, y=yn)
        res["attacks"][label] = {"accuracy": art_acc(adv), "seconds": time.perf_counter() - t}
        log.info("%s: accuracy %.3f (%.0f s)", label, res["attacks"][label]["accuracy"], res["attacks"][label]["seconds"])
    sg = min((v["accuracy"] for k, v in res["attacks"].items() if k.startswith("semguard")), default=None)
    res["semguard_strongest"] = sg
    if art:
        best = min(v["accuracy"] for k, v in res["attacks"].items() if k.startswith("ART"))
        res["art_strongest"] = best
        if sg is not None:
            res["gap_points"] = 100 * (sg - best)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--codec", default="task-fmnist-adv")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--eps", type=float, default=0.1)
    p.add_argument("--autoattack", action="store_true")
    p.add_argument("--alpha", type=float, default=None,
                   help="semguard PGD step as a fraction of eps (default: its 2.5 / steps); ART's PGD here steps 0.1")
    p.add_argument("--semguard-only", action="store_true", help="run semguard's attacks only (no ART)")
    p.add_argument("--art-only", action="store_true", help="run ART's attacks only")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench/results/art_crosscheck.json")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    settings = None
    if a.alpha is not None:
        settings = {f"semguard PGD 100 steps x 2 restarts, step {a.alpha:g} eps": {"steps": 100, "restarts": 2,
                                                                                  "alpha": a.alpha}}
    res = crosscheck(a.codec, a.n, a.eps, autoattack=a.autoattack, semguard_settings=settings,
                     art=not a.semguard_only, semguard=not a.art_only)
    for k, v in res["attacks"].items():
        print(f"{k:50} accuracy {v['accuracy']:.3f}  ({v['seconds']:.0f} s)", flush=True)
    print(f"clean {res['clean_accuracy']:.3f}; strongest semguard {res['semguard_strongest']}, strongest ART "
          f"{res.get('art_strongest')}, gap {res.get('gap_points')} points")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"name": "art_crosscheck", "config": vars(a), "seconds": time.perf_counter() - t0,
                               **res}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
