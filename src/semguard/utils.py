"""The one place for seed, device and dtype choices, and for strict JSON.

torch and NumPy are imported inside the functions that need them, so that importing this
module (the command line does, to start) costs nothing.
"""

from __future__ import annotations

import json
import logging
import math
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["seed_everything", "resolve_device", "make_generator", "strict", "dumps_strict"]

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch from one integer; return a CPU generator seeded with it."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return make_generator(seed)


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def resolve_device(name: str | None) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or None (CUDA when present, else CPU).

    ValueError for another name, RuntimeError for a device this machine does not have.
    """
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"--device {name!r}: expected cpu, cuda, cuda:N or mps") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name!r}: expected cpu, cuda, cuda:N or mps")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    return dev


def strict(obj: Any) -> Any:
    """``obj`` with every non-finite float (nan, inf) replaced by None, so it is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


def dumps_strict(obj: Any, **kw: Any) -> str:
    """``json.dumps`` that writes nan / inf as null and refuses anything else JSON cannot hold."""
    return json.dumps(strict(obj), allow_nan=False, **kw)
