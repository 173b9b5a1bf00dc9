"""Byzantine-robust fusion rules over stacked agent vectors (pure functions).

Every rule takes ``x [..., N, d]`` (N agents, d features; any leading batch dimensions) and
returns ``[..., d]``.  They are differentiable where the rule is (sorting and Weiszfeld steps
are), so an adaptive attacker can back-propagate through them.

* mean: the baseline (product-of-experts when ``x`` holds log-probabilities).
* coordinate-wise median and trimmed mean (Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust
  Distributed Learning: Towards Optimal Statistical Rates", ICML 2018).
* geometric median by Weiszfeld's iteration (Pillutla, Kakade, Harchaoui, "Robust Aggregation for
  Federated Learning", IEEE TSP 2022).
* weighted mean, the trust-weighted rule's last step (weights from :mod:`.trust`).
* weighted coordinate-wise median and masked trimmed mean: trust weights applied inside a robust
  rule, so an agent that still holds its reputation meets a median, not a mean.
* aligned-drop median: the median after dropping the ``k`` trusted agents whose residuals have been
  most aligned with each other (:func:`most_aligned`); a rank, not a threshold, so colluders that
  stay under every threshold are still dropped while they are the most aligned group.
* capped mean: the centre (the trust-weighted median) plus the mean of every agent's deviation from it
  clipped to ``[-cap, cap]`` per coordinate (centred clipping, Karimireddy, He, Jaggi, "Learning from
  History for Byzantine Robust Optimization", ICML 2021, applied per object): each agent's influence
  on any fused coordinate, for a given centre, is at most ``cap / K`` (K agents kept), so ``f`` agents
  move it by at most ``f cap / K`` whatever they send.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from semguard.registry import register

__all__ = [
    "ALIGNED_RULES",
    "CAPPED_RULES",
    "NEEDS_MINORITY",
    "TRUST_RULES",
    "FusionRule",
    "aligned_drop_median",
    "capped_mean",
    "check_agents",
    "check_byzantine_fraction",
    "coordinate_median",
    "fuse_mean",
    "geometric_median",
    "masked_trimmed_mean",
    "most_aligned",
    "trimmed_mean",
    "weighted_mean",
    "weighted_median",
]

# rules whose guarantee needs f < N/2 Byzantine agents
NEEDS_MINORITY = frozenset({"median", "trimmed-mean", "geomed", "trust", "trust-median", "trust-trimmed",
                            "trust-aligned", "trust-capped"})
#: rules that take the agents' trust weights
TRUST_RULES = frozenset({"trust", "trust-median", "trust-trimmed", "trust-aligned", "trust-capped"})
#: rules that also take the agents' pairwise alignment (cosines of their residuals over every object)
ALIGNED_RULES = frozenset({"trust-aligned"})
#: rules that take a per-agent influence cap (nats per coordinate)
CAPPED_RULES = frozenset({"trust-capped"})


def check_agents(x: Tensor) -> None:
    """Public-boundary check: a real tensor ``[..., N, d]`` with N >= 1."""
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[-2] < 1 or torch.is_complex(x):
        raise ValueError(f"fusion expects real agent vectors [..., N, d], got "
                         f"{getattr(x, 'dtype', type(x))} {tuple(getattr(x, 'shape', ()))}")


def check_byzantine_fraction(n: int, f: int, rule: str) -> None:
    """ValueError unless ``0 <= f`` and, for rules that need it, ``2f < n``."""
    if n < 1:
        raise ValueError(f"agents must be >= 1, got {n}")
    if f < 0:
        raise ValueError(f"byzantine must be >= 0, got {f}")
    if rule in NEEDS_MINORITY and 2 * f >= n:
        raise ValueError(f"fusion {rule!r} needs byzantine < agents/2 (f < N/2), got f={f} of N={n}")


def fuse_mean(x: Tensor, f: int = 0) -> Tensor:
    """Arithmetic mean over agents; ``f`` is ignored (one bad agent moves it without bound)."""
    check_agents(x)
    return x.mean(dim=-2)


def coordinate_median(x: Tensor, f: int = 0) -> Tensor:
    """Coordinate-wise median; for even N the mean of the two middle values."""
    check_agents(x)
    n = x.shape[-2]
    s = x.sort(dim=-2).values
    if n % 2:
        return s[..., n // 2, :]
    return 0.5 * (s[..., n // 2 - 1, :] + s[..., n // 2, :])


def trimmed_mean(x: Tensor, f: int = 0) -> Tensor:
    """Coordinate-wise mean after dropping the ``f`` smallest and ``f`` largest values (N > 2f)."""
    check_agents(x)
    n = x.shape[-2]
    check_byzantine_fraction(n, f, "trimmed-mean")
    s = x.sort(dim=-2).values
    return s[..., f:n - f, :].mean(dim=-2)


def geometric_median(x: Tensor, f: int = 0, *, iters: int = 50, eps: float = 1e-6) -> Tensor:
    """Geometric median ``argmin_z sum_i ||x_i - z||_2`` by smoothed Weiszfeld steps from the
    coordinate-wise median (breakdown point 1/2; ``f`` is not needed)."""
    check_agents(x)
    z = coordinate_median(x)
    for _ in range(iters):
        dist = (x - z.unsqueeze(-2)).norm(dim=-1).clamp_min(eps)      # [..., N]
        w = 1.0 / dist
        z = (w.unsqueeze(-1) * x).sum(-2) / w.sum(-1, keepdim=True)
    return z


def weighted_mean(x: Tensor, w: Tensor) -> Tensor:
    """``sum_i w_i x_i / sum_i w_i`` with ``w [..., N]`` non-negative and not all zero."""
    check_agents(x)
    if w.shape != x.shape[:-1]:
        raise ValueError(f"weights must have shape {tuple(x.shape[:-1])}, got {tuple(w.shape)}")
    if (w < 0).any() or not (w.sum(-1) > 0).all():
        raise ValueError("weights must be >= 0 with a positive sum for every fusion")
    return (w.unsqueeze(-1) * x).sum(-2) / w.sum(-1, keepdim=True)


def _check_weights(x: Tensor, w: Tensor) -> Tensor:
    w = w.to(x.dtype).expand(x.shape[:-1]) if w.shape != x.shape[:-1] else w.to(x.dtype)
    if (w < 0).any() or not (w.sum(-1) > 0).all():
        raise ValueError("weights must be >= 0 with a positive sum for every fusion")
    return w


def weighted_median(x: Tensor, w: Tensor) -> Tensor:
    """Coordinate-wise weighted median: per coordinate the mean of the lower weighted median
    (smallest value whose cumulative weight reaches half the total) and the upper one (smallest
    whose cumulative weight exceeds half).  Equal weights give :func:`coordinate_median` exactly;
    an agent of weight 0 has no say.  ``w`` is ``[N]`` or ``[..., N]``."""
    check_agents(x)
    w = _check_weights(x, w)
    s, order = x.sort(dim=-2)
    ws = w.unsqueeze(-1).expand_as(x).gather(-2, order)                  # weights in sorted order
    cum = ws.cumsum(-2)
    half = 0.5 * cum[..., -1:, :]
    tol = 1e-6 * cum[..., -1:, :]
    lo = (cum < half - tol).sum(-2, keepdim=True).clamp(max=x.shape[-2] - 1)
    hi = (cum <= half + tol).sum(-2, keepdim=True).clamp(max=x.shape[-2] - 1)
    return 0.5 * (s.gather(-2, lo) + s.gather(-2, hi)).squeeze(-2)


def masked_trimmed_mean(x: Tensor, keep: Tensor, f: int) -> Tensor:
    """Trimmed mean over the agents ``keep`` marks (bool ``[N]`` or ``[..., N]``): of the ``m`` kept
    agents drop the ``k = max(0, f - (N - m))`` smallest and largest values per coordinate (the
    excluded agents count against ``f``), and average the rest.  Needs ``m > 2k``."""
    check_agents(x)
    n = x.shape[-2]
    keep = keep.expand(x.shape[:-1]) if keep.shape != x.shape[:-1] else keep
    m = keep.sum(-1, keepdim=True)                                        # [..., 1]
    k = (f - (n - m)).clamp_min(0)
    if not (m > 2 * k).all():
        raise ValueError(f"trust-trimmed needs more than 2k kept agents (f={f}, N={n})")
    big = torch.finfo(x.dtype).max
    s = torch.where(keep.unsqueeze(-1), x, torch.full_like(x, big)).sort(dim=-2).values
    rank = torch.arange(n).view(*([1] * (x.dim() - 2)), n)
    inside = ((rank >= k) & (rank < m - k)).unsqueeze(-1)                  # [..., N, 1]
    s = torch.where(inside, s, torch.zeros_like(s))
    return s.sum(-2) / (m - 2 * k).to(x.dtype)


def most_aligned(cos: Tensor, keep: Tensor, k: int) -> Tensor:
    """Bool ``[N]``: the ``k`` agents among ``keep`` with the largest sum of pairwise cosines
    ``cos [N, N]`` (for ``k = 1`` the agent with the largest cosine to another kept agent); ties go
    to the lowest indices.  ``k = 0`` marks nobody.  Exhaustive over the subsets (N <= 20)."""
    n = keep.shape[0]
    if cos.shape != (n, n) or k < 0:
        raise ValueError(f"alignment must be [{n}, {n}] and k >= 0, got {tuple(cos.shape)}, k={k}")
    out = torch.zeros(n, dtype=torch.bool)
    idx = torch.nonzero(keep).flatten().tolist()
    if k == 0 or not idx:
        return out
    if k >= len(idx):
        raise ValueError(f"cannot drop {k} of {len(idx)} kept agents")
    c = cos.detach().double().masked_fill(torch.eye(n, dtype=torch.bool), -float("inf"))
    if k == 1:
        sub = c[idx][:, idx]
        out[idx[int(sub.max(1).values.argmax())]] = True
        return out
    best, pick = -float("inf"), None
    for group in itertools.combinations(idx, k):
        g = list(group)
        val = float(c[g][:, g].triu(1).sum())
        if val > best:
            best, pick = val, g
    out[pick] = True
    return out


def aligned_drop_median(x: Tensor, keep: Tensor, cos: Tensor, k: int, min_cos: float = -math.inf) -> Tensor:
    """Coordinate-wise median of the agents ``keep`` marks less the ``k`` most aligned of them
    (:func:`most_aligned`): ``x [..., N, d]``, ``keep`` bool ``[N]``, ``cos [N, N]``.  They are dropped
    only if the least aligned pair among them is over ``min_cos`` (for ``k = 1``: the agent's best partner);
    otherwise the median of every kept agent."""
    check_agents(x)
    drop = most_aligned(cos, keep, k)
    if drop.any():
        g = torch.nonzero(drop).flatten()
        c = cos.detach()[g][:, g]
        weakest = c.masked_fill(torch.eye(len(g), dtype=torch.bool), math.inf).min() if len(g) > 1 else \
            cos.detach()[g[0]].masked_fill(~keep | drop, -math.inf).max()
        if not float(weakest) > min_cos:
            drop = torch.zeros_like(drop)
    return coordinate_median(x[..., keep & ~drop, :])


def capped_mean(x: Tensor, center: Tensor, cap: float, keep: Tensor | None = None) -> Tensor:
    """``center + mean_{i kept} clip(x_i - center, -cap, cap)`` per coordinate: ``x [..., N, d]``,
    ``center [..., d]``, ``keep`` bool ``[N]`` or ``[..., N]`` (all by default).

    The guarantee: for a given ``center``, replacing any ``f`` kept agents' vectors by anything moves
    every fused coordinate by at most ``2 f cap / K`` (K kept agents), and by at most ``f cap / K``
    from the value it takes when those agents send the centre itself.  ``cap = 0`` is the centre;
    ``cap = inf`` the mean of the kept agents.
    """
    check_agents(x)
    if not cap >= 0:
        raise ValueError(f"influence cap must be >= 0 (nats), got {cap}")
    if center.shape != x.shape[:-2] + x.shape[-1:]:
        raise ValueError(f"centre must have shape {tuple(x.shape[:-2] + x.shape[-1:])}, got {tuple(center.shape)}")
    keep = torch.ones(x.shape[:-1], dtype=torch.bool) if keep is None else keep.expand(x.shape[:-1])
    if not (keep.sum(-1) > 0).all():
        raise ValueError("capped mean needs at least one kept agent per fusion")
    d = (x - center.unsqueeze(-2)).clamp(-cap, cap) if math.isfinite(cap) else x - center.unsqueeze(-2)
    d = torch.where(keep.unsqueeze(-1), d, torch.zeros_like(d))
    return center + d.sum(-2) / keep.sum(-1, keepdim=True).to(x.dtype)


@dataclass(frozen=True)
class FusionRule:
    """A named rule with its Byzantine parameter ``f``: ``rule(x [..., N, d]) -> [..., d]``.

    ``trust`` is the trust-weighted mean: its weights (``[..., N]``, from
    :func:`semguard.network.trust.trust_weights`) are state the caller keeps and passes in.
    ``trust-median`` is the weighted coordinate-wise median with those weights, so an attacker
    that keeps its reputation still meets a median; ``trust-trimmed`` the trimmed mean of the
    agents with positive weight, trimming ``f`` less the agents already excluded.  ``trust-aligned``
    the median of the agents with positive weight less the ``f - excluded`` most aligned of them by
    ``align [N, N]`` (cosines of their residuals, kept by the fusion node), if their least aligned
    pair is over ``min_cos``.  ``trust-capped`` the :func:`capped_mean` of the agents with positive
    weight around their weighted median, each agent's deviation clipped to ``cap`` nats.
    """

    name: str
    f: int = 0

    def __call__(self, x: Tensor, weights: Tensor | None = None, align: Tensor | None = None,
                 min_cos: float = -math.inf, cap: float = 1.0) -> Tensor:
        if self.name == "trust":
            if weights is None:
                raise ValueError("fusion 'trust' needs the agents' weights (from their reputation)")
            return weighted_mean(x, weights.expand(x.shape[:-1]).to(x.dtype))
        if self.name == "trust-median":
            if weights is None or weights.shape[-1] != x.shape[-2]:
                raise ValueError(f"fusion 'trust-median' needs one weight per agent [{x.shape[-2]}]")
            return weighted_median(x, weights)
        if self.name == "trust-trimmed":
            if weights is None or weights.shape[-1] != x.shape[-2]:
                raise ValueError(f"fusion 'trust-trimmed' needs one weight per agent [{x.shape[-2]}]")
            return masked_trimmed_mean(x, weights > 0, self.f)
        if self.name == "trust-capped":
            if weights is None or weights.shape[-1] != x.shape[-2]:
                raise ValueError(f"fusion 'trust-capped' needs one weight per agent [{x.shape[-2]}]")
            keep = weights > 0
            return capped_mean(x, weighted_median(x, keep.to(x.dtype)), cap, keep)
        if self.name == "trust-aligned":
            n = x.shape[-2]
            if weights is None or weights.shape != (n,) or align is None:
                raise ValueError(f"fusion 'trust-aligned' needs one weight per agent [{n}] and the alignment [{n}, {n}]")
            keep = weights > 0
            k = max(0, self.f - (n - int(keep.sum())))
            return aligned_drop_median(x, keep, align, min(k, max(0, int(keep.sum()) - 1)), min_cos)
        return _RULES[self.name](x, self.f)


_RULES: dict[str, Callable[[Tensor, int], Tensor]] = {
    "mean": fuse_mean, "median": coordinate_median, "trimmed-mean": trimmed_mean, "geomed": geometric_median}


def _factory(name: str) -> Callable[..., FusionRule]:
    def make(*, f: int = 0) -> FusionRule:
        if f < 0:
            raise ValueError(f"byzantine f must be >= 0, got {f}")
        return FusionRule(name, f)
    make.__doc__ = f"The {name!r} fusion rule with Byzantine parameter ``f``."
    return make


for _name in (*_RULES, "trust", "trust-median", "trust-trimmed", "trust-aligned", "trust-capped"):
    register("fusion", _name)(_factory(_name))
