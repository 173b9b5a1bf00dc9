"""PLKG sessions of the runtime (tx = Alice, rx = Bob) through the emulator's reciprocal probe channel,
in one process: success rate and key length per probing SNR.

    python bench/runtime_plkg.py [--sessions 40] [--snr 20,25,30] [--out bench/results/runtime_plkg.json]

Each session is the full message exchange of ``semguard.runtime.plkg`` with the probe blocks passed
through ``ProbeChannel`` exactly as the emulator's handshake relay does (Jakes, 100 Hz Doppler, 250
probes/s, 4096 probes each way, 0.1 ms turnaround), the key sized for the default declared Eve.
Per session (seeds: channel ``seed``, Bob ``seed + 100``, Alice ``seed + 200``) the JSON records the
outcome, Alice's KDR estimate and upper bound, the BCH code she chose (``bch_m``, ``bch_t``) and whether
an m = 12 code alone would have had a ``t`` for it (bchlib's ``t`` stops at 64, so m = 12 stops near
1.05 %; ``keys.reconcile.choose_code`` then takes a shorter code).
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np

from semguard.keys.reconcile import choose_t
from semguard.runtime.handshake import HandshakeError
from semguard.runtime.kbview import KbView
from semguard.runtime.plkg import PlkgConfig, PlkgInitiator, PlkgResponder
from semguard.runtime.probe_channel import ProbeChannel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=40)
    ap.add_argument("--snr", default="20,25,30")
    ap.add_argument("--out", default=None, help="JSON with the per-session records")
    args = ap.parse_args()
    kb = KbView("kb", 1, "00" * 32)
    rows = []
    for snr in (float(x) for x in args.snr.split(",")):
        outcome: collections.Counter = collections.Counter()
        bits = []
        sessions = []
        for seed in range(args.sessions):
            cfg = PlkgConfig(snr_db=snr)
            bob = PlkgInitiator(kb, cfg, rng=np.random.default_rng(seed + 100))
            alice = PlkgResponder(kb, cfg, rng=np.random.default_rng(seed + 200))
            ch = ProbeChannel(seed=seed, snr_db=snr)
            try:
                msg = bob.first()
                while msg is not None:
                    msg = bob.handle(ch.through(alice.handle(ch.through(msg, "tx")), "rx"))
                result = "key" if alice.master == bob.master else "mismatch"
                bits.append(alice.info["key_bits"])
            except HandshakeError as exc:
                result = " ".join(str(exc).split()[:4])
            outcome[result] += 1
            info = alice.info
            upper = info.get("kdr_upper")
            sessions.append({"seed": seed, "outcome": result, "kdr_estimate": info.get("kdr_estimate"),
                             "kdr_upper": upper, "bch_m": info.get("bch_m"), "bch_t": info.get("bch_t"),
                             "key_bits": info.get("key_bits") if result == "key" else None,
                             "m12_has_code": None if upper is None else choose_t(upper, 12) is not None})
        q = [float(v) for v in np.percentile(bits, [5, 50, 95])] if bits else []
        row = {"snr_db": snr, "outcomes": dict(outcome), "key_bits_p5_p50_p95": q,
               "bits_per_probe_median": float(np.median(bits)) / 4096 if bits else 0.0,
               "bch_m_chosen": dict(collections.Counter(str(x["bch_m"]) for x in sessions if x["bch_m"] is not None))}
        print(json.dumps(row), flush=True)
        rows.append({**row, "sessions": sessions})
    if args.out:
        Path(args.out).write_text(json.dumps({"name": "runtime_plkg", "sessions": args.sessions, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
