"""What the photo benchmarks share: the ``--images`` / ``--threads`` options and their set-up."""

from __future__ import annotations

import argparse
import logging

import torch

from semguard.data.photos import shipped_photos


def add_photo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", type=int, default=None, help="first N shipped photos (default: all)")
    p.add_argument("--threads", type=int, default=None)


def photo_setup(args: argparse.Namespace) -> torch.Tensor:
    """Logging to stdout, the thread count, and the first ``--images`` shipped photos."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    return shipped_photos()[: args.images]
