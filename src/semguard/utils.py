"""The one place for seed, device and dtype choices."""

from __future__ import annotations

import logging
import random

import numpy as np
import torch

__all__ = ["seed_everything", "resolve_device", "make_generator"]

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch from one integer; return a CPU generator seeded with it."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return make_generator(seed)


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def resolve_device(name: str | None) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"`` or None (CUDA when present, else CPU)."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return dev
