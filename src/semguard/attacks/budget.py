"""Input-domain budgets (``eps`` on images in [0, 1]); the air-domain PSR budget is
:func:`semguard.channels.functional.project_psr` and is not defined again here."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["check_eps", "input_norm", "project_input"]


def check_eps(eps: float) -> float:
    """``eps`` as a float, or a one-line ValueError naming the field."""
    e = float(eps)
    if not math.isfinite(e) or e < 0:
        raise ValueError(f"eps must be a finite number >= 0 (inputs in [0, 1]), got {eps}")
    return e


def input_norm(delta: Tensor, norm: str) -> Tensor:
    """Per-sample ``linf`` or ``l2`` norm of ``delta [B, ...]``: ``[B]``."""
    flat = delta.reshape(delta.shape[0], -1)
    if norm == "linf":
        return flat.abs().amax(dim=1)
    if norm == "l2":
        return torch.linalg.vector_norm(flat, dim=1)
    raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")


def project_input(delta: Tensor, source: Tensor, eps: float, norm: str) -> Tensor:
    """Project ``delta`` onto the ``norm`` ball of radius ``eps`` and so that ``source + delta`` stays
    in [0, 1] (clipping only shrinks a perturbation, so the norm bound still holds)."""
    eps = check_eps(eps)
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    elif norm == "l2":
        n = input_norm(delta, "l2").clamp_min(1e-12)
        delta = delta * (eps / n).clamp(max=1.0).view(-1, *([1] * (delta.dim() - 1)))
    else:
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    return (source + delta).clamp(0.0, 1.0) - source
