"""Information reconciliation by BCH syndromes (secure sketch / code-offset).

Alice splits her bits into blocks, computes each block's BCH parity (``bchlib``, binary BCH over
GF(2^m)) and sends it; Bob decodes his block against Alice's parity and flips the located bits.
Every parity bit sent is counted as leaked.  Blocks Bob fails to decode are announced and
discarded by both.  The correction capability ``t`` is chosen from a KDR estimate made by
disclosing (and then discarding) a random sample of bit positions.

Reference: Dodis, Reyzin, Smith, "Fuzzy extractors", EUROCRYPT 2004 (syndrome construction);
Bloch & Barros, *Physical-Layer Security*, ch. 8.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import bchlib
import numpy as np
from scipy.special import betainc, betaincinv

__all__ = ["estimate_kdr", "kdr_upper_bound", "binomial_sf", "code_yield", "largest_t", "choose_t", "choose_code", "Reconciled", "bch_reconcile", "bch_correct", "chase_correct", "bch_block_bits"]


def estimate_kdr(a: np.ndarray, b: np.ndarray, n_sample: int, rng: np.random.Generator,
                 confidence: float = 0.99) -> tuple[float, float, np.ndarray]:
    """Disclose ``n_sample`` random positions of both bit strings to estimate their disagreement.

    Returns ``(kdr_hat, kdr_upper, remaining_mask)``: the estimate, its one-sided Clopper-Pearson
    upper bound at ``confidence``, and a mask of the positions NOT disclosed (to be kept).
    """
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"bit strings must be 1-D and of equal length, got {a.shape} and {b.shape}")
    n_sample = min(n_sample, a.size // 2)
    idx = rng.choice(a.size, size=n_sample, replace=False)
    k = int((a[idx] != b[idx]).sum())
    upper = kdr_upper_bound(k, n_sample, confidence)
    mask = np.ones(a.size, dtype=bool)
    mask[idx] = False
    return k / max(n_sample, 1), upper, mask


def kdr_upper_bound(k: int, n: int, confidence: float = 0.99) -> float:
    """One-sided Clopper-Pearson upper bound on a rate from ``k`` disagreements in ``n`` trials:
    the ``confidence`` quantile of Beta(k + 1, n - k), 1 when ``k == n``.  ``scipy.special.betaincinv``
    (the same Boost routine ``scipy.stats.beta.ppf`` calls, so the same numbers; ``scipy.stats`` costs
    over a second to import, which every PLKG start would pay)."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    return 1.0 if k == n else float(betaincinv(k + 1, n - k, confidence))


def binomial_sf(t: int, n: int, p: float) -> float:
    """``P[Binomial(n, p) > t]`` as the regularised incomplete beta ``I_p(t + 1, n - t)``
    (``scipy.stats.binom.sf``'s value, without importing ``scipy.stats``)."""
    if t < 0:
        return 1.0
    if t >= n:
        return 0.0
    return float(betainc(t + 1, n - t, p))


@functools.lru_cache(maxsize=1024)
def _code_size(t: int, m: int) -> tuple[int, int] | None:
    """``(n, ecc_bits)`` of bchlib's code, None where bchlib has none (t > 64: the Linux kernel's
    lib/bch.c, which bchlib wraps, has ``BCH_MAX_T`` 64).  Cached: a code's tables take milliseconds to
    build and :func:`choose_code` asks for up to ~300 of them."""
    try:
        code = bchlib.BCH(t, m=m)
    except RuntimeError:
        return None
    return code.n, code.ecc_bits


def bch_block_bits(t: int, m: int = 10) -> tuple[int, int]:
    """``(data_bits, ecc_bits)`` of the BCH code over GF(2^m) correcting ``t`` errors (byte-aligned data)."""
    size = _code_size(int(t), int(m))
    if size is None:
        raise ValueError(f"bchlib has no BCH code with m={m}, t={t} (its t stops at 64)")
    n, ecc_bits = size
    data_bytes = (n - ecc_bits) // 8
    if data_bytes < 1:
        raise ValueError(f"BCH(m={m}, t={t}) leaves no room for data; lower t")
    return 8 * data_bytes, ecc_bits


def choose_t(kdr_upper: float, m: int = 10, fail_prob: float = 1e-3, t_max: int = 100) -> int | None:
    """Smallest ``t`` with ``P[Binomial(data+ecc bits, kdr_upper) > t] <= fail_prob`` (None if > ``t_max``
    or beyond bchlib's largest ``t``, 64: for m = 12 that is a disagreement of about 1.05 %)."""
    for t in range(1, t_max + 1):
        try:
            data, ecc = bch_block_bits(t, m)
        except ValueError:
            return None
        if binomial_sf(t, data + ecc, kdr_upper) <= fail_prob:
            return t
    return None


