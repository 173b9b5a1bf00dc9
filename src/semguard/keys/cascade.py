"""Cascade information reconciliation (Brassard & Salvail, EUROCRYPT 1993), vectorised over blocks.

Pass ``i`` shuffles the bits with a public permutation (identity for the first pass), cuts them
into blocks of ``k_i = k_1 2^(i-1)`` bits (``k_1 ~ 0.73 / p``), and Alice discloses each block's
parity.  Every block whose parity differs at Bob is binary-searched (one disclosed parity per
halving) and the located bit flipped; flipping a bit changes the parity of the blocks holding it
in earlier passes, so all passes are re-checked until no block of any pass disagrees (the
"cascade").  All binary searches of one round run at once as array operations.

Every disclosed parity counts as one leaked bit (an upper bound on what Eve learns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CascadeResult", "cascade", "initial_block_size"]


def initial_block_size(kdr: float) -> int:
    """First-pass block size ``max(4, round(0.73 / kdr))`` (Brassard & Salvail's rule)."""
    if not 0.0 <= kdr < 0.5:
        raise ValueError(f"Cascade needs an estimated KDR in [0, 0.5), got {kdr}")
    return int(max(4, min(1 << 16, round(0.73 / max(kdr, 1e-4)))))


@dataclass(frozen=True)
class CascadeResult:
    """Bob's corrected bits, the parities disclosed, and the first block size used."""

    bob: np.ndarray
    leaked_bits: int
    block_size: int


def _locate(a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, int]:
    """Positions (into ``a``/``b``) of one error per row of ``rows [R, k]``, and parities disclosed."""
    ca = np.concatenate([np.zeros((len(rows), 1), np.int64), np.cumsum(a[rows], axis=1)], axis=1)
    cb = np.concatenate([np.zeros((len(rows), 1), np.int64), np.cumsum(b[rows], axis=1)], axis=1)
    r = np.arange(len(rows))
    lo = np.zeros(len(rows), dtype=np.int64)
    hi = np.full(len(rows), rows.shape[1], dtype=np.int64)
    leaked = 0
    while True:
        active = hi - lo > 1
        if not active.any():
            break
        mid = (lo + hi) // 2
        left_differs = ((ca[r, mid] - ca[r, lo]) - (cb[r, mid] - cb[r, lo])) % 2 == 1
        leaked += int(active.sum())
        lo = np.where(active & ~left_differs, mid, lo)
        hi = np.where(active & left_differs, mid, hi)
    return rows[r, lo], leaked


def cascade(alice: np.ndarray, bob: np.ndarray, kdr: float, rng: np.random.Generator, *,
            passes: int = 4) -> CascadeResult:
    """Reconcile Bob's bits to Alice's.

    Args:
        alice, bob: bit strings ``[n]`` (0/1) of equal length.
        kdr: estimated disagreement rate (sets the first block size).
        rng: draws the public permutations.
        passes: Cascade passes.

    Returns:
        :class:`CascadeResult`; residual errors are possible (caught by key confirmation).
    """
    if alice.shape != bob.shape or alice.ndim != 1:
        raise ValueError(f"bit strings must be 1-D and of equal length, got {alice.shape} and {bob.shape}")
    n = alice.size
    k1 = initial_block_size(kdr)
    a = np.append(alice.astype(np.int64), 0)                              # index n: zero padding
    b = np.append(bob.astype(np.int64), 0)
    layouts: list[np.ndarray] = []
    leaked = 0
    k = k1
    for p in range(passes):
        order = np.arange(n) if p == 0 else rng.permutation(n)
        kk = min(k, max(n, 1))
        n_blocks = -(-n // kk)
        idx = np.full(n_blocks * kk, n, dtype=np.int64)
        idx[:n] = order
        layouts.append(idx.reshape(n_blocks, kk))
        leaked += n_blocks                                                # Alice's parity of each block
        changed = True
        while changed:                                                    # cascade over earlier passes
            changed = False
            for rows in layouts:
                odd = (a[rows].sum(axis=1) - b[rows].sum(axis=1)) % 2 == 1
                if not odd.any():
                    continue
                pos, lk = _locate(a, b, rows[odd])
                leaked += lk
                b[pos] ^= 1
                changed = True
        k *= 2
    return CascadeResult(bob=b[:n].astype(np.uint8), leaked_bits=leaked, block_size=k1)
