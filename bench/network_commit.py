"""Commit-reveal against the attacker that sees the round: plain protocol vs commit-reveal, every fusion rule.

    PYTHONPATH=src python bench/network_commit.py [--byzantine 3] [--out bench/results/network_commit.json]

N = 10 agents, f Byzantine.  Per rule and f, four attackers, each the worst (lowest accuracy) over a search
of its base attack (``crafted``, ``colluding``, ``camouflage``, ``adaptive`` with ``--slacks`` x ``--splits``):

* ``omniscient``: the plain protocol; the attack sees the honest messages of the round before it sends.
* ``predictive``: commit-reveal; the same attacks against the attackers' prediction of the round
  (``--predictors``: the previous round's residuals, or their own messages), committed before any reveal.
* ``rushing``: commit-reveal; commits to the prediction, then replies to the seen round and opens the reply
  (the opening fails and the agent is banned).
* ``rushing-air``: commit-reveal; opens the committed block but sends the reply over the air (only the air
  check, the zero-forced residual against the opened block, can see it).
* ``rushing-fade``: ``rushing-air`` that knows its own channel and changes only the blocks it expects the air
  check to pass (deep fades, low SNR): the loophole the air check leaves.

At f = 0 the clean accuracy under each protocol.  Writes the JSON after every cell (a rerun skips the cells
it holds) with the control-link cost of a round (``network/commit.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from semguard.data.shipped import shipped_fashion_mnist
from semguard.network.byzantine import ByzantineThreat
from semguard.network.commit import round_cost
from semguard.network.multiagent import MultiAgentConfig, _load_codec, run_multiagent

log = logging.getLogger("bench.network_commit")

SCENARIOS = {
    "omniscient": ("plain", None),
    "predictive": ("commit-reveal", "predictive"),
    "rushing": ("commit-reveal", "rushing"),
    "rushing-air": ("commit-reveal", "rushing-air"),
    "rushing-fade": ("commit-reveal", "rushing-air"),
}
RULES = ("trust-median", "trust-trimmed", "trust", "median", "trimmed-mean", "mean")


def settings(args: argparse.Namespace, scenario: str) -> list[tuple[str, dict]]:
    """``(name, ByzantineThreat kwargs)`` of one attacker's search."""
    out = []
    predictors = args.predictors if scenario == "predictive" else ["residual"]
    for base in args.bases:
        grid = (
            [{"slack": s, "split": bool(sp)} for s in args.slacks for sp in args.splits] if base == "adaptive" else [{}]
        )
        for kw in grid:
            for pred in predictors if scenario != "omniscient" else [None]:
                name = base + "".join(
                    f" {k}={v:g}" if isinstance(v, float) else f" {k}={int(v)}" for k, v in kw.items()
                )
                threat = (
                    {"attack": base, **kw}
                    if scenario == "omniscient"
                    else {"attack": SCENARIOS[scenario][1], "base": base, "predictor": pred, **kw}
                )
                if scenario == "rushing-fade":
                    threat["fade_aware"] = True
                out.append((name + (f" predictor={pred}" if scenario == "predictive" else ""), threat))
    return out


def _sum(res: dict, key: str) -> int:
    return sum(len(r[key]) if isinstance(r[key], list) else r[key] for r in res["rounds"] if key in r)