def code_yield(kdr: float, m: int, t: int) -> tuple[float, float]:
    """``(yield, block_loss)`` of BCH(m, t) at disagreement ``kdr``: the chance ``P[Binomial(data + ecc,
    kdr) > t]`` that a block fails (it is announced and discarded), and the expected reconciled bits
    left per input bit after the parities of the kept blocks are subtracted,
    ``(data - ecc) (1 - loss) / (data + ecc)``."""
    data, ecc = bch_block_bits(t, m)
    loss = binomial_sf(t, data + ecc, kdr)
    return (data - ecc) * (1.0 - loss) / (data + ecc), loss


def largest_t(m: int) -> int | None:
    """bchlib's largest ``t`` over GF(2^m) that leaves room for data (64 from m = 10 up: lib/bch.c's
    ``BCH_MAX_T``); None if it has no code at all."""
    best = None
    for t in range(1, 65):
        try:
            bch_block_bits(t, m)
        except ValueError:
            break
        best = t
    return best


def choose_code(kdr_upper: float, m_max: int, fail_prob: float = 1e-3, m_min: int = 8,
                max_block_loss: float = 0.1) -> tuple[int, int] | None:
    """``(m, t)`` of the BCH code (``m`` from ``m_max`` down to ``m_min``) that keeps the most reconciled
    bits at ``kdr_upper`` (:func:`code_yield`).  Each ``m`` offers :func:`choose_t`'s ``t`` (block loss
    <= ``fail_prob``) or, where bchlib has no such ``t`` (its ``t`` stops at 64, so m = 12 stops near
    1.05 %), its largest ``t`` if that loses at most ``max_block_loss`` of the blocks: a failed block is
    announced and dropped, so a long code losing a few blocks keeps more than a short code whose
    parities are half its length.  None if no code qualifies or the best keeps nothing (above ~4 %: a legitimate refusal)."""
    if not 0.0 < fail_prob <= max_block_loss < 1.0:
        raise ValueError(f"need 0 < fail_prob <= max_block_loss < 1, got {fail_prob}, {max_block_loss}")
    best: tuple[float, int, int] | None = None
    for m in range(m_max, m_min - 1, -1):
        t = choose_t(kdr_upper, m, fail_prob)
        if t is None:
            t = largest_t(m)
            if t is None or code_yield(kdr_upper, m, t)[1] > max_block_loss:
                continue
        y = code_yield(kdr_upper, m, t)[0]
        if best is None or y > best[0]:
            best = (y, m, t)
    return None if best is None or best[0] <= 0 else (best[1], best[2])   # parities >= data: nothing left


@dataclass(frozen=True)
class Reconciled:
    """Outcome of reconciliation over ``n_blocks`` blocks.

    ``alice``/``bob``: the kept bits (blocks Bob decoded), ``leaked_bits``: parity bits of the
    kept blocks, ``disclosed_bits``: all parity bits sent, ``block_ok``: per-block decode success,
    ``syndromes``: the public parities (for an eavesdropper's replay), ``t``/``m``: the code.
    """

    alice: np.ndarray
    bob: np.ndarray
    leaked_bits: int
    disclosed_bits: int
    block_ok: np.ndarray
    syndromes: tuple[bytes, ...]
    t: int
    m: int


