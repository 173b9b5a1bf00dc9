"""What charging pilots against channel uses costs the LDPC link at short coherence.

    python bench/pilot_cost.py [--out bench-pilot-cost.json] [--threads 1] [--size 64]

Shipped photos resized to ``--size`` (small, so the AMC's BLER points are simulated quickly at
these codeword lengths), cbr 1/6, WebP over 5G LDPC with AMC, Rayleigh fading with least-squares
CSI from one pilot per coherence block, at several coherence lengths and SNRs: pilots free
(the channel model's default) against pilots taking one symbol of each coherence block.
Reports mean PSNR, payload bits and delivery over ``--draws`` fading draws per image.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch

from semguard.baselines.link import LdpcLink
from semguard.channels.rayleigh import Rayleigh
from semguard.data.photos import shipped_photos
from semguard.evaluation.image_eval import baseline_samples

log = logging.getLogger("bench.pilot_cost")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench-pilot-cost.json"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--coherence", type=int, nargs="+", default=[8, 64])
    ap.add_argument("--snr-db", type=float, nargs="+", default=[10.0])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    x = torch.nn.functional.interpolate(shipped_photos()[: args.images], size=(args.size, args.size),
                                        mode="area").clamp(0, 1)
    n = x[0].numel() // 6
    rows = []
    for coherence in args.coherence:
        ch = Rayleigh(coherence=coherence, csi="estimated", pilots=1)
        for snr in args.snr_db:
            row = {"coherence": coherence, "snr_db": snr, "n_symbols": n}
            for charged in (False, True):
                link = LdpcLink(fmt="webp", charge_pilots=charged)
                s = baseline_samples(link, x, ch, snr, n, realizations=args.draws, seed=1)
                key = "charged" if charged else "free"
                row[key] = {"psnr": float(s["psnr"].mean()), "delivered": float(s["delivered"].mean()),
                            "file_bytes": float(s["file_bytes"].mean())}
            row["psnr_cost_db"] = row["free"]["psnr"] - row["charged"]["psnr"]
            rows.append(row)
            log.info("coherence %d, %.0f dB: PSNR free %.2f, charged %.2f (cost %.2f dB), file %.0f -> %.0f B",
                     coherence, snr, row["free"]["psnr"], row["charged"]["psnr"], row["psnr_cost_db"],
                     row["free"]["file_bytes"], row["charged"]["file_bytes"])
    args.out.write_text(json.dumps({"name": "pilot_cost", "description": __doc__.splitlines()[0],
                                    "images": args.images, "size": args.size, "draws": args.draws,
                                    "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
