"""Resumable training checkpoints: written atomically, read with ``weights_only=True``."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint"]

log = logging.getLogger(__name__)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors, dicts, numbers, strings) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (no pickled code is ever run)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for corrupt files; name the file
        raise ValueError(f"{path}: not a readable semguard checkpoint ({type(e).__name__}: {e})") from e


def latest_checkpoint(folder: str | Path) -> Path | None:
    """``folder/last.pt`` when it exists."""
    p = Path(folder) / "last.pt"
    return p if p.is_file() else None
