"""The clients' principal axes as a robustness step of our rule (``reputation-axes``, session 15).

Pure functions over the kept clients' stacked updates ``Y [n, D]`` and their weights ``w [n]``.

A coherent attack (``adaptive_bias``: every attacker adds the same shift ``gamma v`` to an honest-looking
start) shows up as a principal axis of the rows, with the attackers together at one end of it.  Along
such an axis a weighted mean, or centered clipping with a radius set by the honest spread, follows the
attackers by their weight share times the shift.  :func:`clamp_to_axes` pins the aggregate's
component along each of the top ``p`` axes into the central band of the clients' own components there
(weighted quantiles ``0.5 -/+ band``): with an honest majority of the weight, the band lies inside the
honest clients' components, so no coalition holding less than ``0.5 - band`` of the weight moves the
aggregate along those axes beyond the honest spread.  :func:`affine_span` first drops the aggregate's
part outside the affine span of the rows (a coordinate median has one, and every attacker shifts it).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["weighted_quantile", "affine_span", "principal_axes", "clamp_to_axes"]


def _check(Y: Tensor, w: Tensor) -> Tensor:
    w = w.flatten().to(Y.dtype)
    if Y.dim() != 2 or w.shape[0] != Y.shape[0] or (w < 0).any() or float(w.sum()) <= 0:
        raise ValueError(f"need rows [n, D] and n non-negative weights with a positive sum, got {tuple(Y.shape)} "
                         f"and {w.tolist()}")
    return w / w.sum()


def weighted_quantile(values: Tensor, weights: Tensor, q: float, upper: bool = False) -> float:
    """Lower weighted ``q``-quantile: the smallest value whose cumulative weight from the bottom reaches ``q``
    of the total.  ``upper``: the largest value whose cumulative weight from the top reaches ``q``."""
    if not 0 < q <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    v, w = values.flatten(), weights.flatten().to(values.dtype)
    if upper:
        return -weighted_quantile(-v, w, q)
    if v.shape != w.shape or v.numel() == 0 or (w < 0).any() or float(w.sum()) <= 0:
        raise ValueError(f"need matching values and non-negative weights with a positive sum, got {v.tolist()} "
                         f"and {w.tolist()}")
    order = v.argsort(stable=True)
    cum = w[order].cumsum(0)
    i = int(torch.searchsorted(cum, q * cum[-1] * (1 - 1e-12)))
    return float(v[order][min(i, v.numel() - 1)])


def affine_span(a: Tensor, Y: Tensor, w: Tensor) -> Tensor:
    """``a`` projected onto the affine span of the rows: ``m + P (a - m)``, ``m = w @ Y`` (weights normalised),
    ``P`` the orthogonal projection onto the span of ``Y - m``."""
    w = _check(Y, w)
    m = w @ Y
    C = Y - m
    G = C @ C.T
    coef = torch.linalg.lstsq(G, C @ (a - m), driver="gelsd").solution if float(G.abs().max()) > 0 else None
    return m if coef is None else m + C.T @ coef


def principal_axes(Y: Tensor, w: Tensor, p: int, exclude: Tensor | None = None) -> Tensor:
    """The top ``p`` principal axes ``[p', D]`` (orthonormal rows, ``p' <= p``) of the weighted, centred rows
    ``sqrt(w) (Y - w @ Y)``; with ``exclude`` (a unit vector) every row is first made orthogonal to it, so the
    axes are too.  Axes with no spread (eigenvalue below 1e-10 of the largest) are dropped."""
    w = _check(Y, w)
    if p < 0:
        raise ValueError(f"p must be >= 0, got {p}")
    C = Y - w @ Y
    if exclude is not None:
        C = C - (C @ exclude).unsqueeze(1) * exclude
    S = w.sqrt().unsqueeze(1) * C
    evals, evecs = torch.linalg.eigh(S @ S.T)  # ascending; n x n, n the kept clients
    top = evals.flip(0)[:p]
    keep = top > 1e-10 * float(evals.max().clamp_min(1e-300))
    V = evecs.flip(1)[:, :p][:, keep]
    E = V.T @ S  # [p', D], row j has norm sqrt(eigenvalue j)
    return E / E.norm(dim=1, keepdim=True).clamp_min(1e-300)


def clamp_to_axes(a: Tensor, Y: Tensor, w: Tensor, axes: Tensor, band: float) -> Tensor:
    """``a`` with its component along each (orthonormal) row of ``axes`` clamped into the weighted quantiles
    ``[0.5 - band, 0.5 + band]`` (lower from the bottom, upper from the top) of the rows' components."""
    if not 0 <= band < 0.5:
        raise ValueError(f"band must be in [0, 0.5), got {band}")
    w = _check(Y, w)
    out = a.clone()
    q = 0.5 - band
    for e in axes:
        proj = Y @ e
        lo, hi = weighted_quantile(proj, w, q), weighted_quantile(proj, w, q, upper=True)
        lo, hi = min(lo, hi), max(lo, hi)
        c = float(out @ e)
        out = out + (min(max(c, lo), hi) - c) * e
    return out
