"""Learning curves of federated runs, read back from bench/federated.py's JSON files.

    PYTHONPATH=src python bench/federated_horizon.py bench/results/federated_s15_horizon*.json \
        --horizons 6 10 15 20 25 30 --out bench/results/federated_s15_horizon_table.json

Nothing is trained here.  Every run of ``bench/federated.py`` keeps its accuracy after each round
(``accuracy_by_round``), and no rule, attack or client schedule of the task codec looks at the total
number of rounds (only DP does, and DP is off), so the first H rounds of a 30-round run are the run
with ``--rounds H``.  ``--check`` names older 6-round files whose final accuracies the round-6 values
must reproduce (that is what shows the prefix claim holds, not the argument above).  Prints, per
seed and horizon, clean FedAvg, honest-only FedAvg (the oracle that drops the attackers) and every
other run, and the first round from which honest-only stays within ``--tol`` of clean FedAvg.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def at_round(curve: list[float], rnd: int) -> float | None:
    """Accuracy after round ``rnd`` (1-based) of a per-round curve; None when the run is shorter."""
    if rnd < 1:
        raise ValueError(f"round must be >= 1, got {rnd}")
    return curve[rnd - 1] if rnd <= len(curve) else None


def window_mean(curve: list[float], rnd: int, width: int) -> float | None:
    """Mean accuracy over rounds ``rnd - width + 1 .. rnd`` (the test set is 400 images, so one
    round's accuracy moves by a few points); None when the run is shorter or starts later."""
    if width < 1:
        raise ValueError(f"--window must be >= 1, got {width}")
    if at_round(curve, rnd) is None or rnd < width:
        return None
    return sum(curve[rnd - width:rnd]) / width


def first_within(reference: list[float], other: list[float], tol: float) -> int | None:
    """First round r (1-based) such that ``other`` is at least ``reference - tol`` in round r and
    every later round both curves have; None when there is no such round."""
    n = min(len(reference), len(other))
    first = None
    for r in range(n, 0, -1):
        if other[r - 1] < reference[r - 1] - tol - 1e-12:
            break
        first = r
    return first


def merge_runs(paths: list[Path]) -> dict[str, dict]:
    """Every run of the files, keyed as in bench/federated.py; one key in two files must agree."""
    runs: dict[str, dict] = {}
    for path in paths:
        for key, rec in json.loads(path.read_text())["runs"].items():
            if "accuracy_by_round" not in rec:
                continue
            if key in runs:
                old, new = runs[key]["accuracy_by_round"], rec["accuracy_by_round"]
                n = min(len(old), len(new))
                if old[:n] != new[:n]:
                    raise ValueError(f"{key} differs between the files")
            if key not in runs or len(rec["accuracy_by_round"]) > len(runs[key]["accuracy_by_round"]):
                runs[key] = rec
    return runs


def check_prefix(runs: dict[str, dict], old: dict[str, dict], rnd: int) -> list[str]:
    """Keys of ``old`` (runs of ``rnd`` rounds) whose final accuracy the round-``rnd`` value of the
    same key in ``runs`` does not reproduce to 4 decimals."""
    bad = []
    for key, rec in old.items():
        if key in runs and len(rec.get("accuracy_by_round", [])) == rnd:
            if at_round(runs[key]["accuracy_by_round"], rnd) != round(rec["accuracy"], 4):
                bad.append(key)
    return bad


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", type=Path, nargs="+")
    p.add_argument("--horizons", type=int, nargs="+", default=[6, 10, 15, 20, 25, 30])
    p.add_argument("--tol", type=float, default=0.02)
    p.add_argument("--window", type=int, default=1, help="average this many rounds ending at H (1: round H)")
    p.add_argument("--check", type=Path, nargs="*", default=[])
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    runs = merge_runs(args.files)
    seeds = sorted({int(k.rsplit("|", 1)[1]) for k in runs})
    table: dict = {"horizons": args.horizons, "tol": args.tol, "window": args.window, "seeds": {}}
    for old in args.check:
        old_runs = json.loads(old.read_text())["runs"]
        matched = [k for k in old_runs if k in runs and "accuracy" in old_runs[k]]
        bad = check_prefix(runs, old_runs, 6)
        print(f"check {old}: {len(matched)} keys in common, {len(bad)} differ at round 6 {bad}")
        table.setdefault("check", {})[str(old)] = {"common": len(matched), "differ": bad}
    for seed in seeds:
        keys = sorted(k for k in runs if k.endswith(f"|{seed}"))
        clean = runs.get(f"clean|fedavg|{seed}", {}).get("accuracy_by_round", [])
        what = "accuracy after round H" if args.window == 1 else f"mean accuracy over rounds H-{args.window - 1}..H"
        print(f"\nseed {seed}; {what}; 'within': first round from which the run (single rounds) stays "
              f"within {args.tol} of clean FedAvg")
        print(f"{'run':34s}" + "".join(f"{h:>7d}" for h in args.horizons) + f"{'within':>8s}")
        rows = {}
        for key in keys:
            curve = runs[key]["accuracy_by_round"]
            vals = [window_mean(curve, h, args.window) for h in args.horizons]
            w = first_within(clean, curve, args.tol) if clean else None
            rows[key] = {"by_horizon": dict(zip(map(str, args.horizons), vals)), "within_clean_from": w,
                         "backdoor_success_final": runs[key].get("backdoor_success"), "rounds": len(curve)}
            print(f"{key:34s}" + "".join(f"{v:7.3f}" if v is not None else f"{'-':>7s}" for v in vals)
                  + f"{w if w is not None else '-':>8}")
        table["seeds"][str(seed)] = rows
    if args.out:
        args.out.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
