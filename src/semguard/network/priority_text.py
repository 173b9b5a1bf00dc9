"""Priority-aware DeepSC: the critical words of a sentence get more power or a repetition.

Critical words are numbers (digits or number words), the words of an optional gazetteer of names
and places, and rare content words, the proxy used here for names and places (the shipped
sentences are lower-cased, so capitals cannot mark them): a word seen at most ``rare`` times in
the reference corpus and at least 4 letters long.  DeepSC
sends ``S`` symbols per token; ``power`` scales the critical tokens' symbols by ``sqrt(a)`` and
the others by ``sqrt(b)`` with the sentence's energy unchanged (``a L_c + b (L - L_c) = L``), and
the receiver divides them back (it knows the map, one bit per token, as side information), so
the critical tokens see ``10 log10(a)`` dB more SNR at the same channel uses; ``repeat`` sends
the critical tokens' symbols ``r`` times (``(r-1) S L_c`` more channel uses) and averages them;
``repeat-energy`` does the same with every symbol scaled by ``sqrt(L / (L + (r-1) L_c))``, so the
sentence spends uniform's energy.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["NUMBER_WORDS", "SCHEMES", "allocate_power", "critical_token_mask", "critical_words"]

NUMBER_WORDS = frozenset(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "million", "billion", "first", "second", "third", "fourth", "fifth", "dozen"])
SCHEMES = ("uniform", "power", "repeat", "repeat-energy")


def critical_words(sentence: str, counts: Counter, *, rare: int = 1,
                   names: frozenset[str] = frozenset()) -> list[bool]:
    """One flag per whitespace word of ``sentence``: a number (digits or a number word), a word of
    ``names`` (a gazetteer of places and names, lower-case), or a rare content word."""
    out = []
    for w in sentence.split():
        out.append(bool(re.fullmatch(r"\d+([.,]\d+)?", w)) or w in NUMBER_WORDS or w in names
                   or (len(w) >= 4 and w.isalpha() and counts[w] <= rare))
    return out


def critical_token_mask(tokenizer, sentences: Sequence[str], counts: Counter, *, rare: int = 1,
                        max_tokens: int = 64, names: frozenset[str] = frozenset()) -> tuple[Tensor, list[list[tuple[int, int, bool]]]]:
    """Token-level critical mask ``[B, T]`` and, per sentence, its words' token spans
    ``(start, stop, critical)`` (a word's pieces are those of the word encoded alone)."""
    ids = tokenizer.encode(list(sentences), max_tokens=max_tokens)
    mask = torch.zeros(ids.shape, dtype=torch.bool)
    spans = []
    for b, s in enumerate(sentences):
        words = s.split()
        flags = critical_words(s, counts, rare=rare, names=names)
        pieces = [int((tokenizer.encode([w], max_tokens=max_tokens) != 0).sum()) for w in words]
        n_real = int((ids[b] != 0).sum())
        if sum(pieces) != n_real:          # the sentence tokenises differently from its words: skip it
            spans.append([])
            continue
        pos, sp = 0, []
        for k, c in zip(pieces, flags):
            sp.append((pos, pos + k, c))
            if c:
                mask[b, pos:pos + k] = True
            pos += k
        spans.append(sp)
    return mask, spans


def allocate_power(critical: Tensor, lengths: Tensor, boost_db: float) -> Tensor:
    """Per-token power factors ``[B, T]``: ``a = 10^(boost/10)`` on critical tokens and ``b`` on the
    rest so that each sentence's total is unchanged; ``b`` is floored at 0.05 (then ``a`` shrinks)."""
    if boost_db < 0:
        raise ValueError(f"boost_db must be >= 0, got {boost_db}")
    T = critical.shape[1]
    real = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
    lc = (critical & real).sum(1, keepdim=True).float()
    L = lengths.unsqueeze(1).float()
    a = torch.full_like(L, 10 ** (boost_db / 10))
    b = ((L - a * lc) / (L - lc).clamp_min(1)).clamp_min(0.05)
    a = torch.where(lc > 0, (L - b * (L - lc)) / lc.clamp_min(1), torch.ones_like(a))
    return torch.where(critical, a, b) * real
