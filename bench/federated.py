"""Every federated strategy side by side, under each client attack, at several malicious fractions.

    PYTHONPATH=src python bench/federated.py --out bench-federated.json

One in-process run per (strategy, attack, fraction) on the shipped Fashion-MNIST split into
Dirichlet non-IID clients; final global accuracy and backdoor success of the task codec at
10 dB AWGN.  Two references per fraction: clean FedAvg (nobody attacks) and honest-only FedAvg
(the malicious clients' data simply absent).  Results are written after every run; a rerun
with the same --out skips the runs already there.  With several --seeds (each seed draws its own
data split, malicious ids and initial model) a cell prints the mean and, after ``±``, half the
range over the seeds.  Also reports, for the reputation rule, the round each free rider was
first flagged and the false-positive rate among honest clients.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from semguard.federated.client import LocalConfig
from semguard.federated.engine import FLConfig, Federation, run_inprocess
from semguard.federated.strategy import FLOWER_BASELINES, STRATEGIES

ATTACKS = ("alie", "adaptive", "adaptive_mimic", "adaptive_decor", "adaptive_bias", "sign_flip", "scaling", "label_flip", "backdoor", "free_zero", "free_stale",
           "free_noise")


def one(cfg: FLConfig) -> dict:
    try:
        rec = run_inprocess(cfg)
    except ValueError as e:  # e.g. Bulyan's K >= 4f + 3
        return {"n/a": str(e)}
    out = {**rec["final"], "seconds": round(rec["seconds"], 1), "malicious_ids": rec["malicious_ids"],
           "accuracy_by_round": [round(r["accuracy"], 4) for r in rec["rounds"]]}
    for k in ("free_riders_detected", "free_rider_false_positive_rate", "free_rider_first_round"):
        if k in rec:
            out[k] = rec[k]
    out["diagnostics"] = diagnostics(rec["rounds"])
    return out


DIAG_KEYS = ("update_norm", "weights", "reputation", "round_score", "agreement", "progress_factor", "excluded", "selected",
             "trust", "free_riders")


def diagnostics(rounds: list[dict]) -> list[dict]:
    """Per round: the engine's per-client diagnostics (norm, cosines with the aggregate and the honest mean),
    the aggregate's shift from the honest mean, and whatever the rule reported (weights, reputations, kept or
    selected clients); the keys a rule does not report are absent."""
    out = []
    for r in rounds:
        d = {"round": r["round"], **{k: r[k] for k in DIAG_KEYS if k in r}, **r.get("diagnostics", {})}
        if isinstance(d.get("update_norm"), float):
            d["update_norm"] = round(d["update_norm"], 5)
        if "reputation" in d:
            d["reputation"] = {k: round(v, 5) for k, v in d["reputation"].items()}
        out.append(d)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--local-steps", type=int, default=5)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--fractions", type=float, nargs="+", default=[0.3, 0.1, 0.2])
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    p.add_argument("--attacks", nargs="+", default=list(ATTACKS), choices=ATTACKS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--clean-strategies", nargs="*", default=[], choices=STRATEGIES,
                   help="also run these rules with nobody attacking (keys clean|RULE|SEED); none by default")
    p.add_argument("--out", type=Path, default=Path("bench-federated.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    base0 = dict(clients=args.clients, rounds=args.rounds, alpha=args.alpha, local=LocalConfig(steps=args.local_steps))
    res = json.loads(args.out.read_text()) if args.out.exists() else {}
    res.setdefault("settings", {**{k: v for k, v in base0.items() if k != "local"}, "local_steps": args.local_steps,
                                "dataset": "shipped Fashion-MNIST (2000 test images: 400 held out, 100 root, "
                                           "1500 to clients)", "eval": "accuracy at 10 dB AWGN"})
    runs = res.setdefault("runs", {})

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))

    t0 = time.monotonic()
    for seed in args.seeds:
        base = {**base0, "seed": seed}
        if f"clean|fedavg|{seed}" not in runs:
            runs[f"clean|fedavg|{seed}"] = one(FLConfig(**base))
            save()
        for strat in args.clean_strategies:
            if f"clean|{strat}|{seed}" not in runs:
                runs[f"clean|{strat}|{seed}"] = one(FLConfig(**base, strategy=strat))
                save()
        for frac in args.fractions:
            m = max(1, math.floor(frac * args.clients + 1e-9))
            key = f"honest_only|{m}|{seed}"
            if key not in runs:
                ids = Federation(FLConfig(**base, malicious=m, attack="sign_flip")).malicious
                runs[key] = one(FLConfig(**base, crash=tuple(ids)))
                save()
            for attack in args.attacks:
                for strat in args.strategies:
                    key = f"{strat}|{attack}|{m}|{seed}"
                    if key in runs:
                        continue
                    runs[key] = one(FLConfig(**base, malicious=m, attack=attack, strategy=strat))
                    r = runs[key]
                    print(f"{time.monotonic() - t0:7.0f}s {key:34s} " + (
                        f"acc {r['accuracy']:.3f} backdoor {r['backdoor_success']:.3f}" if "accuracy" in r
                        else r["n/a"]), flush=True)
                    save()
    print_table(res, args)


def cell(runs: dict, key: str, seeds: list[int], field: str = "accuracy") -> str:
    """``mean±half-range`` of ``field`` over the seeds run for ``key`` (``n/a`` when none ran)."""
    vals = [runs[f"{key}|{s}"][field] for s in seeds if field in runs.get(f"{key}|{s}", {})]
    if not vals:
        return "n/a"
    mean = sum(vals) / len(vals)
    return f"{mean:.2f}" + (f"±{(max(vals) - min(vals)) / 2:.2f}" if len(vals) > 1 else "")


def print_table(res: dict, args: argparse.Namespace) -> None:
    runs, seeds = res["runs"], args.seeds
    print(f"\nseeds {seeds}; clean FedAvg accuracy {cell(runs, 'clean|fedavg', seeds)}")
    for strat in args.clean_strategies:
        print(f"clean {strat} accuracy {cell(runs, f'clean|{strat}', seeds)}")
    for frac in args.fractions:
        m = max(1, math.floor(frac * args.clients + 1e-9))
        print(f"\n{m}/{args.clients} malicious; honest-only FedAvg accuracy {cell(runs, f'honest_only|{m}', seeds)}; "
              "cells: accuracy (backdoor success)")
        print(f"{'attack':15s}" + "".join(f"{s[:21]:>24s}" for s in args.strategies))
        for attack in args.attacks:
            cells = [f"{cell(runs, f'{s}|{attack}|{m}', seeds)} ({cell(runs, f'{s}|{attack}|{m}', seeds, 'backdoor_success')})"
                     for s in args.strategies]
            print(f"{attack:15s}" + "".join(f"{c:>24s}" for c in cells))
    baselines = [s for s in args.strategies if s in FLOWER_BASELINES]
    if baselines:
        print(f"\nFlower baselines: {', '.join(baselines)}")


if __name__ == "__main__":
    main()
