"""Critical words over a shared codebook: the channel uses of a sentence's critical tokens carry
the critical words' lexicon indices as ML-decoded random QPSK codewords; DeepSC sends the rest.

Why: DeepSC spends ``S`` channel uses on every WordPiece token, so a rare word of ``k`` pieces
costs ``S k`` uses and is decoded from its pieces' symbols and the context; a shared lexicon of
``2^b`` critical words (names, places, numbers of the incident area, the knowledge base's kind of
prior) names the word in ``b`` bits.  Per sentence the ``S T_c`` uses of its ``T_c`` critical
tokens are split evenly among its ``W_c`` critical words; word ``w`` with ``n_w`` uses is sent as
row ``index(w)`` of a random QPSK codebook ``C_n [2^b, n]`` (unit modulus; seeded, shared), at
power ``a`` per use; the receiver takes the maximum-likelihood row (nearest codeword, AWGN).
The non-critical tokens' DeepSC symbols are renormalised to power ``beta`` per use so that the
sentence spends exactly uniform's energy ``S L``:  ``a S T_c + beta S (L - T_c) = S L``.  Same
channel uses, same energy; the side information is the critical words' token spans (the map the
``power`` scheme also assumes) and the lexicon.  The DeepSC receiver decodes twice: first with the
critical slots erased (zero), then with those slots refilled by re-encoding its own hypothesis
(first-pass non-critical tokens plus the codebook words), so the context comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from semguard.channels.base import Channel
from semguard.codecs.deepsc import DeepSC

__all__ = ["codebook_power", "critical_lexicon", "ml_decode", "qpsk_codebook", "split_uses"]


def critical_lexicon(words: Sequence[str], *, index_bits: int) -> dict[str, int]:
    """Index of each distinct word (sorted) in a lexicon of ``2^index_bits`` entries; the entries
    past the words are unused codewords (a decoder that lands on one has lost the word)."""
    distinct = sorted(set(words))
    if index_bits < 1 or len(distinct) > 2 ** index_bits:
        raise ValueError(f"index_bits must be >= 1 and hold {len(distinct)} words (>= "
                         f"{max(1, (len(distinct) - 1).bit_length())}), got {index_bits}")
    return {w: i for i, w in enumerate(distinct)}


@lru_cache(maxsize=64)
def qpsk_codebook(size: int, n: int, seed: int = 0) -> Tensor:
    """Random QPSK codebook ``[size, n]`` complex64, every symbol of modulus 1, rows distinct
    (seeded, shared by both ends)."""
    if size < 1 or n < 1:
        raise ValueError(f"codebook needs size >= 1 and n >= 1 channel uses, got {size}, {n}")
    if size > 4 ** n:
        raise ValueError(f"{size} distinct QPSK codewords do not fit in {n} channel uses")
    g = torch.Generator().manual_seed(seed * 1_000_003 + n)
    if 4 * size > 4 ** n:            # dense: distinct rows drawn without replacement from all 4^n words
        words = torch.randperm(4 ** n, generator=g)[:size]
        bits = (words.unsqueeze(1) >> torch.arange(2 * n)) & 1
        return torch.view_as_complex(((1 - 2 * bits.float()) / 2 ** 0.5).reshape(size, n, 2).contiguous())
    bits = torch.randint(0, 2, (size, 2 * n), generator=g)
    while True:                      # redraw repeated rows: two words with one codeword could never be told apart
        _, first = np.unique(bits.numpy(), axis=0, return_index=True)
        dup = np.setdiff1d(np.arange(size), first)
        if not len(dup):
            break
        bits[torch.from_numpy(dup)] = torch.randint(0, 2, (len(dup), 2 * n), generator=g)
    return torch.view_as_complex(((1 - 2 * bits.float()) / 2 ** 0.5).reshape(size, n, 2).contiguous())


def split_uses(total: int, words: int) -> list[int]:
    """``total`` channel uses split as evenly as possible among ``words`` (the first get the rest)."""
    if words < 1 or total < words:
        raise ValueError(f"need at least one channel use per word, got {total} uses for {words} words")
    q, r = divmod(total, words)
    return [q + (i < r) for i in range(words)]


def ml_decode(y: Tensor, codebook: Tensor) -> int:
    """Nearest row of ``codebook [M, n]`` to ``y [n]``: constant modulus, so the largest
    ``Re <y, c>`` (maximum likelihood in AWGN, and a real decoder under jamming)."""
    return int((codebook.conj() @ y).real.argmax())


def codebook_power(lengths: Tensor, crit_tokens: Tensor, boost_db: float) -> tuple[Tensor, Tensor]:
    """Per-sentence power per use of the codewords ``a`` and of the non-critical DeepSC symbols
    ``beta`` ``[B]``: ``a = 10^(boost/10)`` and ``a T_c + beta (L - T_c) = L``; ``beta`` floored at
    0.05 (then ``a`` shrinks); a sentence without non-critical tokens has ``a = 1``."""
    if boost_db < 0:
        raise ValueError(f"boost_db must be >= 0, got {boost_db}")
    L, tc = lengths.double(), crit_tokens.double()
    rest = L - tc
    a = torch.full_like(L, 10 ** (boost_db / 10))
    beta = ((L - a * tc) / rest.clamp_min(1)).clamp_min(0.05)
    a = torch.where(tc > 0, (L - beta * rest) / tc.clamp_min(1), torch.ones_like(a))
    beta = torch.where(rest > 0, beta, torch.zeros_like(beta))
    a = torch.where(rest > 0, a, torch.ones_like(a))
    return a, beta


def _spans_mask(spans: Sequence[Sequence[tuple[int, int, bool]]], shape: tuple[int, int]) -> Tensor:
    crit = torch.zeros(shape, dtype=torch.bool)
    for b, sp in enumerate(spans):
        for s0, s1, c in sp:
            if c:
                crit[b, s0:s1] = True
    return crit


@torch.no_grad()
def send_codebook(codec: DeepSC, tokens: Tensor, spans: Sequence[Sequence[tuple[int, int, bool]]],
                  critical: Sequence[Sequence[str]], lexicon: dict[str, int], index_bits: int, snr_db: float,
                  channel: Channel, *, boost_db: float = 0.0, jam: Callable[[Tensor], Tensor] | None = None, generator: torch.Generator | None = None,
                  two_pass: bool = True, seed: int = 0) -> dict:
    """One batch over ``channel``: critical words by codebook, the rest by DeepSC (``codec``).

    ``tokens [B, T]``; ``spans[b]`` the ``(start, stop, critical)`` token spans of sentence ``b``'s
    words and ``critical[b]`` its critical words in order; ``jam(tx) -> interference [B, n]`` or
    None.  Returns ``{"tokens" [B, T] decoded (critical slots hold the decoded words' pieces where
    they fit), "critical_ok" per sentence a list of bools, "energy" [B], "uses" [B]}``."""
    S = codec.S
    B, T = tokens.shape
    lengths = codec.lengths(tokens)
    real = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
    crit = _spans_mask(spans, (B, T)) & real
    nc = real & ~crit
    a, beta = codebook_power(lengths, crit.sum(1), boost_db)
    x = codec.encode(tokens, snr_db).view(B, T, S)
    p_nc = (x.abs().square() * nc.unsqueeze(2)).sum((1, 2)) / (S * nc.sum(1)).clamp_min(1)
    g_nc = (beta / p_nc.double().clamp_min(1e-12)).sqrt().float()
    tx = (x * nc.unsqueeze(2) * g_nc.view(B, 1, 1)).reshape(B, T * S)
    size = 2 ** index_bits
    plan = []                                          # per sentence: (symbol positions, lexicon index) per word
    for b in range(B):
        pos = (crit[b].nonzero().flatten().unsqueeze(1) * S + torch.arange(S)).flatten()
        words = list(critical[b])
        if len(words) != len({i for i, (_, _, c) in enumerate(spans[b]) if c}):
            raise ValueError(f"sentence {b}: {len(words)} critical words for its critical spans")
        segs, start = [], 0
        for w, n in zip(words, split_uses(len(pos), len(words)) if words else []):
            if w not in lexicon:
                raise ValueError(f"critical word {w!r} is not in the lexicon")
            p = pos[start:start + n]
            tx[b, p] = qpsk_codebook(size, n, seed)[lexicon[w]] * float(a[b]) ** 0.5
            segs.append((p, lexicon[w]))
            start += n
        plan.append(segs)
    st = channel.sample_state(B, tx.shape[1], snr_db, generator=generator)
    interf = None if jam is None else st.h * jam(tx)
    y = channel.equalize(channel.apply(tx, st, generator=generator, interference=interf), st)
    found = [[ml_decode(y[b, p], qpsk_codebook(size, len(p), seed)) for p, _ in segs] for b, segs in enumerate(plan)]
    ok = [[j == i for j, (_, i) in zip(f, segs)] for f, segs in zip(found, plan)]
    ncs = nc.repeat_interleave(S, 1)
    r = torch.where(ncs, y / g_nc.unsqueeze(1).clamp_min(1e-6), torch.zeros_like(y))
    pred = codec.decode(r, None, lengths=lengths).argmax(-1)
    pieces = _lexicon_pieces(codec.tokenizer, lexicon)
    hyp = pred.clone()
    for b, sp in enumerate(spans):
        cspans = [(s0, s1) for s0, s1, c in sp if c]
        for (s0, s1), j in zip(cspans, found[b]):
            ids = pieces.get(j)
            if ids is not None and len(ids) == s1 - s0:
                hyp[b, s0:s1] = ids
    if two_pass:
        xh = codec.encode(torch.where(real, hyp.clamp_min(1), torch.zeros_like(hyp)), snr_db).view(B, T, S)
        ph = (xh.abs().square() * nc.unsqueeze(2)).sum((1, 2)) / (S * nc.sum(1)).clamp_min(1)
        fill = (xh / ph.clamp_min(1e-12).sqrt().view(B, 1, 1)).reshape(B, T * S)
        cs = crit.repeat_interleave(S, 1)
        pred = codec.decode(torch.where(cs, fill, r), None, lengths=lengths).argmax(-1)
    out = torch.where(crit, hyp, torch.where(real, pred, torch.zeros_like(pred)))
    return {"tokens": out, "critical_ok": ok, "energy": tx.abs().square().sum(1).double(), "uses": S * lengths}


def _lexicon_pieces(tokenizer, lexicon: dict[str, int]) -> dict[int, Tensor]:
    key = (id(tokenizer), tuple(sorted(lexicon.items())))
    hit = _PIECES.get(key)
    if hit is None:
        words = sorted(lexicon, key=lexicon.get)
        ids = tokenizer.encode(words, max_tokens=64)
        hit = {lexicon[w]: ids[k][ids[k] != 0] for k, w in enumerate(words)}
        _PIECES.clear()
        _PIECES[key] = hit
    return hit


_PIECES: dict = {}
