"""Start-up time of the command line: ``semguard --help`` and ``semguard list``, two trees side by side.

    python bench/cli_startup.py [--before /work/main/src] [--after src] [--repeat 5] [--json OUT.json]
        [--only "runtime PLKG start"]

``runtime PLKG start`` is the import a ``semguard tx|rx|channel`` process with the PLKG key source
makes before its first message (``semguard.cli.runtime``, ``runtime.plkg``, ``runtime.emulator``,
``runtime.mallory``, ``runtime.plkg_eve``); it also reports whether ``scipy.stats`` was loaded.
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
COMMANDS: dict[str, list[str] | None] = {"semguard --help": ["--help"], "semguard train --help": ["train", "--help"],
                                         "semguard list": ["list"], "runtime PLKG start": None}
PROBE = ("import sys, contextlib, io\n"
         "from semguard.cli.main import main\n"
         "with contextlib.redirect_stdout(io.StringIO()):\n"
         "    try:\n        rc = main(sys.argv[1:])\n    except SystemExit as e:\n        rc = e.code\n"
         "print('torch' in sys.modules, file=sys.stderr)\n")
RUNTIME = "runtime PLKG start"
RUNTIME_PROBE = ("import sys\n"
                 "import semguard.cli.runtime, semguard.runtime.plkg, semguard.runtime.emulator, semguard.runtime.mallory, "
                 "semguard.runtime.plkg_eve\n"
                 "print('scipy.stats' in sys.modules, file=sys.stderr)\n"
                 "print('torch' in sys.modules, file=sys.stderr)\n")


def _once(src: Path, argv: list[str] | None) -> tuple[float, bool, bool | None]:
    """Wall time of one fresh interpreter, whether it loaded torch, and (runtime probe) ``scipy.stats``."""
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-c", RUNTIME_PROBE] if argv is None else [sys.executable, "-c", PROBE, *argv]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{src}: {' '.join(cmd[3:]) or RUNTIME} failed: {p.stderr[-500:]}")
    lines = p.stderr.strip().splitlines()
    return dt, lines[-1] == "True", (lines[-2] == "True") if argv is None else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, default=Path("/work/main/src"), help="tree of today's CLI")
    ap.add_argument("--after", type=Path, default=ROOT / "src", help="tree with the lazy imports")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--only", action="append", choices=list(COMMANDS), help="run only this command (repeatable)")
    args = ap.parse_args(argv)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    res: dict[str, dict[str, dict]] = {}
    for name, cmd in COMMANDS.items():
        if args.only and name not in args.only:
            continue
        runs: dict[str, list[float]] = {t: [] for t in trees}
        torch_loaded: dict[str, bool] = {}
        stats_loaded: dict[str, bool | None] = {}
        for _ in range(args.repeat):
            for t, src in trees.items():
                dt, tl, sl = _once(src, cmd)
                runs[t].append(dt)
                torch_loaded[t], stats_loaded[t] = tl, sl
        res[name] = {t: {"median_s": round(statistics.median(v), 3), "min_s": round(min(v), 3),
                         "runs_s": [round(x, 3) for x in v], "torch": torch_loaded[t],
                         **({} if stats_loaded[t] is None else {"scipy_stats": stats_loaded[t]})}
                     for t, v in runs.items()}
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
