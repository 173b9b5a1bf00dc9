"""Small evaluation sets shipped inside the package so the defaults run offline."""

from __future__ import annotations

from importlib import resources

import numpy as np
import torch
from torch import Tensor

__all__ = ["shipped_fashion_mnist"]


def shipped_fashion_mnist(limit: int | None = None) -> tuple[Tensor, Tensor]:
    """The first 2000 Fashion-MNIST *test* images ``[N, 1, 28, 28]`` in [0, 1] and labels ``[N]``."""
    path = resources.files("semguard.data") / "assets" / "fashion_mnist_test_2000.npz"
    with resources.as_file(path) as p, np.load(p, allow_pickle=False) as z:
        x, y = z["images"], z["labels"]
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return torch.from_numpy(x.copy()).unsqueeze(1).float() / 255.0, torch.from_numpy(y.astype(np.int64))
