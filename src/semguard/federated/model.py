"""The federated codec and its flat parameter vector.

The shipped task codec (``build("codec", "task")``) normalises with BatchNorm, whose running
statistics are neither meaningful to average across non-IID clients (Li et al., FedBN, ICLR
2021) nor compatible with per-example DP-SGD.  The federated copy swaps each BatchNorm for a
GroupNorm of the same width (what Opacus' ``ModuleValidator.fix`` also does), so the model is
exactly its trainable parameters and one flat vector describes it; in-place ReLUs become
out-of-place ones (the same function; Opacus' hooks reject in-place edits of their outputs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from semguard.codecs.base import SemanticCodec
from semguard.registry import build

__all__ = ["federated_codec", "get_vector", "set_vector", "num_params", "groupnorm_groups"]


def groupnorm_groups(channels: int) -> int:
    return 8 if channels % 8 == 0 else 1


def _swap_batchnorm(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.GroupNorm(groupnorm_groups(child.num_features), child.num_features))
        elif isinstance(child, nn.ReLU) and child.inplace:  # per-sample-gradient hooks forbid in-place views
            setattr(module, name, nn.ReLU())
        else:
            _swap_batchnorm(child)


def federated_codec(name: str = "task", *, seed: int = 0, **kwargs: Any) -> SemanticCodec:
    """``build("codec", name, **kwargs)`` with BatchNorm replaced by GroupNorm, initialised from ``seed``.
    Its ``config`` gains ``norm`` and, for a codec other than ``task``, ``federated_codec``: ``name``
    (what :func:`semguard.federated.publish.federated_factory` rebuilds it by)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        codec = build("codec", name, **kwargs)
        _swap_batchnorm(codec)
    codec.config = {**codec.config, "norm": "group", **({"federated_codec": name} if name != "task" else {})}
    return codec


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def get_vector(model: nn.Module) -> Tensor:
    """All parameters, flattened in ``model.parameters()`` order, float32 ``[D]`` (a copy)."""
    return torch.cat([p.detach().reshape(-1).float() for p in model.parameters()]).clone()


def set_vector(model: nn.Module, vec: Tensor) -> None:
    """Load a flat ``[D]`` vector (from :func:`get_vector`) into ``model`` in place."""
    D = num_params(model)
    if vec.dim() != 1 or vec.numel() != D:
        raise ValueError(f"parameter vector must have shape [{D}], got {tuple(vec.shape)}")
    i = 0
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(vec[i:i + p.numel()].view_as(p))
            i += p.numel()
