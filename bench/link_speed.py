"""Speed of the digital link's pieces, old against new, interleaved in one run so the ratios survive
a noisy machine.

    python bench/link_speed.py [--out bench-link-speed.json] [--threads 1] [--repeats 3]

* decoder: Sionna's LDPC5GDecoder running all 20 BP iterations against the early-stopping loop
  (converged codewords leave the batch), on the same LLRs of 256 codewords at 1 dB above the
  MCS's table threshold;
* demapper: Sionna's 2^m-point "app" demapper against the separable I/Q one (same LLRs);
* AMC: one ``best_mcs`` decision at 10 dB for the main job's 32768 symbols, simulated (Clopper-Pearson
  sized, cold cache) against read from the shipped table.
Reports median seconds of each and the ratio old / new.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import time
from pathlib import Path

import torch

from semguard.baselines.bler_table import shipped_bler_table
from semguard.baselines.mcs import best_mcs, clear_bler_cache
from semguard.baselines.phy import MCS, LdpcQamPhy, codeword_layout

log = logging.getLogger("bench.link_speed")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _llrs(phy: LdpcQamPhy, snr_db: float, count: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    u = torch.randint(0, 2, (count, 1, phy.k), generator=gen).float()
    x = phy.modulate(u, phy.n_cw // phy.m, generator=gen)
    no = torch.full(x.shape, 10 ** (-snr_db / 10))
    noise = torch.complex(torch.randn(x.shape, generator=gen), torch.randn(x.shape, generator=gen))
    return x + noise * (no / 2).sqrt(), no


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench-link-speed.json"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mcs", nargs="+", default=["QPSK-1/2", "16QAM-3/4", "256QAM-3/4"])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    table = shipped_bler_table()
    gen = torch.Generator().manual_seed(0)
    results: dict[str, dict] = {}
    for name in args.mcs:
        mcs = MCS.parse(name)
        lay = codeword_layout(mcs, 32768)
        pts = table.points(mcs.name, lay.n_cw) if table is not None and (mcs.name, lay.n_cw) in table else {}
        thr = max(pts) if pts else 10 * math.log10(2 ** mcs.spectral_efficiency - 1) + 2.0
        snr = thr + 1.0
        full = LdpcQamPhy(mcs.bits_per_symbol, lay.n_cw, lay.k, early_stop=False)
        fast = LdpcQamPhy(mcs.bits_per_symbol, lay.n_cw, lay.k)
        y, no = _llrs(full, snr, 256, gen)
        llr = fast.llr(y, no).reshape(256, lay.n_cw)
        t = {"decode_full": [], "decode_early_stop": [], "demap_sionna": [], "demap_separable": []}
        for _ in range(args.repeats):  # interleaved
            t["decode_full"].append(_timed(lambda: full.decode(llr)))
            t["decode_early_stop"].append(_timed(lambda: fast.decode(llr)))
            t["demap_sionna"].append(_timed(lambda: full.demapper(y, no)))
            t["demap_separable"].append(_timed(lambda: fast.llr(y, no)))
        med = {k: statistics.median(v) for k, v in t.items()}
        same = bool(torch.equal(full.decode(llr), fast.decode(llr)))
        results[name] = {"snr_db": snr, "codewords": 256, "n_cw": lay.n_cw, "median_s": med,
                         "decoder_speedup": med["decode_full"] / med["decode_early_stop"],
                         "demapper_speedup": med["demap_sionna"] / med["demap_separable"],
                         "identical_decisions": same}
        log.info("%s at %.2f dB: decoder %.2fx (%.2f -> %.2f s / 256 cw), demapper %.1fx, identical %s", name, snr,
                 results[name]["decoder_speedup"], med["decode_full"], med["decode_early_stop"],
                 results[name]["demapper_speedup"], same)
    amc = {"simulate": [], "table": []}
    for _ in range(1 if table is not None else 0):  # a cold simulated decision takes minutes
        clear_bler_cache()
        amc["simulate"].append(_timed(lambda: best_mcs(10.0, 32768, bler_table=None)))
        amc["table"].append(_timed(lambda: best_mcs(10.0, 32768)))
    if amc["table"]:
        med = {k: statistics.median(v) for k, v in amc.items()}
        results["amc_10dB_32768"] = {"median_s": med, "speedup": med["simulate"] / med["table"],
                                     "choice": best_mcs(10.0, 32768).name}
        log.info("AMC at 10 dB: simulate %.1f s, table %.4f s (%.0fx)", med["simulate"], med["table"],
                 med["simulate"] / med["table"])
    args.out.write_text(json.dumps({"name": "link_speed", "description": __doc__.splitlines()[0],
                                    "threads": args.threads, "results": results}, indent=1))
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
