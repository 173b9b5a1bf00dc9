"""Per-session key-agreement figures on fixed cells, and a two-sample comparison of two such files.

    PYTHONPATH=src python bench/keys_sessions.py --sessions 16 --out sessions.json
    python bench/keys_sessions.py --compare before.json after.json

``bench/keys.py`` reports cell means over 3-8 sessions; this keeps every session's figures, so two
implementations of the same model (e.g. before and after a refactor that changes the random
stream) can be compared by Welch's t-test per cell and figure instead of by eye.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import argparse
import json
import math
from pathlib import Path

import numpy as np

FIGURES = ("success", "kgr_bits_per_probe", "kdr_raw", "kdr_reconciled", "eve_kdr_raw", "eve_kdr_aligned",
           "eve_kdr_reconciled", "eve_key_match", "min_entropy_per_symbol", "key_bits")
#: (mode, probing SNR dB, Eve's distance in wavelengths, probe rate Hz)
CELLS = (("mobile", 10.0, 1.0, 100.0), ("mobile", 20.0, 1.0, 100.0), ("mobile", 30.0, 1.0, 100.0),
         ("mobile", 20.0, 0.1, 250.0), ("mobile", 20.0, 0.5, 250.0), ("static", 20.0, 1.0, 100.0),
         ("induced", 20.0, 1.0, 100.0), ("ris", 20.0, 1.0, 100.0))


def measure(sessions: int, probes: int) -> dict:
    import torch

    from semguard.keys import KeyAgreement, ProbeConfig, adaptive_config, simulate_probes

    torch.set_num_threads(1)
    out = {}
    for mode, snr, dist, rate in CELLS:
        rows = []
        for s in range(sessions):
            pc = ProbeConfig(n_probes=probes, snr_db=snr, mode=mode, eve_distance=dist, probe_rate_hz=rate)
            r = KeyAgreement(adaptive_config(snr, mode)).run(simulate_probes(pc, np.random.default_rng([s, 41])),
                                                             np.random.default_rng([s, 42]))
            rows.append({k: float(getattr(r, k)) for k in FIGURES})
        out[f"{mode}/{snr:g}dB/d={dist:g}/{rate:g}Hz"] = rows
        print(mode, snr, dist, {k: round(float(np.nanmean([r[k] for r in rows])), 4) for k in FIGURES}, flush=True)
    return out


def compare(a: dict, b: dict) -> list[dict]:
    """Welch's t-test per cell and figure (NaN sessions dropped); a constant pair is reported as equal."""
    from scipy.stats import ttest_ind

    rows = []
    for cell in a:
        for k in FIGURES:
            x = np.array([r[k] for r in a[cell]], dtype=float)
            y = np.array([r[k] for r in b[cell]], dtype=float)
            x, y = x[np.isfinite(x)], y[np.isfinite(y)]
            if x.size < 2 or y.size < 2:
                continue
            p = 1.0 if np.ptp(np.r_[x, y]) == 0 else float(ttest_ind(x, y, equal_var=False).pvalue)
            rows.append({"cell": cell, "figure": k, "a": float(x.mean()), "b": float(y.mean()),
                         "se": math.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size), "p": p})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=16)
    p.add_argument("--probes", type=int, default=4096)
    p.add_argument("--out", type=Path, default=Path("keys_sessions.json"))
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    args = p.parse_args()
    if args.compare:
        rows = compare(*(json.loads(f.read_text()) for f in args.compare))
        for r in rows:
            flag = " *" if r["p"] < 0.01 else ""
            print(f"{r['cell']:28s} {r['figure']:24s} {r['a']:9.4f} {r['b']:9.4f} se {r['se']:.4f} "
                  f"p {r['p']:.3f}{flag}")
        n, low = len(rows), sum(r["p"] < 0.01 for r in rows)
        print(f"{low} of {n} cell figures differ at p < 0.01 (about {0.01 * n:.1f} expected by chance)")
        return
    args.out.write_text(json.dumps(measure(args.sessions, args.probes), indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
