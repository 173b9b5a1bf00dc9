"""DP-SGD on the federated task codec: accuracy and the accountant's epsilon per round, per target epsilon.

    PYTHONPATH=src python bench/federated_dp.py --jobs 2 --out bench/results/federated_dp.json

FedAvg, no attack, the shipped Fashion-MNIST split of ``bench/federated.py`` (10 clients, alpha
0.5, 6 rounds of 5 local steps of 32 examples).  Each client runs DP-SGD through Opacus (per-example
clipping at ``--clip``, Gaussian noise) with the noise multiplier that keeps the worst client
within the target epsilon at delta 1e-3 after all its steps (RDP accountant); ``none`` is the same
optimiser without DP, and ``adam-none`` the Adam run of the other tables.  One process per run
(``--jobs`` at a time); results are written as runs finish, and a rerun skips the runs already there.
``summary`` holds, per target epsilon, the noise, the epsilon spent after each round and the final
accuracy's cost in points against ``none`` (the same optimiser without DP) and ``adam-none``.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

from semguard.federated.client import LocalConfig
from semguard.federated.engine import FLConfig, run_inprocess


def _run(key: str, kw: dict) -> tuple[str, dict]:
    torch.set_num_threads(1)
    local = LocalConfig(**kw.pop("local"))
    rec = run_inprocess(FLConfig(local=local, **kw))
    return key, {"accuracy": rec["final"]["accuracy"], "noise_multiplier": rec["dp_noise"],
                 "accuracy_by_round": [round(r["accuracy"], 4) for r in rec["rounds"]],
                 "epsilon_by_round": [round(r["epsilon"], 4) for r in rec["rounds"] if "epsilon" in r],
                 "seconds": round(rec["seconds"], 1)}


def summary(runs: dict[str, dict], tag: str, adam_key: str, epsilons: list[float]) -> dict[str, dict]:
    """Per target epsilon (those run so far): noise, epsilon by round, accuracy and its cost (points)."""
    none, adam = runs.get(f"none|{tag}"), runs.get(adam_key)
    out = {}
    for e in epsilons:
        r = runs.get(f"eps{e:g}|{tag}")
        if r is None:
            continue
        out[f"{e:g}"] = {"noise_multiplier": round(r["noise_multiplier"], 4), "epsilon_by_round": r["epsilon_by_round"],
                         "accuracy": r["accuracy"],
                         "cost_vs_none_points": None if none is None else round(100 * (none["accuracy"] - r["accuracy"]), 2),
                         "cost_vs_adam_none_points": None if adam is None else round(100 * (adam["accuracy"] - r["accuracy"]), 2)}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 4.0, 8.0])
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--local-steps", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("bench/results/federated_dp.json"))
    args = p.parse_args(argv)
    local = {"steps": args.local_steps, "batch": 32, "optimizer": args.optimizer, "lr": args.lr,
             "momentum": args.momentum}
    base = {"rounds": args.rounds, "width": args.width, "seed": args.seed, "dp_clip": args.clip}
    tag = f"{args.optimizer}|lr{args.lr:g}|m{args.momentum:g}|clip{args.clip:g}|w{args.width}|seed{args.seed}"
    todo = {f"eps{e:g}|{tag}": {**base, "dp_epsilon": e, "local": dict(local)} for e in args.epsilons}
    todo[f"none|{tag}"] = {**base, "local": dict(local)}
    adam_key = f"adam-none|w{args.width}|seed{args.seed}"
    todo[adam_key] = {**base, "local": {"steps": args.local_steps, "batch": 32}}
    res = json.loads(args.out.read_text()) if args.out.exists() else {}
    res.setdefault("settings", {"clients": 10, "alpha": 0.5, "rounds": args.rounds, "local_steps": args.local_steps,
                                "batch": 32, "delta": 1e-3, "eval": "accuracy at 10 dB AWGN on 400 held-out images"})
    runs = res.setdefault("runs", {})
    todo = {k: v for k, v in todo.items() if k not in runs}
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for fut in as_completed([pool.submit(_run, k, v) for k, v in todo.items()]):
            key, out = fut.result()
            runs[key] = out
            res.setdefault("summary", {})[tag] = summary(runs, tag, adam_key, args.epsilons)
            print(f"{key:45s} acc {out['accuracy']:.3f} noise {out['noise_multiplier']:.3f} "
                  f"eps by round {out['epsilon_by_round']}", flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
