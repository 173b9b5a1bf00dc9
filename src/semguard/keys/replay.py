"""A passive eavesdropper's best replay of the public discussion, on her own soft observations.

Eve measures her own channel, hears every public message and knows the whole protocol.  She:

0. denoises her own trace with the public channel model: the Wiener smoother
   ``W_k = S_k / (S_k + N0_E)`` per DFT bin of her session (:func:`wiener_smooth`), which uses
   her neighbouring probes, not only the one at each time (she keeps whichever of the raw and the
   smoothed trace explains the disclosed sample better);
1. turns each of her kept components into Alice's level posterior under the Gaussian model
   ``x_A | x_E ~ N(r x_E, 1 - r^2)`` (both standardised), with the quantiser's Gaussian
   thresholds, and so into one log-likelihood ratio per Gray bit (:func:`bit_llrs`); she fits ``r``
   by maximum likelihood to the bits Alice and Bob disclosed for the KDR estimate
   (:func:`fit_correlation`);
2. decodes against every parity Alice disclosed: Cascade's blocks and binary-search halves by
   sum-product belief propagation, then greedy bit flipping on the least reliable bit of each
   unsatisfied check (:func:`bp_decode`); BCH syndromes by Chase-II
   (:func:`semguard.keys.reconcile.chase_correct`);
3. hashes with the public Toeplitz seed and checks her key against Bob's public confirmation tag,
   trying the flips of her least reliable bits (singly and in pairs) that the tag could confirm
   (:func:`tag_search`; a flip of input bit ``i`` adds column ``i`` of the Toeplitz matrix).

Reference: Gallager, *Low-Density Parity-Check Codes* (1963) for the decoder; the log-domain
check rule ``phi(x) = -log tanh(x / 2)`` is its own inverse.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.sparse import csr_matrix
from scipy.special import ndtr, ndtri   # scipy.stats.norm.cdf / .ppf call these; scipy.stats takes >1 s to import

from semguard.keys.quantize import gray_bits

__all__ = ["wiener_smooth", "level_posteriors", "bit_llrs", "fit_correlation", "bp_decode", "tag_search", "xor_reliability"]

_LLR_CAP = 30.0


def wiener_smooth(trace: np.ndarray, spectrum: np.ndarray, n0: float) -> np.ndarray:
    """Non-causal Wiener estimate of the channel from noisy probes ``trace [n]`` (complex), given the
    per-bin channel spectrum ``spectrum [n]`` (mean 1) and the noise variance ``n0`` (circular edges)."""
    z = np.asarray(trace, dtype=np.complex128)
    s = np.asarray(spectrum, dtype=np.float64)
    if s.shape != z.shape:
        raise ValueError(f"spectrum must match the trace, got {s.shape} and {z.shape}")
    return np.fft.ifft(np.fft.fft(z) * (s / (s + max(n0, 1e-12))))


def level_posteriors(xe: np.ndarray, r: float, bits: int) -> np.ndarray:
    """``P(level_A = k | x_E)`` for standardised Eve components ``xe [N]``: ``[N, 2^bits]``."""
    if not -1.0 < r < 1.0:
        raise ValueError(f"correlation must be in (-1, 1), got {r}")
    edges = np.concatenate([[-np.inf], ndtri(np.arange(1, 2 ** bits) / 2 ** bits), [np.inf]])
    s = np.sqrt(1.0 - r * r)
    cdf = ndtr((edges[None, :] - r * np.asarray(xe, dtype=np.float64)[:, None]) / s)
    return np.clip(np.diff(cdf, axis=1), 1e-300, 1.0)


def bit_llrs(xe: np.ndarray, r: float, bits: int) -> np.ndarray:
    """``log P(bit=0) / P(bit=1)`` for every Gray bit of Alice's levels, ``[N * bits]`` (MSB first)."""
    post = level_posteriors(xe, r, bits)                                  # [N, L]
    g = gray_bits(np.arange(2 ** bits), bits).astype(bool)                # [L, bits]
    p1 = post @ g                                                          # [N, bits]
    p0 = post @ ~g
    return np.clip(np.log(p0) - np.log(p1), -_LLR_CAP, _LLR_CAP).reshape(-1)


