"""``semguard keygen``: simulate physical-layer key generation and report its metrics.

Prints one row per SNR and writes the same numbers as JSON (never the key material).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from semguard.keys.agreement import BASELINE, KeyAgreement, adaptive_config
from semguard.keys.nist import run_nist
from semguard.keys.probing import MODES, ProbeConfig, simulate_probes

__all__ = ["add_parser", "run", "keygen_rows"]

log = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    """Add the ``keygen`` subcommand."""
    p = subparsers.add_parser("keygen", help="physical-layer key generation: KGR, KDR, Eve's KDR, NIST tests",
                              description=__doc__)
    p.add_argument("--snr-db", type=float, nargs="+", default=[20.0], help="probing SNR(s) in dB (Es/N0)")
    p.add_argument("--probes", type=int, default=4096, help="probes per session")
    p.add_argument("--eve-distance", type=float, default=1.0, help="Eve's distance from Bob in wavelengths")
    p.add_argument("--static", action="store_true", help="static environment (no Doppler)")
    p.add_argument("--induced", action="store_true", help="static + induced randomness at both ends")
    p.add_argument("--ris", action="store_true", help="static + RIS with random phase configurations")
    p.add_argument("--doppler-hz", type=float, default=100.0, help="maximum Doppler shift (mobile)")
    p.add_argument("--probe-rate", type=float, default=250.0, help="probes per second")
    p.add_argument("--baseline", action="store_true", help="run the baseline pipeline (mean threshold, plain hash)")
    p.add_argument("--sessions", type=int, default=1, help="independent sessions per SNR (averaged)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nist", action="store_true", help="run NIST SP 800-22 on the concatenated final keys")
    p.add_argument("--out", type=Path, default=Path("keygen.json"), help="JSON results file")
    p.set_defaults(func=run)


def _mode(args: argparse.Namespace) -> str:
    chosen = [m for m, flag in (("induced", args.induced), ("ris", args.ris), ("static", args.static)) if flag]
    if len(chosen) > 1 and set(chosen) != {"static", chosen[0]}:
        raise SystemExit("choose at most one of --induced and --ris")
    mode = chosen[0] if chosen else "mobile"
    assert mode in MODES
    return mode


def keygen_rows(snrs: list[float], *, probes: int, eve_distance: float, mode: str, doppler_hz: float,
                probe_rate: float, baseline: bool, sessions: int, seed: int) -> tuple[list[dict], list[np.ndarray]]:
    """Run ``sessions`` agreements per SNR; returns averaged metric rows and the final key bits."""
    rows, keys = [], []
    for i, snr in enumerate(snrs):
        agree = KeyAgreement(BASELINE if baseline else adaptive_config(snr, mode))
        res = []
        for s in range(sessions):
            rng = np.random.default_rng([seed, i, s])
            cfg = ProbeConfig(n_probes=probes, snr_db=snr, eve_distance=eve_distance, mode=mode,
                              doppler_hz=doppler_hz, probe_rate_hz=probe_rate)
            r = agree.run(simulate_probes(cfg, rng), rng)
            res.append(r)
            if r.key is not None:
                keys.append(np.unpackbits(np.frombuffer(r.key, dtype=np.uint8)))
        def mean(f: str, res: list = res) -> float:
            vals = np.array([getattr(r, f) for r in res], dtype=float)
            return float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
        rows.append({"snr_db": snr, "mode": mode, "pipeline": "baseline" if baseline else "semguard",
                     "sessions": sessions, "success_rate": mean("success"), "key_bits": mean("key_bits"),
                     "kgr_bits_per_probe": mean("kgr_bits_per_probe"),
                     "kgr_bits_per_second": mean("kgr_bits_per_second"), "kdr_raw": mean("kdr_raw"),
                     "kdr_reconciled": mean("kdr_reconciled"), "eve_kdr_raw": mean("eve_kdr_raw"), "eve_kdr_aligned": mean("eve_kdr_aligned"),
                     "eve_key_match_rate": mean("eve_key_match"), "leaked_bits": mean("leaked_bits"),
                     "min_entropy_per_symbol": mean("min_entropy_per_symbol"),
                     "reasons": sorted({r.reason for r in res if r.reason}),
                     "sessions_detail": [r.to_dict() for r in res]})
    return rows, keys


def run(args: argparse.Namespace) -> int:
    mode = _mode(args)
    if args.out.is_dir():
        raise SystemExit(f"semguard keygen: --out {args.out} is a folder; give a file path such as {args.out / 'keys.json'}")
    rows, keys = keygen_rows(args.snr_db, probes=args.probes, eve_distance=args.eve_distance, mode=mode,
                             doppler_hz=args.doppler_hz, probe_rate=args.probe_rate, baseline=args.baseline,
                             sessions=args.sessions, seed=args.seed)
    if mode == "induced":
        log.warning("induced randomness: an eavesdropper who hears both random transmissions at a comparable "
                    "SNR learns the key up to one constant phase (see the 'Eve rot' column and "
                    "induced_eve_snr in bench/keys.py); it protects only against a much weaker Eve")
    print(f"{'SNR dB':>7} {'mode':>8} {'ok':>5} {'bits':>7} {'b/probe':>8} {'b/s':>8} "
          f"{'KDR raw':>8} {'KDR rec':>8} {'Eve KDR':>8} {'Eve rot':>8}")
    for r in rows:
        print(f"{r['snr_db']:7.1f} {r['mode']:>8} {r['success_rate']:5.2f} {r['key_bits']:7.0f} "
              f"{r['kgr_bits_per_probe']:8.3f} {r['kgr_bits_per_second']:8.1f} {r['kdr_raw']:8.4f} "
              f"{r['kdr_reconciled']:8.4f} {r['eve_kdr_raw']:8.4f} {r['eve_kdr_aligned']:8.4f}")
    out: dict[str, Any] = {"name": "keygen", "config": {k: (str(v) if isinstance(v, Path) else v)
                                                         for k, v in vars(args).items() if k != "func"},
                           "results": rows}
    if args.nist:
        bits = np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint8)
        if bits.size < 100:
            print("NIST: not enough key bits (need >= 100)")
            out["nist"] = None
        else:
            nist = run_nist(bits).to_dict()
            out["nist"] = nist
            print(f"NIST SP 800-22 on {bits.size} key bits: "
                  + ", ".join(f"{k}={'pass' if v else 'FAIL'}" for k, v in nist["passed"].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=float))
    print(f"wrote {args.out}")
    return 0
