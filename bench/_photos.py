"""What the photo benchmarks share: the ``--images`` / ``--threads`` options and their set-up, and the
split of the shipped photos into evaluated ones and the (augmented) rest that fits an attack or receiver."""

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


def dihedral(p: torch.Tensor) -> torch.Tensor:
    """Six flips and transposes of every photo (more training views for what the rest of them fit)."""
    t = p.transpose(-1, -2)
    return torch.cat([p, p.flip(-1), p.flip(-2), p.flip(-1).flip(-2), t, t.flip(-1)])


def split_photos(n_eval: int, rest: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n_eval`` shipped photos, and :func:`dihedral` of the others (``rest`` says what they
    do, for the error); ``--images`` outside ``[1, photos - 1]`` exits with a one-line message."""
    photos = shipped_photos()
    if not 1 <= n_eval < photos.shape[0]:
        raise SystemExit(f"--images must be in [1, {photos.shape[0] - 1}] (the rest {rest})")
    return photos[:n_eval], dihedral(photos[n_eval:])
