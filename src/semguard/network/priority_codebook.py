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

A critical word outside the lexicon (:mod:`~semguard.network.lexicon`) is either spelled (an
escape header row naming its length, then one codeword of a max-distance alphabet codebook per
character, in extra channel uses at the codewords' power) or left to DeepSC at the codewords'
power; either way the sentence still spends exactly ``S L`` (the spelled characters' energy is
taken from the non-critical tokens).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from semguard.channels.base import Channel
from semguard.codecs.deepsc import DeepSC
from semguard.network.lexicon import MAX_SPELL, SPELL_ALPHABET, escape_length, escape_row, spell

__all__ = ["alphabet_codebook", "codebook_power", "critical_lexicon", "mark_deepsc_sent", "ml_decode", "qpsk_codebook", "receive_rest",
           "split_uses"]


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


@lru_cache(maxsize=16)
def alphabet_codebook(size: int, n: int) -> tuple[Tensor, int]:
    """QPSK codebook ``[size, n]`` of the greatest minimum Hamming distance ``d`` (over the ``2n``
    sign bits) that a greedy lexicode reaches with ``size`` rows, and ``d``: the first ``size``
    words, in counting order, each at least ``d`` bits from every word kept before it.  Used for
    the spelled characters, where a random codebook's closest pair differs in a single bit."""
    if size < 1 or n < 1 or size > 4 ** n:
        raise ValueError(f"{size} distinct QPSK codewords do not fit in {n} channel uses")
    if n > 10:
        raise ValueError(f"alphabet codebooks search all 4^n words: n must be <= 10, got {n}")
    words = np.arange(4 ** n, dtype=np.int64)
    pop = np.array([bin(i).count("1") for i in range(4 ** n)], dtype=np.int64)
    for d in range(2 * n, 0, -1):
        kept = [0]
        for w in words[1:]:
            if pop[np.bitwise_xor(np.array(kept), w)].min() >= d:
                kept.append(int(w))
                if len(kept) == size:
                    break
        if len(kept) >= size:
            break
    bits = (torch.tensor(kept).unsqueeze(1) >> torch.arange(2 * n)) & 1
    code = torch.view_as_complex(((1 - 2 * bits.float()) / 2 ** 0.5).reshape(size, n, 2).contiguous())
    return code, d


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


def codebook_power(lengths: Tensor, crit_tokens: Tensor, boost_db: float,
                   extra_tokens: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Per-sentence power per use of the protected symbols ``a`` and of the non-critical DeepSC
    symbols ``beta`` ``[B]``: ``a = 10^(boost/10)`` and ``a (T_c + E) + beta (L - T_c) = L``, where
    ``E`` (``extra_tokens``, default 0) is the extra channel uses of spelled words in units of ``S``;
    ``beta`` floored at 0.05 (then ``a`` shrinks); a sentence without non-critical tokens has
    ``a = L / (T_c + E)`` (1 without extra uses)."""
    if boost_db < 0:
        raise ValueError(f"boost_db must be >= 0, got {boost_db}")
    L, tc = lengths.double(), crit_tokens.double()
    prot = tc if extra_tokens is None else tc + extra_tokens.double()
    rest = L - tc
    a = torch.full_like(L, 10 ** (boost_db / 10))
    beta = ((L - a * prot) / rest.clamp_min(1)).clamp_min(0.05)
    a = torch.where(prot > 0, (L - beta * rest) / prot.clamp_min(1e-12), torch.ones_like(a))
    beta = torch.where(rest > 0, beta, torch.zeros_like(beta))
    a = torch.where(rest > 0, a, L / prot.clamp_min(1e-12))
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
                  channel: Channel, *, boost_db: float = 0.0, jam: Callable[[Tensor], Tensor] | None = None,
                  generator: torch.Generator | None = None, two_pass: bool = True, seed: int = 0,
                  oov: str = "spell", spell_uses: int = 6, max_spell: int = MAX_SPELL) -> dict:
    """One batch over ``channel``: critical words by codebook, the rest by DeepSC (``codec``).

    ``tokens [B, T]``; ``spans[b]`` the ``(start, stop, critical)`` token spans of sentence ``b``'s
    words and ``critical[b]`` its critical words in order; ``jam(tx) -> interference`` of ``tx``'s
    shape, or None.  A critical word outside ``lexicon`` (``oov``):

    * ``"spell"``: its header codeword is the escape row of its length
      (:func:`~semguard.network.lexicon.escape_row`) and its characters follow as alphabet
      codewords of ``spell_uses`` channel uses each, appended after the sentence's DeepSC block
      (extra channel uses, at the codewords' power; the receiver parses them in word order, so a
      wrong header length shifts the words spelled after it);
    * ``"deepsc"``: its tokens stay DeepSC symbols at the codewords' power ``a`` (same uses; which
      critical words are out of the lexicon is side information, as the spans are).

    Every sentence spends exactly uniform's energy ``S L`` (:func:`codebook_power`).  Returns
    ``{"tokens" [B, T] decoded (critical slots hold the decoded words' pieces where they fit),
    "critical_ok" and "oov" per sentence a list of bools per critical word, "energy" [B],
    "uses" [B] (``S L`` plus the spelled characters' uses), "extra_uses" [B]}``."""
    if oov not in ("spell", "deepsc"):
        raise ValueError(f"oov must be 'spell' or 'deepsc', got {oov!r}")
    if spell_uses < 3:
        raise ValueError(f"spell_uses must be >= 3 ({len(SPELL_ALPHABET)} characters in QPSK), got {spell_uses}")
    S = codec.S
    B, T = tokens.shape
    size = 2 ** index_bits
    inv = {i: w for w, i in lexicon.items()}
    lengths = codec.lengths(tokens)
    real = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
    crit = _spans_mask(spans, (B, T)) & real
    dsc = torch.zeros_like(crit)                       # critical tokens sent by DeepSC (deepsc fallback)
    words_b, out_b = [], []
    for b in range(B):
        words = list(critical[b])
        cspans = [(s0, s1) for s0, s1, c in spans[b] if c]
        if len(words) != len(cspans):
            raise ValueError(f"sentence {b}: {len(words)} critical words for its critical spans")
        flags = [w not in lexicon for w in words]
        if any(flags) and oov == "spell" and lexicon and max(lexicon.values()) >= size - max_spell:
            raise ValueError(f"the lexicon fills the escape rows of its {index_bits}-bit codebook: "
                             f"no room to spell {words[flags.index(True)]!r}")
        for (s0, s1), f in zip(cspans, flags):
            if f and oov == "deepsc":
                dsc[b, s0:s1] = True
        words_b.append(words)
        out_b.append(flags)
    cw = crit & ~dsc                                   # critical tokens whose uses carry codewords
    nc = real & ~crit
    spelled = [[spell(w) if f and oov == "spell" else [] for w, f in zip(ws, fl)] for ws, fl in zip(words_b, out_b)]
    extra = torch.tensor([spell_uses * sum(len(c) for c in sp) for sp in spelled])
    a, beta = codebook_power(lengths, crit.sum(1), boost_db, extra / S)
    x = codec.encode(tokens, snr_db).view(B, T, S)

    def gain(mask: Tensor, power: Tensor) -> Tensor:
        p = (x.abs().square() * mask.unsqueeze(2)).sum((1, 2)) / (S * mask.sum(1)).clamp_min(1)
        return (power / p.double().clamp_min(1e-12)).sqrt().float()

    g_nc, g_d = gain(nc, beta), gain(dsc, a)
    amp = nc * g_nc.view(B, 1) + dsc * g_d.view(B, 1)  # per token: the DeepSC symbols' scale
    tx = (x * amp.unsqueeze(2)).reshape(B, T * S)
    ext = torch.zeros(B, int(extra.max()) if B else 0, dtype=tx.dtype)
    alphabet = len(SPELL_ALPHABET)
    plan = []                                          # per sentence: (header positions, header row) per codeword word
    for b in range(B):
        pos = (cw[b].nonzero().flatten().unsqueeze(1) * S + torch.arange(S)).flatten()
        coded = [k for k, f in enumerate(out_b[b]) if not (f and oov == "deepsc")]
        segs, start, e = [], 0, 0
        for k, n in zip(coded, split_uses(len(pos), len(coded)) if coded else []):
            w = words_b[b][k]
            row = lexicon[w] if w in lexicon else escape_row(len(w), index_bits, max_spell=max_spell)
            p = pos[start:start + n]
            tx[b, p] = qpsk_codebook(size, n, seed)[row] * float(a[b]) ** 0.5
            for ch in spelled[b][k]:
                ext[b, e:e + spell_uses] = alphabet_codebook(alphabet, spell_uses)[0][ch] * float(a[b]) ** 0.5
                e += spell_uses
            segs.append((k, p))
            start += n
        plan.append(segs)
    full = torch.cat([tx, ext], 1)
    st = channel.sample_state(B, full.shape[1], snr_db, generator=generator)
    interf = None if jam is None else st.h * jam(full)
    y_all = channel.equalize(channel.apply(full, st, generator=generator, interference=interf), st)
    y, ye = y_all[:, :T * S], y_all[:, T * S:]
    ok = [[False] * len(ws) for ws in words_b]
    decoded: list[dict[int, str | None]] = []
    for b, segs in enumerate(plan):
        got, e = {}, 0
        for k, p in segs:
            row = ml_decode(y[b, p], qpsk_codebook(size, len(p), seed))
            c = escape_length(row, index_bits, max_spell=max_spell) if row not in inv else None
            if c is None:
                got[k] = inv.get(row)
                continue
            chars = []
            for _ in range(c):
                seg = ye[b, e:e + spell_uses]
                e += spell_uses
                if len(seg) < spell_uses:              # parsed past the frame: the word is lost
                    chars = None
                    break
                chars.append(SPELL_ALPHABET[ml_decode(seg, alphabet_codebook(alphabet, spell_uses)[0])])
            got[k] = None if chars is None else "".join(chars)
        decoded.append(got)
        for k, w in got.items():
            ok[b][k] = w == words_b[b][k]
    out = receive_rest(codec, y, amp, nc, dsc, cw, spans, decoded, snr_db, two_pass=two_pass)
    if oov == "deepsc":
        mark_deepsc_sent(ok, out, tokens, spans, out_b)
    return {"tokens": out, "critical_ok": ok, "oov": out_b, "energy": full.abs().square().sum(1).double(),
            "uses": S * lengths + extra, "extra_uses": extra}


def mark_deepsc_sent(ok: list[list[bool]], out: Tensor, tokens: Tensor,
                     spans: Sequence[Sequence[tuple[int, int, bool]]], sent: Sequence[Sequence[bool]]) -> None:
    """In place: a critical word that went through DeepSC (``sent[b][k]``) is right when all of its
    tokens are (``ok[b][k]``), for the critical spans of ``spans``."""
    for b, sp in enumerate(spans):
        cspans = [(s0, s1) for s0, s1, c in sp if c]
        for k, f in enumerate(sent[b]):
            if f:
                s0, s1 = cspans[k]
                ok[b][k] = bool((out[b, s0:s1] == tokens[b, s0:s1]).all())


@torch.no_grad()
def receive_rest(codec: DeepSC, y: Tensor, amp: Tensor, nc: Tensor, dsc: Tensor, cw: Tensor,
                 spans: Sequence[Sequence[tuple[int, int, bool]]], decoded: Sequence[dict[int, str | None]],
                 snr_db: float, *, two_pass: bool = True) -> Tensor:
    """The DeepSC side of a protected sentence: decoded tokens ``[B, T]``.

    ``y [B, T S]`` the equalised DeepSC block, ``amp [B, T]`` the scale of each token's DeepSC
    symbols, ``nc``/``dsc``/``cw [B, T]`` the non-critical tokens, the critical tokens sent by
    DeepSC and those whose uses carried the protected code; ``decoded[b]`` maps critical word
    ``k`` of sentence ``b`` to the word its code gave (None: lost).  DeepSC decodes with the
    ``cw`` slots erased, the decoded words' pieces fill their spans where the piece counts match,
    and with ``two_pass`` DeepSC decodes again with those slots refilled by re-encoding that
    hypothesis (the context comes back)."""
    S = codec.S
    B, T = cw.shape
    real = nc | dsc | cw
    lengths = real.sum(1)
    r = torch.where((nc | dsc).repeat_interleave(S, 1), y / amp.repeat_interleave(S, 1).clamp_min(1e-6),
                    torch.zeros_like(y))
    pred = codec.decode(r, None, lengths=lengths).argmax(-1)
    hyp = pred.clone()
    pieces = _pieces(codec.tokenizer, {w for got in decoded for w in got.values() if w})
    for b, sp in enumerate(spans):
        cspans = [(s0, s1) for s0, s1, c in sp if c]
        for k, w in decoded[b].items():
            s0, s1 = cspans[k]
            ids = pieces.get(w) if w else None
            if ids is not None and len(ids) == s1 - s0:
                hyp[b, s0:s1] = ids
    if two_pass:
        xh = codec.encode(torch.where(real, hyp.clamp_min(1), torch.zeros_like(hyp)), snr_db).view(B, T, S)
        ph = (xh.abs().square() * nc.unsqueeze(2)).sum((1, 2)) / (S * nc.sum(1)).clamp_min(1)
        fill = (xh / ph.clamp_min(1e-12).sqrt().view(B, 1, 1)).reshape(B, T * S)
        pred = codec.decode(torch.where(cw.repeat_interleave(S, 1), fill, r), None, lengths=lengths).argmax(-1)
    return torch.where(cw, hyp, torch.where(real, pred, torch.zeros_like(pred)))


def _pieces(tokenizer, words: set[str]) -> dict[str, Tensor]:
    """WordPiece ids of each word encoded alone (cached per tokenizer)."""
    cache = _PIECES.setdefault(id(tokenizer), {})
    new = sorted(words - cache.keys())
    if new:
        ids = tokenizer.encode(new, max_tokens=64)
        cache.update({w: ids[k][ids[k] != 0] for k, w in enumerate(new)})
    return {w: cache[w] for w in words}


_PIECES: dict[int, dict[str, Tensor]] = {}
