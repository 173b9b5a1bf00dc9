"""PLKG sessions of the runtime (tx = Alice, rx = Bob) through the emulator's reciprocal probe channel,
in one process: success rate and key length per probing SNR.

    python bench/runtime_plkg.py [--sessions 40]

Each session is the full message exchange of ``semguard.runtime.plkg`` with the probe blocks passed
through ``ProbeChannel`` exactly as the emulator's handshake relay does (Jakes, 100 Hz Doppler, 250
probes/s, 4096 probes each way, 0.1 ms turnaround), the key sized for the default declared Eve.
"""

from __future__ import annotations

import argparse
import collections
import json

import numpy as np

from semguard.runtime.handshake import HandshakeError
from semguard.runtime.kbview import KbView
from semguard.runtime.plkg import PlkgConfig, PlkgInitiator, PlkgResponder
from semguard.runtime.probe_channel import ProbeChannel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=40)
    ap.add_argument("--snr", default="20,25,30")
    args = ap.parse_args()
    kb = KbView("kb", 1, "00" * 32)
    for snr in (float(x) for x in args.snr.split(",")):
        outcome: collections.Counter = collections.Counter()
        bits = []
        for seed in range(args.sessions):
            cfg = PlkgConfig(snr_db=snr)
            bob = PlkgInitiator(kb, cfg, rng=np.random.default_rng(seed + 100))
            alice = PlkgResponder(kb, cfg, rng=np.random.default_rng(seed + 200))
            ch = ProbeChannel(seed=seed, snr_db=snr)
            try:
                msg = bob.first()
                while msg is not None:
                    msg = bob.handle(ch.through(alice.handle(ch.through(msg, "tx")), "rx"))
                outcome["key" if alice.master == bob.master else "mismatch"] += 1
                bits.append(alice.info["key_bits"])
            except HandshakeError as exc:
                outcome[" ".join(str(exc).split()[:4])] += 1
        q = [float(v) for v in np.percentile(bits, [5, 50, 95])] if bits else []
        print(json.dumps({"snr_db": snr, "outcomes": dict(outcome), "key_bits_p5_p50_p95": q,
                          "bits_per_probe_median": float(np.median(bits)) / 4096 if bits else 0.0}))


if __name__ == "__main__":
    main()