def fit_correlation(xe: np.ndarray, bits: int, positions: np.ndarray, alice_bits: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood ``r`` on a grid in ``(-1, 1)`` from Alice's disclosed bits at ``positions``;
    returns ``(r, log-likelihood)`` (the latter lets Eve choose between candidate estimates of ``x_E``)."""
    comp = positions // bits
    best, best_ll = 0.0, -np.inf
    for r in np.linspace(-0.99, 0.99, 199):                               # a 1-D grid, not a loop over bits
        llr = bit_llrs(xe[comp], float(r), bits).reshape(-1, bits)[np.arange(comp.size), positions % bits]
        ll = -np.logaddexp(0.0, np.where(alice_bits == 1, llr, -llr)).sum()  # log P(observed bits)
        if ll > best_ll:
            best, best_ll = float(r), float(ll)
    return best, best_ll


def _phi(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 1e-12, 2 * _LLR_CAP)
    return -np.log(np.tanh(x / 2.0))


def bp_decode(llr: np.ndarray, matrix: csr_matrix, parities: np.ndarray, *, iters: int = 30,
              flips: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sum-product decoding of ``x [n]`` from ``llr [n]`` and the checks ``matrix x = parities (mod 2)``.

    Returns ``(bits [n] uint8, posterior llr [n])``; after the belief propagation, up to ``flips``
    greedy flips (default ``n // 4``) of the least reliable bit of the smallest unsatisfied check.
    """
    llr = np.asarray(llr, dtype=np.float64)
    flips = llr.size // 4 if flips is None else flips
    m = matrix.tocsr()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    cols = m.indices
    s = np.asarray(parities, dtype=np.int64)
    msg = np.zeros(cols.size)
    post = llr.copy()
    for _ in range(iters if cols.size else 0):                            # BP iterations over all edges at once
        q = post[cols] - msg
        ph = _phi(np.abs(q))
        neg = (q < 0).astype(np.int64)
        tot = np.bincount(rows, ph, minlength=m.shape[0])
        sign_row = (np.bincount(rows, neg, minlength=m.shape[0]) + s) % 2
        sign = 1.0 - 2.0 * ((sign_row[rows] - neg) % 2)
        new = sign * _phi(np.maximum(tot[rows] - ph, 0.0))
        msg = 0.5 * msg + 0.5 * new                                       # damping for the loopy graph
        post = np.clip(llr + np.bincount(cols, msg, minlength=llr.size), -1e3, 1e3)
    x = (post < 0).astype(np.uint8)
    sizes = np.diff(m.indptr)
    csc = m.tocsc()
    bad = (m @ x.astype(np.int64)) % 2 != s
    for _ in range(flips):                                                # greedy repair, one check at a time
        open_rows = np.flatnonzero(bad)
        if not open_rows.size:
            break
        row = open_rows[np.argmin(sizes[open_rows])]
        members = m.indices[m.indptr[row]: m.indptr[row + 1]]
        j = members[np.argmin(np.abs(post[members]))]
        x[j] ^= 1
        post[j] = -post[j] if post[j] != 0 else (1.0 if x[j] == 0 else -1.0)
        bad[csc.indices[csc.indptr[j]: csc.indptr[j + 1]]] ^= True        # checks holding bit j
    return x, post


def tag_search(bits: np.ndarray, post: np.ndarray, length: int, seed: np.ndarray,
               hash_fn: Callable[[np.ndarray, int, np.ndarray], np.ndarray],
               accept: Callable[[np.ndarray], bool], n_least: int = 24) -> tuple[np.ndarray, bool]:
    """Eve's key bits from ``bits`` and whether the public tag confirmed it, trying flips of her
    ``n_least`` least reliable bits singly and in pairs (Toeplitz hashing is linear).

    ``hash_fn(bits, length, seed)`` is the amplifier; ``accept(key_bits)`` checks the tag.
    """
    key = hash_fn(bits, length, seed)
    if accept(key) or length == 0:
        return key, bool(length and accept(key))
    n = bits.size
    weak = np.argsort(np.abs(post))[: min(n_least, n)]
    cols = [seed[n - 1 - i: n - 1 - i + length].astype(np.uint8) for i in weak]  # column i of T
    for a in range(len(weak)):                                            # <= n_least^2 / 2 candidates
        cand = key ^ cols[a]
        if accept(cand):
            return cand, True
        for b in range(a + 1, len(weak)):
            if accept(cand ^ cols[b]):
                return cand ^ cols[b], True
    return key, False


def xor_reliability(post: np.ndarray, length: int, seed: np.ndarray) -> np.ndarray:
    """``log2 |E[(-1)^key_j]|`` per output bit ``j`` of the Toeplitz hash, for independent input bits
    with posteriors ``post`` (the piling-up lemma: the bias of a XOR is the product of biases)."""
    from scipy.signal import fftconvolve

    n = post.size
    lt = np.log2(np.clip(np.tanh(np.abs(post) / 2.0), 1e-300, 1.0))
    return fftconvolve(np.asarray(seed, dtype=np.float64), lt)[n - 1: n - 1 + length]
