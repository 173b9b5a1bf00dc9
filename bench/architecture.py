"""Image-codec architecture pilot: the same short training run for each variant, then PSNR on the
held-out validation photos and on the shipped evaluation photos, side by side in one JSON.

    python bench/architecture.py [--out bench-architecture.json] [--steps 4000] [--threads 1]
                                 [--crop 64 --batch 32]
                                 [--variants deepjscc adjscc adjscc:gdn=false deepjscc:residual=true ...]

Every variant gets the same recipe: ``--steps`` bf16 steps of batch 32 random 64x64 crops of the
Debian photos (``apt-get install plasma-workspace-wallpapers opencv-doc mate-backgrounds``), Adam at lr 1e-3 on a
cosine, AWGN at SNR uniform in 0..20 dB, seed 0, width 32, cbr 1/6.  Layouts that downsample by 16 see
a 4x4 latent in a 64x64 crop; give them ``--crop 128 --batch 8`` (the same pixels per step).  Steps are fixed, so the PSNRs
do not depend on machine load; the minutes column does (run it on an idle machine to compare
cost).  The default 6 variants at 4000 steps take about 45 minutes on one thread.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import torch

from semguard.channels import AWGN
from semguard.data import shipped_photos
from semguard.data.images import CropSampler
from semguard.data.sources import image_source
from semguard.evaluation.image_eval import eval_codec
from semguard.registry import build
from semguard.training.loop import TrainConfig, train
from semguard.training.tasks import ImageTask

log = logging.getLogger("bench.architecture")

DEFAULT_VARIANTS = ["deepjscc", "adjscc", "adjscc:gdn=false", "deepjscc:residual=true", "adjscc:residual=true",
                    "adjscc:gdn=false,residual=true"]
EVAL_SNR_DB = (0.0, 10.0, 20.0)


def parse_variant(spec: str) -> tuple[str, dict[str, object]]:
    """``codec[:key=json,...]`` -> (registry name, keyword arguments)."""
    name, _, opts = spec.partition(":")
    kw: dict[str, object] = {}
    for item in filter(None, opts.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"variant {spec!r}: expected key=value, got {item!r}")
        kw[key] = json.loads(value)
    return name, kw


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench-architecture.json")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--crop", type=int, default=64, help="training crop side (pixels)")
    p.add_argument("--batch", type=int, default=32, help="crops per step")
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, help="codec[:key=value,...]")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    try:  # all parsed and built before hours of training
        variants = [(spec, *parse_variant(spec)) for spec in args.variants]
        for _, name, kw in variants:
            build("codec", name, cbr=1 / 6, width=args.width, **kw)
    except (ValueError, KeyError, TypeError) as e:
        p.error(str(e))
    img, photos = image_source("debian-photos"), shipped_photos()
    rows = []
    for spec, name, kw in variants:
        torch.manual_seed(0)
        codec = build("codec", name, cbr=1 / 6, width=args.width, **kw)
        task = ImageTask(CropSampler(img.train, crop=args.crop), img.val)
        cfg = TrainConfig(steps=args.steps, batch=args.batch, lr=1e-3, snr_min_db=0.0, snr_max_db=20.0, bf16=True,
                          val_every=args.steps, ckpt_every=args.steps, val_snr_db=EVAL_SNR_DB)
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory() as ckpt:
            rec = train(codec, task, [("awgn", AWGN())], cfg, ckpt, resume=False, progress=False)
        minutes = (time.monotonic() - t0) / 60
        val = rec["history"][-1]
        row = {"variant": spec, "codec": name, "config": codec.config, "crop": args.crop, "batch": args.batch,
               "params": sum(q.numel() for q in codec.parameters()), "steps": args.steps, "minutes": minutes,
               "val_psnr_db": [val[f"awgn@{s:g}dB"] for s in EVAL_SNR_DB],
               "shipped_psnr_db": [eval_codec(codec, photos, AWGN(), s)["psnr"] for s in EVAL_SNR_DB]}
        rows.append(row)
        log.info("%-32s %6.1f min  validation %s  shipped photos %s", spec, minutes,
                 " / ".join(f"{v:.2f}" for v in row["val_psnr_db"]),
                 " / ".join(f"{v:.2f}" for v in row["shipped_psnr_db"]))
    Path(args.out).write_text(json.dumps({"name": "architecture", "snr_db": EVAL_SNR_DB, "width": args.width,
                                          "results": rows}, indent=1))
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
