"""semguard keygen: simulate physical-layer key generation and report its metrics.

Prints one row per SNR and writes the same numbers as JSON (never the key material; NaN is
written as null).  Keys are sized against a declared eavesdropper (--eve-min-distance,
--eve-max-correlation, --eve-snr-db; default: a noiseless Eve at least 0.5 wavelengths from
Bob) and the public discussion is authenticated with an identity key (--identity-key, or a
fresh pre-shared key per run).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from semguard.keys.nist import run_nist
from semguard.keys.probing import MODES
from semguard.keys.sessions import json_safe, keygen_rows

__all__ = ["add_parser", "run", "SNR_RANGE_DB", "MAX_PROBES", "MAX_SESSIONS"]

log = logging.getLogger(__name__)

#: accepted probing SNRs (dB): below -30 dB nothing is agreed, above 60 dB noise is below float precision effects
SNR_RANGE_DB = (-30.0, 60.0)
#: most probes per session (2^18: about 60 MB of traces and bits)
MAX_PROBES = 1 << 18
MAX_SESSIONS = 10_000


def _number(lo: float, hi: float, *, integer: bool = False, lo_open: bool = False) -> Callable[[str], float]:
    """argparse type: a finite number in ``[lo, hi]`` (``(lo, hi]`` if ``lo_open``)."""
    def parse(text: str) -> float:
        try:
            v = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if integer else 'a number'}, got {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if v > hi or v < lo or (lo_open and v == lo):
            left = "(" if lo_open else "["
            raise argparse.ArgumentTypeError(f"{text} is outside the accepted range {left}{lo:g}, {hi:g}]")
        return v
    return parse


def add_parser(subparsers: Any) -> None:
    """Add the ``keygen`` subcommand."""
    p = subparsers.add_parser("keygen", help="physical-layer key generation: KGR, KDR, Eve's KDR, NIST tests",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--snr-db", type=_number(*SNR_RANGE_DB), nargs="+", default=[20.0],
                   help=f"probing SNR(s) in dB (Es/N0), in [{SNR_RANGE_DB[0]:g}, {SNR_RANGE_DB[1]:g}]")
    p.add_argument("--probes", type=_number(16, MAX_PROBES, integer=True), default=4096,
                   help=f"probes per session, 16..{MAX_PROBES}")
    p.add_argument("--eve-distance", type=_number(0, 1000), default=1.0,
                   help="the simulated Eve's distance from Bob in wavelengths")
    p.add_argument("--eve-min-distance", type=_number(0, 1000), default=0.5,
                   help="declared Eve model: the key is secret against Eve at least this many wavelengths away")
    p.add_argument("--eve-max-correlation", type=_number(0, 1), default=None,
                   help="declared Eve model: her channel correlation is at most this (overrides the distance)")
    p.add_argument("--eve-snr-db", type=_number(-30, 100), default=None,
                   help="declared Eve model: her SNR in dB (default: noiseless)")
    p.add_argument("--unconditional", action="store_true",
                   help="size keys by Alice's min-entropy and leakage only (no Eve model; for comparison)")
    p.add_argument("--identity-key", type=Path, default=None,
                   help="file holding the pre-shared identity secret (>= 16 bytes) that MACs the public discussion")
    p.add_argument("--static", action="store_true", help="static environment (no Doppler)")
    p.add_argument("--induced", action="store_true", help="static + induced randomness at both ends")
    p.add_argument("--ris", action="store_true", help="static + RIS with random phase configurations")
    p.add_argument("--doppler-hz", type=_number(0, 1e5), default=100.0, help="maximum Doppler shift (mobile)")
    p.add_argument("--probe-rate", type=_number(0, 1e7, lo_open=True), default=250.0, help="probes per second")
    p.add_argument("--baseline", action="store_true", help="run the baseline pipeline (mean threshold, plain hash)")
    p.add_argument("--sessions", type=_number(1, MAX_SESSIONS, integer=True), default=1,
                   help=f"independent sessions per SNR (averaged), 1..{MAX_SESSIONS}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nist", action="store_true", help="run NIST SP 800-22 on the concatenated final keys")
    p.add_argument("--out", type=Path, default=Path("keygen.json"), help="JSON results file")
    p.set_defaults(func=run)


def _mode(args: argparse.Namespace) -> str:
    chosen = [m for m, flag in (("induced", args.induced), ("ris", args.ris), ("static", args.static)) if flag]
    if len(chosen) > 1 and set(chosen) != {"static", chosen[0]}:
        raise ValueError("choose at most one of --induced and --ris")
    mode = chosen[0] if chosen else "mobile"
    assert mode in MODES
    return mode


def _identity(path: Path | None) -> bytes:
    if path is None:
        return os.urandom(32)                                             # both ends run here: a fresh pre-shared key
    secret = path.read_bytes()
    if len(secret) < 16:
        raise ValueError(f"--identity-key {path}: need at least 16 bytes of secret, got {len(secret)}")
    return secret


def run(args: argparse.Namespace) -> int:
    mode = _mode(args)
    if args.out.is_dir():
        raise ValueError(f"--out {args.out} is a folder; give a file path such as {args.out / 'keys.json'}")
    overrides = ({"eve_sizing": "none"} if args.unconditional else
                 {"eve_min_distance": args.eve_min_distance, "eve_max_correlation": args.eve_max_correlation,
                  "eve_snr_db": args.eve_snr_db})
    rows, keys = keygen_rows(args.snr_db, probes=args.probes, eve_distance=args.eve_distance, mode=mode,
                             doppler_hz=args.doppler_hz, probe_rate=args.probe_rate, baseline=args.baseline,
                             sessions=args.sessions, seed=args.seed, overrides=overrides,
                             identity_key=_identity(args.identity_key))
    if mode == "induced":
        log.warning("induced randomness: an eavesdropper who hears both random transmissions at a comparable "
                    "SNR learns the key up to one constant phase (see the 'Eve rot' column and "
                    "induced_eve_snr in bench/keys.py); her distance does not bound that, so keys are sized "
                    "for correlation 1 (none) unless --eve-max-correlation is declared")
    print(f"key secret against: {rows[0]['eve_model']}")
    print(f"{'SNR dB':>7} {'mode':>8} {'ok':>5} {'bits':>7} {'b/probe':>8} {'b/s':>8} "
          f"{'KDR raw':>8} {'KDR rec':>8} {'Eve KDR':>8} {'Eve rot':>8} {'Eve rec':>8} {'Eve=key':>7}")
    for r in rows:
        print(f"{r['snr_db']:7.1f} {r['mode']:>8} {r['success_rate']:5.2f} {r['key_bits']:7.0f} "
              f"{r['kgr_bits_per_probe']:8.3f} {r['kgr_bits_per_second']:8.1f} {r['kdr_raw']:8.4f} "
              f"{r['kdr_reconciled']:8.4f} {r['eve_kdr_raw']:8.4f} {r['eve_kdr_aligned']:8.4f} "
              f"{r['eve_kdr_reconciled']:8.4f} {r['eve_key_match_rate']:7.2f}")
        for why in r["reasons"]:
            print(f"{'':>7} no key: {why}")
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
    args.out.write_text(json.dumps(json_safe(out), indent=2, allow_nan=False))
    print(f"wrote {args.out}")
    return 0