def _blocks(bits: np.ndarray, data_bits: int) -> list[bytearray]:
    n_blocks = -(-bits.size // data_bits)
    padded = np.zeros(n_blocks * data_bits, dtype=np.uint8)               # shortened code: known zero pad
    padded[: bits.size] = bits
    return [bytearray(np.packbits(row).tobytes()) for row in padded.reshape(n_blocks, data_bits)]


def _unblock(blocks: list[bytearray], n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(b"".join(bytes(b) for b in blocks), dtype=np.uint8))[:n]


def bch_correct(bits: np.ndarray, syndromes: tuple[bytes, ...], t: int, m: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``bits`` block by block against public parities; returns ``(corrected, block_ok)``."""
    code = bchlib.BCH(t, m=m)
    data_bits, _ = bch_block_bits(t, m)
    blocks = _blocks(bits, data_bits)
    if len(blocks) != len(syndromes):
        raise ValueError(f"{len(blocks)} blocks but {len(syndromes)} parities")
    ok = np.zeros(len(blocks), dtype=bool)
    for i, (blk, ecc) in enumerate(zip(blocks, syndromes)):              # loop over ~1000-bit blocks
        nerr = code.decode(blk, ecc)
        if nerr >= 0:
            code.correct(blk, bytearray(ecc))
            ok[i] = True
    return _unblock(blocks, bits.size), ok


def chase_correct(llr: np.ndarray, syndromes: tuple[bytes, ...], t: int, m: int = 10, p: int = 6
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Chase-II soft-decision decoding of bits known as log-likelihood ratios ``llr [n]`` (``log P(0)/P(1)``)
    against public BCH parities; returns ``(corrected bits [n] uint8, block_ok)`` like :func:`bch_correct`.

    Per block: the hard decision ``y = llr < 0``, its ``p`` least reliable bits (smallest ``|llr|``), and
    the ``2^p`` test patterns flipping subsets of them; each is decoded by bchlib (up to ``t`` more
    errors), a candidate kept only if its parity equals the public one (a decoder output that also moved
    parity bits is a miscorrection), and the block takes the candidate closest to the soft observation,
    ``sum |llr_i|`` over the bits where it differs from ``y``.  Pattern 0 is the hard decoder, so a block
    hard decoding accepts is accepted here too (possibly as a closer codeword).  The last block's zero
    padding is known to be zero.

    Reference: D. Chase, "A class of algorithms for decoding block codes with channel measurement
    information", IEEE Trans. Inf. Theory 18(1), 1972 (algorithm 2).
    """
    if not 0 <= p <= 12:
        raise ValueError(f"Chase p (least reliable bits flipped) must be in 0..12, got {p}")
    llr = np.asarray(llr, dtype=np.float64)
    if llr.ndim != 1:
        raise ValueError(f"llr must be 1-D, got shape {llr.shape}")
    code = bchlib.BCH(t, m=m)
    data_bits, _ = bch_block_bits(t, m)
    n_blocks = -(-llr.size // data_bits)
    if n_blocks != len(syndromes):
        raise ValueError(f"{n_blocks} blocks but {len(syndromes)} parities")
    rel = np.full(n_blocks * data_bits, np.inf)                            # padding: known zeros
    rel[: llr.size] = np.abs(llr)
    hard = np.zeros(n_blocks * data_bits, dtype=np.uint8)
    hard[: llr.size] = llr < 0
    out, ok = hard.copy(), np.zeros(n_blocks, dtype=bool)
    patterns = ((np.arange(2 ** p)[:, None] >> np.arange(p)) & 1).astype(bool)   # [2^p, p]
    for i, ecc in enumerate(syndromes):                                   # blocks x 2^p bchlib decodes
        sl = slice(i * data_bits, (i + 1) * data_bits)
        y, r = hard[sl], rel[sl]
        weak = np.argsort(r, kind="stable")[:p]
        weak = weak[np.isfinite(r[weak])]
        best: tuple[float, np.ndarray] | None = None
        for pat in patterns[: 2 ** weak.size]:
            z = y.copy()
            z[weak[pat[: weak.size]]] ^= 1
            buf = bytearray(np.packbits(z).tobytes())
            if code.decode(buf, ecc) < 0:
                continue
            code.correct(buf, bytearray(ecc))
            if bytes(code.encode(bytes(buf))) != bytes(ecc):             # it moved parity bits too
                continue
            cand = np.unpackbits(np.frombuffer(bytes(buf), dtype=np.uint8))
            metric = float(r[cand != y].sum())
            if np.isfinite(metric) and (best is None or metric < best[0]):
                best = (metric, cand)
        if best is not None:
            out[sl], ok[i] = best[1], True
    return out[: llr.size], ok


def bch_reconcile(alice: np.ndarray, bob: np.ndarray, t: int, m: int = 10,
                  send: Callable[[str, np.ndarray], np.ndarray] | None = None) -> Reconciled:
    """Alice sends BCH parities of her blocks; Bob corrects; undecodable blocks are dropped by both.

    ``send(kind, uint8 array) -> uint8 array`` carries the parities and Bob's block verdicts (e.g.
    :meth:`semguard.keys.auth.PublicChannel.send`; default: unchanged)."""
    if alice.shape != bob.shape or alice.ndim != 1:
        raise ValueError(f"bit strings must be 1-D and of equal length, got {alice.shape} and {bob.shape}")
    code = bchlib.BCH(t, m=m)
    data_bits, ecc_bits = bch_block_bits(t, m)
    syndromes = tuple(bytes(code.encode(blk)) for blk in _blocks(alice, data_bits))
    if send is not None:
        sizes = [len(x) for x in syndromes]
        flat = bytes(send("bch-syndromes", np.frombuffer(b"".join(syndromes), dtype=np.uint8)))
        syndromes = tuple(flat[sum(sizes[:i]): sum(sizes[: i + 1])] for i in range(len(sizes)))
    bob_fixed, ok = bch_correct(bob, syndromes, t, m)
    if send is not None:
        ok = send("bch-block-ok", ok.astype(np.uint8)).astype(bool)      # Bob announces the blocks he keeps
    keep = np.repeat(ok, data_bits)[: alice.size]
    return Reconciled(alice=alice[keep], bob=bob_fixed[keep], leaked_bits=int(ok.sum()) * ecc_bits,
                      disclosed_bits=len(syndromes) * ecc_bits, block_ok=ok, syndromes=syndromes, t=t, m=m)
