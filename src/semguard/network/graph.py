"""Communication graphs for gossip and their robustness (pure functions, numpy bool adjacency).

A graph is a symmetric ``[n, n]`` bool adjacency without self-loops.  ``robustness`` computes
the largest ``r`` for which the graph is r-robust (LeBlanc, Zhang, Koutsoukos, Sundaram,
"Resilient Asymptotic Consensus in Robust Networks", IEEE JSAC 2013, Def. 4): for every pair of
disjoint non-empty node sets, at least one holds a node with ``>= r`` neighbours outside its set.
W-MSR with parameter F keeps every normal node inside the normal nodes' initial range under an
F-local Byzantine model when the graph is (2F+1)-robust (ibid., Thm. 2; the Byzantine
extension in Sec. VI needs the normal subgraph to be (F+1)-robust, also implied).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "GRAPHS",
    "check_graph",
    "complete",
    "is_connected",
    "make_graph",
    "random_geometric",
    "ring",
    "robustness",
]

GRAPHS = ("ring", "complete", "geometric")
MAX_EXACT_NODES = 20  # robustness enumerates all 2^n node sets


def ring(n: int, k: int = 1) -> np.ndarray:
    """Each node linked to its ``k`` nearest neighbours on each side."""
    if n < 2 or k < 1:
        raise ValueError(f"a ring needs n >= 2 nodes and k >= 1, got n={n}, k={k}")
    a = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for s in range(1, k + 1):
            a[i, (i + s) % n] = a[(i + s) % n, i] = True
    np.fill_diagonal(a, False)
    return a


def complete(n: int) -> np.ndarray:
    if n < 1:
        raise ValueError(f"a graph needs n >= 1 nodes, got {n}")
    a = np.ones((n, n), dtype=bool)
    np.fill_diagonal(a, False)
    return a


def random_geometric(n: int, radius: float, *, seed: int = 0) -> np.ndarray:
    """Nodes uniform on the unit square, linked when closer than ``radius``."""
    if n < 1 or not radius > 0:
        raise ValueError(f"a geometric graph needs n >= 1 and radius > 0, got n={n}, radius={radius}")
    p = np.random.default_rng(seed).random((n, 2))
    d = np.linalg.norm(p[:, None] - p[None], axis=-1)
    a = d < radius
    np.fill_diagonal(a, False)
    return a


def make_graph(name: str, n: int, *, radius: float = 0.6, k: int = 1, seed: int = 0) -> np.ndarray:
    """``"ring"`` (k neighbours a side), ``"complete"`` or ``"geometric"`` (radius) by name."""
    if name == "ring":
        return ring(n, k)
    if name == "complete":
        return complete(n)
    if name == "geometric":
        return random_geometric(n, radius, seed=seed)
    raise ValueError(f"graph must be one of {', '.join(GRAPHS)}, got {name!r}")


def is_connected(adj: np.ndarray) -> bool:
    n = adj.shape[0]
    seen = np.zeros(n, dtype=bool)
    stack = [0]
    seen[0] = True
    while stack:
        i = stack.pop()
        for j in np.flatnonzero(adj[i] & ~seen):
            seen[j] = True
            stack.append(int(j))
    return bool(seen.all())


def check_graph(adj: np.ndarray, *, name: str = "graph") -> np.ndarray:
    """Validate a square symmetric bool adjacency without self-loops that is connected."""
    a = np.asarray(adj)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
        raise ValueError(f"{name} must be a square [n, n] adjacency, got shape {a.shape}")
    a = a.astype(bool)
    if (a != a.T).any():
        raise ValueError(f"{name} must be undirected (symmetric adjacency)")
    if a.diagonal().any():
        raise ValueError(f"{name} must have no self-loops")
    if not is_connected(a):
        raise ValueError(f"{name} is not connected: gossip cannot reach every agent "
                         f"(use a larger radius or another graph)")
    return a


def robustness(adj: np.ndarray) -> int:
    """The largest r such that the graph is r-robust (0 for a disconnected graph), exactly.

    ``m[S] = max_{v in S} |N(v) \\ S|`` says how reachable S is; the graph is r-robust iff
    ``max(m[S1], m[S2]) >= r`` for all disjoint non-empty S1, S2, so robustness is the minimum
    of ``max(m[S], min_{T subset of complement(S)} m[T])``, the inner minimum by a subset DP.
    """
    a = np.asarray(adj, dtype=bool)
    n = a.shape[0]
    if n > MAX_EXACT_NODES:
        raise ValueError(f"exact robustness needs n <= {MAX_EXACT_NODES} nodes, got {n}")
    if n < 2:
        return 0
    full = (1 << n) - 1
    masks = np.arange(1 << n, dtype=np.int64)
    nbr = np.array([sum(1 << int(j) for j in np.flatnonzero(a[v])) for v in range(n)], dtype=np.int64)
    big = n + 1
    m = np.full(1 << n, -1, dtype=np.int16)
    for v in range(n):
        inside = (masks >> v) & 1 == 1
        out = np.bitwise_count(nbr[v] & ~masks).astype(np.int16)
        m = np.where(inside, np.maximum(m, out), m)
    h = np.where(masks == 0, big, m).astype(np.int16)       # min of m over non-empty subsets
    for v in range(n):
        bit = 1 << v
        has = (masks & bit) != 0
        h[has] = np.minimum(h[has], h[masks[has] ^ bit])
    s = masks[1:full]                                        # S non-empty, complement non-empty
    return int(np.maximum(m[s], h[full ^ s]).min())
