"""Cascade information reconciliation (Brassard & Salvail, EUROCRYPT 1993), vectorised over blocks.

Pass ``i`` shuffles the bits with a public permutation (identity for the first pass), cuts them
into blocks of ``k_i = k_1 2^(i-1)`` bits (``k_1 ~ 0.73 / p``), and Alice discloses each block's
parity.  Every block whose parity differs at Bob is binary-searched (one disclosed parity per
halving) and the located bit flipped; flipping a bit changes the parity of the blocks holding it
in earlier passes, so all passes are re-checked until no block of any pass disagrees (the
"cascade").  All binary searches of one round run at once as array operations.

Every disclosed parity counts as one leaked bit (an upper bound on what Eve learns).  The
result carries the public transcript (:class:`ParityChecks`): every subset of positions whose
parity Alice disclosed, with that parity.  The permutations and Bob's requests (which block,
which half) are public, so an eavesdropper can rebuild exactly these subsets.

Alice's parities travel through ``send`` (e.g. :meth:`semguard.keys.auth.PublicChannel.send`),
which may authenticate them and may be tampered with by an active attacker; Bob acts on what
``send`` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

__all__ = ["CascadeResult", "ParityChecks", "cascade", "initial_block_size"]

#: ``send(kind, parities [R] uint8) -> parities [R] uint8`` as Bob receives them
Send = Callable[[str, np.ndarray], np.ndarray]


def initial_block_size(kdr: float) -> int:
    """First-pass block size ``max(4, round(0.73 / kdr))`` (Brassard & Salvail's rule)."""
    if not 0.0 <= kdr < 0.5:
        raise ValueError(f"Cascade needs an estimated KDR in [0, 0.5), got {kdr}")
    return int(max(4, min(1 << 16, round(0.73 / max(kdr, 1e-4)))))


@dataclass(frozen=True)
class ParityChecks:
    """Public parity checks on an ``n``-bit string: ``matrix [m, n]`` (CSR, 0/1) and ``parities [m]``
    (uint8), row ``i`` saying ``sum_j matrix[i, j] x_j = parities[i] (mod 2)`` for Alice's ``x``."""

    matrix: csr_matrix
    parities: np.ndarray

    @staticmethod
    def build(rows: list[np.ndarray], parities: list[np.ndarray], n: int) -> ParityChecks:
        """From index subsets (positions ``>= n`` are padding and dropped) and their parities."""
        lengths = np.array([r.size for r in rows], dtype=np.int64)
        cols = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        ptr = np.concatenate([[0], np.cumsum(lengths)])
        m = csr_matrix((np.ones(cols.size, dtype=np.uint8), cols.clip(max=n), ptr), shape=(len(rows), n + 1))
        par = np.concatenate(parities).astype(np.uint8) if parities else np.zeros(0, dtype=np.uint8)
        return ParityChecks(matrix=m[:, :n].tocsr(), parities=par)


@dataclass(frozen=True)
class CascadeResult:
    """Bob's corrected bits, the parities disclosed, the first block size used and the public checks."""

    bob: np.ndarray
    leaked_bits: int
    block_size: int
    checks: ParityChecks


def _plain_send(kind: str, parities: np.ndarray) -> np.ndarray:
    return parities


def _locate(a: np.ndarray, b: np.ndarray, rows: np.ndarray, send: Send,
            subsets: list[np.ndarray], subset_parities: list[np.ndarray]) -> np.ndarray:
    """Positions (into ``a``/``b``) of one error per row of ``rows [R, k]``; records each disclosed subset."""
    ca = np.concatenate([np.zeros((len(rows), 1), np.int64), np.cumsum(a[rows], axis=1)], axis=1)
    cb = np.concatenate([np.zeros((len(rows), 1), np.int64), np.cumsum(b[rows], axis=1)], axis=1)
    r = np.arange(len(rows))
    lo = np.zeros(len(rows), dtype=np.int64)
    hi = np.full(len(rows), rows.shape[1], dtype=np.int64)
    while True:
        active = np.flatnonzero(hi - lo > 1)
        if not active.size:
            break
        mid = (lo + hi) // 2
        pa = ((ca[active, mid[active]] - ca[active, lo[active]]) % 2).astype(np.uint8)
        pa = send("cascade-search", pa)                                   # Alice's parity of each left half
        pb = (cb[active, mid[active]] - cb[active, lo[active]]) % 2
        for j in active:                                    # rows of the transcript, not bits
            subsets.append(rows[j, lo[j]: mid[j]])
        subset_parities.append(pa)
        left = pa != pb
        lo[active] = np.where(~left, mid[active], lo[active])
        hi[active] = np.where(left, mid[active], hi[active])
    return rows[r, lo]


def cascade(alice: np.ndarray, bob: np.ndarray, kdr: float, rng: np.random.Generator, *,
            passes: int = 4, send: Send | None = None, max_rounds: int = 64) -> CascadeResult:
    """Reconcile Bob's bits to Alice's.

    Args:
        alice, bob: bit strings ``[n]`` (0/1) of equal length.
        kdr: estimated disagreement rate (sets the first block size).
        rng: draws the public permutations.
        passes: Cascade passes.
        send: carries each batch of Alice's parities to Bob (default: unchanged).
        max_rounds: cap on re-check rounds per pass (only inconsistent, e.g. tampered, parities reach it).

    Returns:
        :class:`CascadeResult`; residual errors are possible (caught by key confirmation).
    """
    if alice.shape != bob.shape or alice.ndim != 1:
        raise ValueError(f"bit strings must be 1-D and of equal length, got {alice.shape} and {bob.shape}")
    send = send or _plain_send
    n = alice.size
    k1 = initial_block_size(kdr)
    a = np.append(alice.astype(np.int64), 0)                              # index n: zero padding
    b = np.append(bob.astype(np.int64), 0)
    layouts: list[np.ndarray] = []
    block_parities: list[np.ndarray] = []
    subsets: list[np.ndarray] = []
    parities: list[np.ndarray] = []
    k = k1
    for p in range(passes):
        order = np.arange(n) if p == 0 else rng.permutation(n)
        kk = min(k, max(n, 1))
        n_blocks = -(-n // kk)
        idx = np.full(n_blocks * kk, n, dtype=np.int64)
        idx[:n] = order
        layout = idx.reshape(n_blocks, kk)
        pa = send("cascade-block", (a[layout].sum(axis=1) % 2).astype(np.uint8))  # Alice's parity of each block
        layouts.append(layout)
        subsets.extend(layout)
        parities.append(pa)
        block_parities.append(pa.astype(np.int64))
        changed, rounds = True, 0
        while changed and rounds < max_rounds:                            # cascade over earlier passes
            changed, rounds = False, rounds + 1
            for rows, par in zip(layouts, block_parities):
                odd = (par - b[rows].sum(axis=1)) % 2 == 1
                if not odd.any():
                    continue
                pos = _locate(a, b, rows[odd], send, subsets, parities)
                b[pos] ^= 1
                b[n] = 0                                                  # padding is known to be zero
                changed = True
        k *= 2
    checks = ParityChecks.build(subsets, parities, n)
    return CascadeResult(bob=b[:n].astype(np.uint8), leaked_bits=int(checks.parities.size), block_size=k1,
                         checks=checks)
