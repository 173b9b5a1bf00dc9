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
        decode = args.decode if protocol == "commit-reveal" else "air"
        cfg = MultiAgentConfig(
            decode=decode,
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
        "decode": args.decode if protocol == "commit-reveal" else "air",
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


def _key(r: dict) -> tuple:
    return r["byzantine"], r["fusion"], r["scenario"], r.get("decode", "air")


def tables(doc: dict, decode: str = "air") -> str:
    """Markdown: accuracy per f and rule, one column per attacker (the worst of its search), and honest-only."""
    rows = [r for r in doc["rows"] if r.get("decode", "air") == decode or r["protocol"] == "plain"]
    if decode != "air":  # only the f it was run at
        fs = {r["byzantine"] for r in rows if r.get("decode") == decode}
        rows = [r for r in rows if r["byzantine"] in fs]
    cells = {(r["byzantine"], r["fusion"], r["scenario"]): r for r in rows}
    scen = [s for s in SCENARIOS if any(r["scenario"] == s and r["byzantine"] > 0 for r in rows)]
    out = ["| f | rule | " + " | ".join(scen) + " | honest-only mean |", "|---" * (len(scen) + 3) + "|"]
    for f in sorted({r["byzantine"] for r in rows}):
        for rule in RULES:
            if f == 0:
                got = [cells.get((0, rule, s)) for s in ("omniscient", "predictive")]
                if got[0] is None:
                    continue
                vals = [
                    f"{got[0]['accuracy']:.3f} (plain)",
                    f"{got[1]['accuracy']:.3f} (commit-reveal)" if got[1] else "-",
                ] + ["-"] * (len(scen) - 2)
                out.append(f"| 0 | {rule} | " + " | ".join(vals) + f" | {got[0]['oracle_accuracy']:.3f} |")
                continue
            got = [cells.get((f, rule, s)) for s in scen]
            if all(g is None for g in got):
                continue
            ora = next(g for g in got if g is not None)["oracle_accuracy"]
            out.append(
                f"| {f} | {rule} | "
                + " | ".join("-" if g is None else f"{g['accuracy']:.3f}" for g in got)
                + f" | {ora:.3f} |"
            )
    return "\n".join(out)


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
    p.add_argument(
        "--decode",
        choices=("air", "opened"),
        default="air",
        help="commit-reveal: the node decodes the air block, or the opened bytes (the air only checks them)",
    )
    p.add_argument("--tables", action="store_true", help="print the markdown table of --out and exit")
    args = p.parse_args(argv)
    if args.tables:
        doc = json.loads(args.out.read_text())
        for decode in ("air", "opened"):
            if any(r.get("decode") == decode for r in doc["rows"]) or decode == "air":
                print(f"decode {decode}:\n{tables(doc, decode)}\n")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    x, y = shipped_fashion_mnist(args.rounds * args.batch)
    codec = _load_codec()
    doc = json.loads(args.out.read_text()) if args.out.exists() else {}
    rows = doc.get("rows", [])
    done = {_key(r) for r in rows}
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
                if (f, rule, scenario, args.decode if SCENARIOS[scenario][0] == "commit-reveal" else "air") in done:
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