def cell(x, y, codec, args, f: int, rule: str, scenario: str) -> dict:
    protocol, _ = SCENARIOS[scenario]
    runs = []
    search = settings(args, scenario) if f > 0 else [("none", {"attack": "none"})]
    for name, kw in search:
        th = ByzantineThreat(steps=args.steps, eot=args.eot, sleep_rounds=args.sleep, **kw)
        cfg = MultiAgentConfig(
            agents=args.agents,
            byzantine=f,
            fusion=rule,
            threat=th,
            rounds=args.rounds,
            batch=args.batch,
            seed=args.seed,
            protocol=protocol,
        )
        runs.append((name, run_multiagent(cfg, x, y, codec=codec)))
    name, worst = min(runs, key=lambda nr: nr[1]["accuracy"])
    row = {
        "byzantine": f,
        "fusion": rule,
        "scenario": scenario,
        "protocol": protocol,
        "accuracy": worst["accuracy"],
        "worst_setting": name,
        "oracle_accuracy": worst["oracle_accuracy"],
        "threat": worst["config"]["threat"],
        "search": {n: r["accuracy"] for n, r in runs},
    }
    if protocol == "commit-reveal":
        rounds = worst["rounds"]
        row |= {
            "failed_openings": _sum(worst, "failed_openings"),
            "air_rejected": _sum(worst, "air_rejected"),
            "dropped_honest": _sum(worst, "dropped_honest"),
            "wrong_blocks": _sum(worst, "wrong_blocks"),
            "wrong_blocks_passed": _sum(worst, "wrong_blocks_passed"),
            "banned_at_end": rounds[-1]["banned"],
            "changed_rounds": sum(bool(r["changed"]) for r in rounds),
            "caught_rounds": sum(
                bool(set(r["changed"]) <= set(r["failed_openings"]) | set(r["air_rejected"]) | set(r["banned"]))
                and bool(r["changed"])
                for r in rounds
            ),
            # over the whole search: honest agents dropped, wrong blocks through the air check
            "search_dropped_honest": sum(_sum(r, "dropped_honest") for _, r in runs),
            "search_wrong_blocks": sum(_sum(r, "wrong_blocks") for _, r in runs),
            "search_wrong_blocks_passed": sum(_sum(r, "wrong_blocks_passed") for _, r in runs),
        }
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench/results/network_commit.json"))
    p.add_argument("--agents", type=int, default=10)
    p.add_argument("--byzantine", type=int, nargs="+", default=[3])
    p.add_argument("--rules", nargs="+", choices=RULES, default=list(RULES))
    p.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    p.add_argument("--bases", nargs="+", default=["crafted", "colluding", "camouflage", "adaptive"])
    p.add_argument("--slacks", type=float, nargs="+", default=[0.6, 0.8, 0.95])
    p.add_argument("--splits", type=int, nargs="+", choices=(0, 1), default=[0, 1])
    p.add_argument("--predictors", nargs="+", choices=("residual", "own"), default=["residual", "own"])
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--eot", type=int, default=1)
    p.add_argument("--sleep", type=int, default=3, help="rounds the camouflage agents stay honest")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    x, y = shipped_fashion_mnist(args.rounds * args.batch)
    codec = _load_codec()
    doc = json.loads(args.out.read_text()) if args.out.exists() else {}
    rows = doc.get("rows", [])
    done = {(r["byzantine"], r["fusion"], r["scenario"]) for r in rows}
    cost = asdict(round_cost(args.agents, args.batch, codec.n))
    doc = {
        "name": "network_commit",
        "description": __doc__.split("\n")[0],
        "command": "python bench/network_commit.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "cost": {
            "plain": {
                "up_bytes": 0,
                "broadcast_bytes": 0,
                "round_trips": 1,
                "note": "no control traffic: each block goes over its analog channel only",
            },
            "commit-reveal": cost,
        },
        "rows": rows,
    }
    for f in args.byzantine:
        for rule in args.rules:
            for scenario in args.scenarios if f > 0 else ["omniscient", "predictive"]:
                if (f, rule, scenario) in done:
                    continue
                t0 = time.time()
                row = cell(x, y, codec, args, f, rule, scenario)
                rows.append(row)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(doc, indent=1))
                log.info(
                    "f=%d %-13s %-11s acc %.3f (worst %s; honest-only %.3f)  %.0fs",
                    f,
                    rule,
                    scenario,
                    row["accuracy"],
                    row["worst_setting"],
                    row["oracle_accuracy"],
                    time.time() - t0,
                )
    args.out.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
