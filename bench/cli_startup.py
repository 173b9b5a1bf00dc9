"""Start-up time of the command line: ``semguard --help`` and ``semguard list``, two trees side by side.

    python bench/cli_startup.py [--before /work/main/src] [--after src] [--repeat 5] [--json OUT.json]

Each command runs ``--repeat`` times per tree in a fresh interpreter, the trees alternating so
that both see the same machine load; prints the median and min wall time, and whether torch was
imported.  JSON: ``{name, description, results: {command: {tree: {median_s, min_s, runs_s, torch}}}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"semguard --help": ["--help"], "semguard train --help": ["train", "--help"], "semguard list": ["list"]}
PROBE = ("import sys, contextlib, io\n"
         "from semguard.cli.main import main\n"
         "with contextlib.redirect_stdout(io.StringIO()):\n"
         "    try:\n        rc = main(sys.argv[1:])\n    except SystemExit as e:\n        rc = e.code\n"
         "print('torch' in sys.modules, file=sys.stderr)\n")


def _once(src: Path, argv: list[str]) -> tuple[float, bool]:
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, timeout=300)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{src}: semguard {' '.join(argv)} failed: {p.stderr[-500:]}")
    return dt, p.stderr.strip().splitlines()[-1] == "True"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, default=Path("/work/main/src"), help="tree of today's CLI")
    ap.add_argument("--after", type=Path, default=ROOT / "src", help="tree with the lazy imports")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    res: dict[str, dict[str, dict]] = {}
    for name, cmd in COMMANDS.items():
        runs: dict[str, list[float]] = {t: [] for t in trees}
        torch_loaded: dict[str, bool] = {}
        for _ in range(args.repeat):
            for t, src in trees.items():
                dt, tl = _once(src, cmd)
                runs[t].append(dt)
                torch_loaded[t] = tl
        res[name] = {t: {"median_s": round(statistics.median(v), 3), "min_s": round(min(v), 3),
                         "runs_s": [round(x, 3) for x in v], "torch": torch_loaded[t]} for t, v in runs.items()}
        b, a = res[name]["before"], res[name]["after"]
        print(f"{name:24s} before {b['median_s']:6.2f} s (min {b['min_s']:.2f}, torch {b['torch']})   "
              f"after {a['median_s']:6.2f} s (min {a['min_s']:.2f}, torch {a['torch']})", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"name": "cli_startup", "description": __doc__.splitlines()[0],
                                         "trees": {k: str(v) for k, v in trees.items()},
                                         "load_avg": os.getloadavg(), "results": res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
