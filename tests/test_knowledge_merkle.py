"""RFC 6962/9162 Merkle tree: hand-computed hashes, cross-check with pymerkle, proof rejection."""

import hashlib

import pytest
from pymerkle import InmemoryTree

from semguard.knowledge import merkle as M


def _data(n):
    return [f"entry-{i}".encode() for i in range(n)]


def test_hashes_by_hand():
    a, b, c = b"a", b"b", b"c"
    la = hashlib.sha256(b"\x00a").digest()
    assert M.leaf_hash(a) == la
    lb, lc = M.leaf_hash(b), M.leaf_hash(c)
    # RFC 6962: 3 leaves split at k=2 -> H(1 || H(1||la||lb) || lc)
    want = hashlib.sha256(b"\x01" + hashlib.sha256(b"\x01" + la + lb).digest() + lc).digest()
    assert M.root_of(M.build_levels([la, lb, lc])) == want
    assert M.root_of(M.build_levels([])) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 31, 33, 70])
def test_roots_and_inclusion_match_pymerkle(n):
    data = _data(n)
    tree = InmemoryTree()
    for d in data:
        tree.append_entry(d)
    levels = M.build_levels([M.leaf_hash(d) for d in data])
    assert M.root_of(levels) == tree.get_root()
    prefix = M.prefix_roots(levels[0])
    for m in range(1, n + 1):  # every prefix root agrees with pymerkle's historical roots
        assert M.subtree_root(levels, 0, m) == tree.get_root(m) == prefix[m]
    for i in range(n):
        path = M.inclusion_path(levels, i)
        assert path == list(tree.prove_inclusion(i + 1).path[1:])  # pymerkle prepends the leaf
        M.verify_inclusion(M.leaf_hash(data[i]), i, n, path, M.root_of(levels))


@pytest.mark.parametrize("n", [2, 3, 5, 8, 11, 17])
def test_consistency_all_pairs(n):
    levels = M.build_levels([M.leaf_hash(d) for d in _data(n)])
    for m in range(1, n + 1):
        for s in range(m, n + 1):
            p = M.consistency_path(levels, m, s)
            M.verify_consistency(m, s, M.subtree_root(levels, 0, m), M.subtree_root(levels, 0, s), p)


def test_bad_proofs_rejected():
    data = _data(11)
    levels = M.build_levels([M.leaf_hash(d) for d in data])
    root = M.root_of(levels)
    path = M.inclusion_path(levels, 6)
    with pytest.raises(M.ProofError, match="root"):
        M.verify_inclusion(M.leaf_hash(b"forged"), 6, 11, path, root)
    with pytest.raises(M.ProofError):
        M.verify_inclusion(M.leaf_hash(data[6]), 5, 11, path, root)
    with pytest.raises(M.ProofError, match="shorter"):
        M.verify_inclusion(M.leaf_hash(data[6]), 6, 11, path[:-1], root)
    # a rewritten history: the old tree had a different leaf 2
    old = M.build_levels([M.leaf_hash(d) for d in _data(3)[:2] + [b"other"]])
    cp = M.consistency_path(levels, 3, 11)
    with pytest.raises(M.ProofError, match="history rewritten"):
        M.verify_consistency(3, 11, M.root_of(old), root, cp)
    with pytest.raises(M.ProofError):
        M.verify_consistency(3, 11, M.subtree_root(levels, 0, 3), root, cp[:-1])
    with pytest.raises(M.ProofError, match="same size"):
        M.verify_consistency(3, 3, M.root_of(old), M.subtree_root(levels, 0, 3), [])
