"""``semguard train <codec> --data <name-or-path>``: train a codec through the channels.

Checkpoints go to ``--out`` (resumed automatically); ``--export FILE`` writes the final weights
as safetensors for the zoo.
"""

from __future__ import annotations

import argparse
import json
import logging

import torch

from semguard.cli.common import add_device_seed
from semguard.codecs.zoo import save_weights
from semguard.data.images import CropSampler
from semguard.data.sources import image_source, labelled_source
from semguard.registry import available, build
from semguard.training.loop import TrainConfig, train
from semguard.training.tasks import ClassifyTask, ImageTask
from semguard.utils import resolve_device, seed_everything

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a codec (resumable)")
    p.add_argument("codec", choices=available("codec"))
    p.add_argument("--data", required=True, help="dataset name (semguard list dataset) or a folder of images")
    p.add_argument("--out", default="runs/train", help="checkpoint folder (default: runs/train)")
    p.add_argument("--cbr", type=float, default=None, help="bandwidth ratio for image codecs, e.g. 0.1667")
    p.add_argument("--width", type=int, default=None, help="hidden width")
    p.add_argument("--n-symbols", type=int, default=None, help="channel uses per source (task codec)")
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--crop", type=int, default=64, help="training crop side for image codecs")
    p.add_argument("--snr-min", type=float, default=0.0)
    p.add_argument("--snr-max", type=float, default=20.0)
    p.add_argument("--channels", default="awgn,rayleigh", help="comma-separated channel names, alternated per step")
    p.add_argument("--val-every", type=int, default=1000)
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this much wall time")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if --out has a checkpoint")
    p.add_argument("--export", default=None, help="write final weights (safetensors) here")
    p.add_argument("--half", action="store_true", help="export weights as float16")
    p.add_argument("--no-progress", action="store_true")
    add_device_seed(p)
    p.set_defaults(func=run)


def _codec_kwargs(args: argparse.Namespace) -> dict[str, object]:
    kw: dict[str, object] = {}
    if args.cbr is not None:
        kw["cbr"] = args.cbr
    if args.width is not None:
        kw["width"] = args.width
    if args.n_symbols is not None:
        kw["n_symbols"] = args.n_symbols
    return kw


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    seed_everything(args.seed)
    codec = build("codec", args.codec, **_codec_kwargs(args))
    channels = [(name, build("channel", name).to(device)) for name in args.channels.split(",") if name]
    if codec.output_key == "logits":
        src = labelled_source(args.data)
        # validate on the last 5000 training examples: the test split is never seen in training
        n_val = min(5000, src.train_x.shape[0] // 10)
        task = ClassifyTask(src.train_x[:-n_val], src.train_y[:-n_val], src.train_x[-n_val:], src.train_y[-n_val:])
    else:
        img = image_source(args.data)
        if not img.train:
            raise ValueError(f"dataset {args.data!r} has no training images")
        task = ImageTask(CropSampler(img.train, crop=args.crop), img.val)
    cfg = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, snr_min_db=args.snr_min,
                      snr_max_db=args.snr_max, seed=args.seed, ckpt_every=args.ckpt_every,
                      val_every=args.val_every, max_minutes=args.max_minutes)
    n_params = sum(p.numel() for p in codec.parameters())
    print(f"training {args.codec} ({n_params / 1e3:.0f}k parameters, config {json.dumps(codec.config)}) "
          f"on {args.data} through {args.channels}, checkpoints in {args.out}")
    result = train(codec, task, channels, cfg, args.out, device=device, resume=not args.no_resume,
                   progress=not args.no_progress)
    if result["history"]:
        print("last validation:", json.dumps(result["history"][-1]))
    if args.export:
        digest = save_weights(codec, args.codec, args.export, half=args.half,
                              extra={"trained_steps": str(result["step"]), "data": str(args.data)})
        print(f"exported {args.export} sha256 {digest}")
    return 0
