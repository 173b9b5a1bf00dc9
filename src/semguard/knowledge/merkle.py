"""RFC 6962 / RFC 9162 Merkle trees: roots, inclusion and consistency proofs (pure functions).

Hashing follows RFC 9162 §2.1.1: ``leaf = SHA-256(0x00 || data)``, ``node = SHA-256(0x01 || l || r)``,
the empty tree hashes to ``SHA-256("")`` and a tree of ``n`` leaves splits at the largest power of
two ``k < n``.  Proof generation follows RFC 6962 §2.1.1-2.1.2 (``PATH`` and ``SUBPROOF``); proof
verification is the algorithm of RFC 9162 §2.1.3.2 and §2.1.4.2, so a verifier never rebuilds a tree.

Trees are held as *levels*: ``levels[0]`` are leaf hashes, ``levels[j][i]`` is the root of leaves
``[i 2^j, min((i+1) 2^j, n))`` (a lone last node is promoted unchanged, which gives exactly the
RFC 6962 left-balanced tree).  All hashes are 32-byte ``bytes``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT", "leaf_hash", "node_hash", "build_levels", "root_of", "subtree_root",
    "inclusion_path", "consistency_path", "verify_inclusion", "verify_consistency", "ProofError",
    "prefix_roots",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A Merkle proof does not verify (the message says which check failed)."""


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)`` (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)`` (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def build_levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """All levels of the tree over ``leaf_hashes`` (``levels[-1]`` holds the root; ``[[]]`` if empty)."""
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [node_hash(a, b) for a, b in zip(cur[0::2], cur[1::2])]
        if len(cur) % 2:
            nxt.append(cur[-1])  # promoted: RFC 6962 left-balanced split
        levels.append(nxt)
    return levels


def root_of(levels: list[list[bytes]]) -> bytes:
    """Root hash of a tree built by :func:`build_levels` (``EMPTY_ROOT`` for no leaves)."""
    return levels[-1][0] if levels[0] else EMPTY_ROOT


def prefix_roots(leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """Roots of every prefix: ``out[m] = MTH(leaves[:m])`` for m = 0..n, in O(n log n) hashes.

    Keeps the binary decomposition of m as a stack of perfect subtrees (largest first); the
    RFC 6962 root of m leaves is their right fold.
    """
    out, stack = [EMPTY_ROOT], []  # stack of (width, hash)
    for lf in leaf_hashes:
        stack.append((1, lf))
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            (w, right), (_, left) = stack.pop(), stack.pop()
            stack.append((2 * w, node_hash(left, right)))
        r = stack[-1][1]
        for _, h in reversed(stack[:-1]):
            r = node_hash(h, r)
        out.append(r)
    return out


def _split(n: int) -> int:
    """Largest power of two strictly less than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(levels: list[list[bytes]], lo: int, hi: int) -> bytes:
    """RFC 6962 ``MTH(D[lo:hi])`` for a range produced by the RFC splits (``0 <= lo < hi <= n``)."""
    width = hi - lo
    if width & (width - 1) == 0 and lo % width == 0:
        return levels[width.bit_length() - 1][lo // width]
    k = _split(width)
    return node_hash(subtree_root(levels, lo, lo + k), subtree_root(levels, lo + k, hi))


def _check_size(levels: list[list[bytes]], size: int) -> None:
    if not 0 < size <= len(levels[0]):
        raise ValueError(f"tree size must be in 1..{len(levels[0])}, got {size}")


def inclusion_path(levels: list[list[bytes]], index: int, size: int | None = None) -> list[bytes]:
    """Audit path of leaf ``index`` (0-based) in the tree of the first ``size`` leaves (RFC 6962 PATH)."""
    size = len(levels[0]) if size is None else size
    _check_size(levels, size)
    if not 0 <= index < size:
        raise ValueError(f"leaf index must be in 0..{size - 1}, got {index}")
    path: list[bytes] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:  # walk down, collecting the sibling subtree at each split
        k = _split(hi - lo)
        if m < k:
            path.append(subtree_root(levels, lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree_root(levels, lo, lo + k))
            lo, m = lo + k, m - k
    return path[::-1]  # leaf-to-root order


def consistency_path(levels: list[list[bytes]], first: int, second: int | None = None) -> list[bytes]:
    """Proof that the tree of ``first`` leaves is a prefix of the tree of ``second`` (RFC 6962 SUBPROOF)."""
    second = len(levels[0]) if second is None else second
    _check_size(levels, second)
    if not 0 < first <= second:
        raise ValueError(f"first size must be in 1..{second}, got {first}")
    path: list[bytes] = []
    lo, hi, m, whole = 0, second, first, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            path.append(subtree_root(levels, lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree_root(levels, lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        path.append(subtree_root(levels, lo, hi))
    return path[::-1]


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2: check that leaf hash ``leaf`` sits at ``index`` of the tree ``(size, root)``.

    Raises:
        ProofError: the path is malformed or does not lead to ``root``.
    """
    if not 0 <= index < size:
        raise ProofError(f"inclusion proof: leaf index {index} outside tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ProofError("inclusion proof: path longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof: path shorter than the tree is deep")
    if r != root:
        raise ProofError("inclusion proof: recomputed root does not match the trusted root")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       path: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2: check that tree ``(first, first_root)`` is a prefix of ``(second, second_root)``.

    Raises:
        ProofError: the proof is malformed, or the later tree rewrote the earlier history.
    """
    if not 0 <= first <= second:
        raise ProofError(f"consistency proof: sizes must satisfy 0 <= first <= second, got {first}, {second}")
    if first == 0 or first == second:
        if path:
            raise ProofError("consistency proof: expected an empty path")
        if first == second and first_root != second_root:
            raise ProofError("consistency proof: same size but different roots (history rewritten)")
        return
    if not path:
        raise ProofError("consistency proof: empty path")
    path = list(path)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof: path longer than expected")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof: path shorter than expected")
    if fr != first_root:
        raise ProofError("consistency proof: does not reproduce the earlier root (history rewritten)")
    if sr != second_root:
        raise ProofError("consistency proof: does not reproduce the later root")
