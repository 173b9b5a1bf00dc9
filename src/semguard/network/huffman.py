"""Canonical Huffman code for the characters of spelled critical words.

A spelled out-of-lexicon word costs :data:`~semguard.network.priority_ldpc.CHAR_BITS` = 6 bits per
character at a fixed width.  Letters are far from uniform (``e`` about 11 %, ``q`` about 0.2 % of
a word list), so a prefix code built from a training corpus needs about 4.3 bits per character.

:func:`char_code` counts the characters of the distinct content words of a source corpus (each
word once: the spelled words are rare words, so the frequency of a character in the *vocabulary*,
not in running text, is the one that matters), adds one to every character of
:data:`~semguard.network.lexicon.SPELL_ALPHABET` so that every character has a codeword, and
builds a Huffman code.  The code is *canonical*: codewords are assigned in order of (length,
alphabet row), so the receiver rebuilds the same code from the code lengths alone (46 small
integers, shared with the lexicon).  :func:`encode_chars` / :func:`decode_chars` are the bit
strings; a prefix code decodes left to right without separators.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from semguard.network.lexicon import SPELL_ALPHABET

__all__ = ["canonical_code", "char_code", "decode_chars", "encode_chars", "huffman_lengths", "mean_bits"]


def huffman_lengths(freqs: Mapping[int, float]) -> dict[int, int]:
    """Huffman code length of every symbol of ``freqs`` (symbol -> positive weight).

    Ties are broken by the smallest symbol in a subtree, so the lengths are deterministic.  One
    symbol gets length 1."""
    if not freqs:
        raise ValueError("huffman_lengths: expected at least one symbol, got none")
    bad = [s for s, f in freqs.items() if not f > 0]
    if bad:
        raise ValueError(f"huffman_lengths: weights must be > 0, got {[(s, freqs[s]) for s in bad]}")
    if len(freqs) == 1:
        return {next(iter(freqs)): 1}
    heap = [(float(f), s, [s]) for s, f in freqs.items()]
    heapq.heapify(heap)
    depth = dict.fromkeys(freqs, 0)
    while len(heap) > 1:
        f0, k0, s0 = heapq.heappop(heap)
        f1, k1, s1 = heapq.heappop(heap)
        for s in s0 + s1:
            depth[s] += 1
        heapq.heappush(heap, (f0 + f1, min(k0, k1), s0 + s1))
    return depth


def canonical_code(lengths: Mapping[int, int]) -> dict[int, tuple[int, ...]]:
    """Canonical prefix code (symbol -> bits, MSB first) from code lengths: symbols sorted by
    (length, symbol) get consecutive codewords, the value shifted left when the length grows.
    Refuses lengths that break Kraft's inequality."""
    if not lengths or min(lengths.values()) < 1:
        raise ValueError(f"canonical_code: expected lengths >= 1, got {dict(lengths)}")
    if sum(2.0 ** -n for n in lengths.values()) > 1 + 1e-12:
        raise ValueError("canonical_code: the lengths break Kraft's inequality (no prefix code has them)")
    code, value, prev = {}, 0, None
    for s, n in sorted(lengths.items(), key=lambda kv: (kv[1], kv[0])):
        if prev is not None:
            value = (value + 1) << (n - prev)
        code[s] = tuple((value >> (n - 1 - i)) & 1 for i in range(n))
        prev = n
    return code


def char_code(source: Iterable[str], *, min_letters: int = 4) -> dict[int, tuple[int, ...]]:
    """Canonical Huffman code over the rows of :data:`SPELL_ALPHABET`, weighted by the characters of
    the distinct words of ``source`` (sentences) that are at least ``min_letters`` long or numbers,
    plus one per character."""
    words = {w for s in source for w in s.split() if len(w) >= min_letters or w.isdigit()}
    counts = Counter(ch for w in words for ch in w if ch in SPELL_ALPHABET)
    return canonical_code(huffman_lengths({i: counts[ch] + 1 for i, ch in enumerate(SPELL_ALPHABET)}))


def encode_chars(rows: Sequence[int], code: Mapping[int, tuple[int, ...]]) -> list[int]:
    """The concatenated codewords of alphabet ``rows``."""
    out: list[int] = []
    for r in rows:
        if r not in code:
            raise ValueError(f"encode_chars: row {r} has no codeword")
        out += code[r]
    return out


def decode_chars(bits: Sequence[int], pos: int, count: int, code: Mapping[int, tuple[int, ...]]
                 ) -> tuple[list[int] | None, int]:
    """``count`` rows read from ``bits`` at ``pos`` and the position after them; ``(None, pos')``
    when the bits run out first (``pos'`` then is ``len(bits)``).  Every bit string of a complete
    code decodes; with an incomplete one a prefix outside the code also gives None."""
    inverse = {c: s for s, c in code.items()}
    longest = max(map(len, code.values()))
    rows: list[int] = []
    for _ in range(count):
        cur: tuple[int, ...] = ()
        while cur not in inverse:
            if pos >= len(bits) or len(cur) >= longest:
                return None, len(bits)
            cur += (int(bits[pos]),)
            pos += 1
        rows.append(inverse[cur])
    return rows, pos


def mean_bits(code: Mapping[int, tuple[int, ...]], words: Iterable[str]) -> float:
    """Mean codeword length in bits over the characters of ``words``."""
    rows = [SPELL_ALPHABET.index(ch) for w in words for ch in w]
    if not rows:
        raise ValueError("mean_bits: no characters")
    return sum(len(code[r]) for r in rows) / len(rows)
