"""Measure the BLER table the LDPC link's AMC reads (src/semguard/baselines/data/bler_table.json).

Per MCS of ``MCS_TABLE`` and per block length ``--n-symbols`` (the codeword length the link uses
there), codewords are simulated over AWGN through the link's own encoder/QAM/demapper/BP decoder
on an SNR grid, from the Shannon limit of ``m R`` upwards, until the first grid point whose
one-sided Clopper-Pearson upper bound (``--confidence``) on the BLER is at most the per-codeword
rate the image-error target allows (``1 - (1 - target)^(1/C)`` for ``C`` codewords per image).
Two passes per row: the waterfall is probed with ``--probe`` codewords a point (stopping at
``--min-errors`` errors); from the first point without an error in the probe, each point is
continued up to the count that bound needs with no error (``codewords_needed``), stopping at its
first error (it can then no longer qualify), and the counts of both passes at a point are added.
The AMC treats SNRs above the last point as qualifying (BLER falls with SNR) and those below the
first as failing.

The file is rewritten after every finished row, and its sha256 is written into
``semguard/baselines/bler_table.py`` (``SHIPPED_BLER_SHA256``), so an interrupted run leaves a
consistent, shorter table; ``--resume`` keeps the rows already there.

    PYTHONPATH=src python scripts/make_bler_table.py --threads 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import multiprocessing as mp
import re
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "semguard" / "baselines" / "data" / "bler_table.json"
SHA_FILE = ROOT / "src" / "semguard" / "baselines" / "bler_table.py"

log = logging.getLogger("make_bler_table")


def _row(job: dict) -> dict:
    """Scan one (MCS, codeword length); returns the table row."""
    import torch

    torch.set_num_threads(job["threads"])
    from semguard.baselines.bler_table import BlerEstimate
    from semguard.baselines.mcs import estimate_bler
    from semguard.baselines.phy import MCS

    mcs = MCS.parse(job["mcs"])
    limit = 10.0 * math.log10(2.0 ** mcs.spectral_efficiency - 1.0)
    grid = job["grid_db"]
    snr = math.ceil(limit / grid - 1e-9) * grid
    snrs, errors, trials = [], [], []
    t0 = time.time()
    confirm = False  # second pass: full count, stop at the first error
    while snr <= limit + job["max_margin_db"]:
        seed = job["seed"] * 1_000_003 + zlib.crc32(f"{mcs.name}|{job['n_cw']}|{snr:.4f}".encode())
        est = estimate_bler(mcs, snr, job["n_cw"], num_codewords=job["probe"], stop_after_errors=job["min_errors"],
                            seed=seed, num_iter=job["num_iter"]) if not confirm else BlerEstimate(0, 0)
        if est.errors == 0:  # no error in the probe (or already confirming): continue to the full count
            confirm = True
            more = estimate_bler(mcs, snr, job["n_cw"], num_codewords=max(job["needed"] - est.trials, 1),
                                 stop_after_errors=1, seed=seed + 1, num_iter=job["num_iter"])
            est = BlerEstimate(est.errors + more.errors, est.trials + more.trials)
        snrs.append(round(snr, 4))
        errors.append(est.errors)
        trials.append(est.trials)
        log.info("%s n_cw=%d %.2f dB: %d/%d", mcs.name, job["n_cw"], snr, est.errors, est.trials)
        if est.upper(job["confidence"]) <= job["p_max"]:
            break
        snr += grid
    return {"mcs": mcs.name, "bits_per_symbol": mcs.bits_per_symbol, "code_rate": str(mcs.code_rate),
            "n_cw": job["n_cw"], "k": job["k"], "num_cw": job["num_cw"], "n_symbols": job["n_symbols"],
            "p_max": job["p_max"], "codewords_needed": job["needed"], "snr_db": snrs, "errors": errors,
            "trials": trials, "seconds": round(time.time() - t0, 1)}


def _write(out: Path, meta: dict, rows: list[dict], update_sha: bool) -> str:
    rows = sorted(rows, key=lambda r: (r["n_symbols"], r["bits_per_symbol"], eval_rate(r["code_rate"])))
    raw = (json.dumps({**meta, "entries": rows}, indent=1) + "\n").encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    if update_sha:
        text = SHA_FILE.read_text()
        new = re.sub(r'^SHIPPED_BLER_SHA256 = "[0-9a-f]{64}"$', f'SHIPPED_BLER_SHA256 = "{digest}"', text,
                     count=1, flags=re.M)
        if new == text and digest not in text:
            raise RuntimeError(f"could not find the SHIPPED_BLER_SHA256 line in {SHA_FILE}")
        SHA_FILE.write_text(new)
    return digest


def eval_rate(rate: str) -> float:
    num, den = rate.split("/")
    return int(num) / int(den)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-symbols", type=int, nargs="+", default=[32768],
                    help="block lengths (complex channel uses) whose codeword lengths to tabulate "
                         "(default: the main job's 32768, 256x256 photos at cbr 1/6)")
    ap.add_argument("--mcs", nargs="*", default=None, help="MCS names (default: every entry of MCS_TABLE)")
    ap.add_argument("--grid-db", type=float, default=0.25)
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--target-image-error", type=float, default=0.1)
    ap.add_argument("--min-errors", type=int, default=20, help="stop a probe after this many codeword errors")
    ap.add_argument("--probe", type=int, default=128, help="codewords per point in the waterfall probe")
    ap.add_argument("--max-cw-bits", type=int, default=1944)
    ap.add_argument("--num-iter", type=int, default=20)
    ap.add_argument("--max-margin-db", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--workers", type=int, default=1, help="processes, one row each")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--resume", action="store_true", help="keep the rows already in --out")
    ap.add_argument("--no-update-sha", action="store_true", help="do not rewrite SHIPPED_BLER_SHA256")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import sionna
    import torch

    from semguard.baselines.bler_table import allowed_bler, codewords_needed
    from semguard.baselines.mcs import MCS_TABLE
    from semguard.baselines.phy import MCS, codeword_layout

    table = MCS_TABLE if args.mcs is None else tuple(MCS.parse(m) for m in args.mcs)
    meta = {"description": "codeword error counts over AWGN per MCS x SNR (Es/N0 dB) for semguard's LDPC link",
            "generated_by": "scripts/make_bler_table.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "channel": "AWGN", "grid_db": args.grid_db, "confidence": args.confidence,
            "target_image_error": args.target_image_error, "min_errors": args.min_errors, "probe": args.probe,
            "num_iter": args.num_iter, "max_cw_bits": args.max_cw_bits, "seed": args.seed,
            "decoder": "Sionna LDPC5GDecoder boxplus-phi flooding, early stop on zero syndrome; exact app demapper",
            "sionna": getattr(sionna, "__version__", "?"), "torch": torch.__version__}
    rows: list[dict] = []
    if args.resume and args.out.is_file():
        old = json.loads(args.out.read_text())
        same = all(old.get(k) == meta[k] for k in ("grid_db", "confidence", "target_image_error", "num_iter",
                                                     "max_cw_bits", "seed", "min_errors", "probe"))
        rows = old["entries"] if same else []
        log.info("resume: %d rows kept", len(rows))
    have = {(r["mcs"], r["n_cw"]) for r in rows}
    jobs, seen = [], set(have)
    for n in args.n_symbols:
        for mcs in table:
            try:
                lay = codeword_layout(mcs, n, args.max_cw_bits)
            except ValueError:
                continue
            if (mcs.name, lay.n_cw) in seen:
                continue
            seen.add((mcs.name, lay.n_cw))
            p_max = allowed_bler(args.target_image_error, lay.num_cw)
            jobs.append({"mcs": mcs.name, "n_cw": lay.n_cw, "k": lay.k, "num_cw": lay.num_cw, "n_symbols": n,
                         "p_max": p_max, "needed": codewords_needed(p_max, args.confidence),
                         "grid_db": args.grid_db, "confidence": args.confidence, "min_errors": args.min_errors,
                         "probe": args.probe,
                         "num_iter": args.num_iter, "max_margin_db": args.max_margin_db, "seed": args.seed,
                         "threads": args.threads})
    log.info("%d rows to measure", len(jobs))
    t0 = time.time()
    if args.workers > 1:
        with mp.get_context("spawn").Pool(args.workers) as pool:
            for row in pool.imap_unordered(_row, jobs):
                rows.append(row)
                _write(args.out, meta, rows, not args.no_update_sha)
                log.info("row %s done in %.0f s", row["mcs"], row["seconds"])
    else:
        for job in jobs:
            rows.append(_row(job))
            _write(args.out, meta, rows, not args.no_update_sha)
    digest = _write(args.out, meta, rows, not args.no_update_sha)
    print(f"{args.out}: {len(rows)} rows in {time.time() - t0:.0f} s, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
