"""Issue 24's bad-input cases, run as a new user would: exit code and the message each gives.

    python bench/cli_errors.py [--src PATH_TO_SRC] [--json OUT.json]

Runs ``semguard`` (the ``--src`` tree first on ``PYTHONPATH``; default: this checkout's ``src``)
once per case in a fresh scratch folder and prints one row per case: exit code, whether a
Python traceback was printed, and the last line on stderr.  Run it against two trees to get a
before / after table.  The unwritable-folder case runs as user ``nobody`` (``setpriv``), since
root may write anywhere.  Each case is cut off after ``--timeout`` seconds (a case that starts
training on bad input is reported as ``ran``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

# a train command small enough (later flags override these: argparse keeps the last)
# to finish in seconds (on the tiny image folder made below)
TRAIN = ["train", "adjscc", "--data", "{imgs}", "--width", "8", "--crop", "32", "--steps", "1", "--batch", "2",
         "--channels", "awgn", "--val-snr", "10", "--no-progress", "--out", "{tmp}/run"]


def _cases() -> list[tuple[str, list[str], dict]]:
    t = TRAIN
    return [
        ("run --out FILE (exists)", ["run", "--quick", "--out", "{tmp}/afile"], {}),
        ("run --out unwritable folder", ["run", "--quick", "--out", "{tmp}/ro/out"], {"nobody": True}),
        ("run --out path under a file", ["run", "--quick", "--out", "{tmp}/afile/out"], {}),
        ("train switched", ["train", "switched", "--data", "{imgs}", "--steps", "1", "--out", "{tmp}/run"], {}),
        ("train spread", ["train", "spread", "--data", "{imgs}", "--steps", "1", "--out", "{tmp}/run"], {}),
        ("train --snr-min 30 --snr-max 10", t + ["--snr-min", "30", "--snr-max", "10"], {}),
        ("train --threads 0", t + ["--threads", "0"], {}),
        ("train --device tpu", t + ["--device", "tpu"], {}),
        ("train --val-snr abc", t + ["--val-snr", "abc"], {}),
        ("train --snr-max=-inf", t + ["--snr-max=-inf"], {}),
        ("train --init (111 bytes flipped)", t + ["--init", "{tmp}/flipped.safetensors"], {"init": True}),
        ("train nosuch (unknown codec)", ["train", "nosuch", "--data", "{imgs}"], {}),
        ("train --out FILE (exists)", t + ["--out", "{tmp}/afile"], {}),
        ("train --export under a file", t + ["--export", "{tmp}/afile/w.safetensors"], {}),
        ("train --data random bytes .png", ["train", "adjscc", "--data", "{tmp}/junkimgs", "--steps", "1",
                                             "--out", "{tmp}/run"], {}),
        ("train --steps -5", t + ["--steps", "-5"], {}),
    ]


def _fixture(tmp: Path) -> None:
    (tmp / "afile").write_text("not a folder\n")
    (tmp / "ro").mkdir(mode=0o755)  # owned by root: user nobody cannot write into it
    rng = np.random.default_rng(0)
    (tmp / "imgs").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(tmp / "imgs" / f"{i}.png")
    (tmp / "junkimgs").mkdir()
    (tmp / "junkimgs" / "0.png").write_bytes(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())


def _semguard(src: Path, argv: list[str], env: dict, *, nobody: bool = False, timeout: float) -> dict:
    cmd = [PY, "-c", "import sys; from semguard.cli.main import main; sys.exit(main())", *argv]
    if nobody:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=env["SG_TMP"])
        rc, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, err = "ran", (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("train:", "  "))]
    return {"rc": rc, "seconds": round(time.monotonic() - t0, 1), "traceback": "Traceback" in err,
            "stderr_lines": len([ln for ln in err.splitlines() if ln.strip()]),
            "message": lines[-1][:300] if lines else ""}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="source tree to test (default: this checkout)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--timeout", type=float, default=90.0, help="seconds per case (default: 90)")
    ap.add_argument("--only", default=None, help="run only cases whose name contains this")
    args = ap.parse_args(argv)
    rows = []
    for name, case, opts in _cases():
        if args.only and args.only not in name:
            continue
        tmp = Path(tempfile.mkdtemp(prefix="sg-cli-"))
        os.chmod(tmp, 0o755)
        try:
            _fixture(tmp)
            env = {**os.environ, "PYTHONPATH": str(args.src.resolve()), "SG_TMP": str(tmp), "HF_HUB_OFFLINE": "1"}
            fill = {"tmp": str(tmp), "imgs": str(tmp / "imgs")}
            if opts.get("init"):  # export tiny weights, then flip 111 bytes of their data
                base = [a.format(**fill) for a in TRAIN]
                _semguard(args.src, base + ["--steps", "0", "--out", str(tmp / "w"), "--export",
                                            str(tmp / "w.safetensors")], env, timeout=args.timeout)
                raw = bytearray((tmp / "w.safetensors").read_bytes())
                for i in range(len(raw) - 111, len(raw)):
                    raw[i] ^= 0xFF
                (tmp / "flipped.safetensors").write_bytes(bytes(raw))
            res = _semguard(args.src, [a.format(**fill) for a in case], env, nobody=opts.get("nobody", False),
                            timeout=args.timeout)
            if opts.get("init") and (tmp / "run" / "last.pt").is_file():
                import torch
                meta = torch.load(tmp / "run" / "last.pt", weights_only=True).get("meta", {})
                res["checkpoint_meta"] = meta
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rows.append({"case": name, **res})
        tail = f"  checkpoint meta {res['checkpoint_meta']}" if "checkpoint_meta" in res else ""
        print(f"{name:36s} rc={res['rc']!s:4s} tb={'yes' if res['traceback'] else 'no ':3s} "
              f"lines={res['stderr_lines']:<3d} {res['seconds']:5.1f}s  {res['message']}{tail}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"src": str(args.src), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
