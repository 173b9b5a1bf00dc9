"""Non-IID client partitions: per-class Dirichlet proportions (Hsu, Qi, Brown, 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["dirichlet_partition"]


def dirichlet_partition(labels: Tensor, n_clients: int, alpha: float, *, generator: torch.Generator | None = None,
                        min_size: int = 2, max_tries: int = 100) -> list[Tensor]:
    """Split sample indices among ``n_clients``: for each class, proportions ``p ~ Dir(alpha 1)``.

    Small ``alpha`` (e.g. 0.1) gives each client a few classes; large ``alpha`` tends to IID.
    Draws again (up to ``max_tries``) until every client holds at least ``min_size`` samples.
    Returns one sorted LongTensor of indices per client; together they cover every sample once.
    """
    if not alpha > 0:
        raise ValueError(f"Dirichlet alpha must be > 0, got {alpha}")
    labels = torch.as_tensor(labels).flatten()
    if n_clients < 1:
        raise ValueError(f"n_clients must be >= 1, got {n_clients}")
    if labels.numel() < n_clients * min_size:
        raise ValueError(f"{labels.numel()} samples cannot give {n_clients} clients {min_size} each")
    classes = labels.unique()
    for _ in range(max_tries):
        parts: list[list[Tensor]] = [[] for _ in range(n_clients)]
        for c in classes:
            idx = (labels == c).nonzero().flatten()
            idx = idx[torch.randperm(idx.numel(), generator=generator)]
            # Dirichlet = normalised gammas; torch.distributions takes no generator, so draw them here
            g = torch._standard_gamma(torch.full((n_clients,), float(alpha), dtype=torch.float64),
                                      generator=generator)
            p = g / g.sum()
            cuts = (torch.cumsum(p, 0) * idx.numel()).round().long().tolist()[:-1]
            for k, chunk in enumerate(torch.tensor_split(idx, cuts)):
                parts[k].append(chunk)
        out = [torch.cat(p).sort().values for p in parts]
        if min(len(o) for o in out) >= min_size:
            return out
    raise ValueError(f"no Dirichlet(alpha={alpha}) split gave all {n_clients} clients >= {min_size} samples "
                     f"in {max_tries} tries; raise alpha or lower the number of clients")
