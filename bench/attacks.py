"""Every shipped image codec x every attack x the PSR grid, side by side, JSON out.

    PYTHONPATH=src python bench/attacks.py --channel awgn --images 3 --side 128 --steps 40 --threads 1 \\
        --out bench/results/attacks40_awgn.json

Per codec and channel: clean PSNR and PSNR under equal-power Gaussian jamming, white-box PGD on the
received block, a universal perturbation learned on the attacker's own photos (scikit-image and
scikit-learn photos that the evaluated ones do not come from; fitted at every budget of the grid), a
transfer attack from the attacker's own surrogate codec,
and (Rayleigh, pilot-estimated CSI) the pilot attack; the cost per attack step (ms per image) and the
universal perturbation's training time.  ``--side 128`` evaluates the centre 128x128 crops of the
shipped photos (a quarter of the cost of the full 256x256; the attacker then trains on 128x128 crops
too).  Records resume from ``<out>.d/records.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from semguard.cli.attack import run_grid

CODECS = ("switched-cbr1_6", "adjscc-cbr1_6", "analog-cbr1_6", "softcast-cbr1_6")
PSR = (-25.0, -20.0, -15.0, -10.0, -5.0)


def summarise(records: list[dict]) -> dict:
    """Strongest attack per codec, the universal attack's gap from the white-box bound, costs."""
    out: dict = {}
    for codec in dict.fromkeys(r["codec"] for r in records):
        rs = [r for r in records if r["codec"] == codec]
        mean = {a: sum(r["attacked"] for r in rs if r["attack"] == a) / max(1, sum(r["attack"] == a for r in rs))
                for a in dict.fromkeys(r["attack"] for r in rs)}
        gap = {r["budget"]: r["attacked"] - w["attacked"] for r in rs if r["attack"] == "universal"
               for w in rs if w["attack"] == "pgd" and w["budget"] == r["budget"]}
        count = {a: sum(r["attack"] == a for r in rs) for a in mean}
        full = {a: v for a, v in mean.items() if count[a] == max(count.values())}  # only complete rows compete
        out[codec] = {"clean": rs[0]["clean"], "strongest_attack": min(full, key=full.get),
                      "mean_psnr_over_grid": mean, "universal_minus_pgd_db": gap,
                      "ms_per_image_step": {a: sum(r["ms_per_sample_step"] for r in rs if r["attack"] == a)
                                            / max(1, sum(r["attack"] == a for r in rs)) for a in mean},
                      "universal_fit_seconds": next((r["fit_seconds"] for r in rs if r["attack"] == "universal"), None)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--codecs", nargs="+", default=list(CODECS))
    p.add_argument("--channel", default="awgn", choices=("awgn", "rayleigh"))
    p.add_argument("--psr-db", type=float, nargs="+", default=list(PSR))
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--images", type=int, default=3)
    p.add_argument("--side", type=int, default=128, help="centre crop of the shipped photos (256: the full photos)")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--pilot-steps", type=int, default=None, help="pilot PGD steps (default: --steps)")
    p.add_argument("--universal-steps", type=int, default=60)
    p.add_argument("--universal-batch", type=int, default=2)
    p.add_argument("--universal-once", action="store_true",
                   help="fit the universal block once at the first budget and replay it (default: fit per budget)")
    p.add_argument("--train-images", type=int, default=16)
    p.add_argument("--surrogate-steps", type=int, default=300)
    p.add_argument("--attacks", nargs="+", default=None)
    p.add_argument("--ladder-from-db", type=float, default=-40.0, help="pgd-ladder's bottom rung (default -40)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--finished-only", action="store_true",
                   help="write the JSON from the grid's finished records in <out>.d and run nothing")
    p.add_argument("--out", default="bench/results/attacks.json")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(a.threads)
    attacks = a.attacks or (["gaussian", "pgd", "universal", "transfer"] + (["pilot"] if a.channel == "rayleigh" else []))
    out = Path(a.out)
    work = out.with_suffix(".d")
    records = []
    t0 = time.perf_counter()
    for codec in a.codecs:
        cfg = {"codec": codec, "attack": attacks, "psr_db": a.psr_db, "eps": None, "surface": "channel",
               "snr_db": a.snr_db, "channel": a.channel, "images": a.images, "steps": a.steps,
               "side": a.side, "pilot_steps": a.pilot_steps, "universal_batch": a.universal_batch,
               "universal_per_budget": not a.universal_once,
               "targeted": False, "universal_steps": a.universal_steps, "train_images": a.train_images,
               "surrogate_steps": a.surrogate_steps, "ladder_from_db": a.ladder_from_db, "seed": a.seed}
        print(f"== {codec} over {a.channel}", flush=True)
        records += run_grid(cfg, work, finished_only=a.finished_only)
    summary = summarise(records)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"name": "attacks", "description": __doc__.split("\n")[0],
                               "config": vars(a), "attacks": attacks, "seconds": time.perf_counter() - t0,
                               "summary": summary, "records": records}, indent=1))
    for codec, s in summary.items():
        rs = [r for r in records if r["codec"] == codec]
        print(f"\n{codec} ({a.channel}, SNR {a.snr_db:g} dB): clean {s['clean']:.2f} dB; strongest {s['strongest_attack']}")
        print(f"{'attack':<13}" + "".join(f"{b:>8g}" for b in a.psr_db) + "   ms/img/step")
        for at in attacks:
            row = {r["budget"]: r["attacked"] for r in rs if r["attack"] == at}
            print(f"{at:<13}" + "".join(f"{row.get(b, float('nan')):8.2f}" for b in a.psr_db)
                  + f"   {s['ms_per_image_step'].get(at, float('nan')):8.1f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
