"""The shared lexicon of the emergency text link, built without the evaluated sentences, and the
spelling of a critical word that is not in it.

A lexicon is ``word -> row`` of a ``2^b``-row header codebook
(:func:`~semguard.network.priority_codebook.qpsk_codebook`).  Its top ``max_spell`` rows are
escapes: row ``2^b - c`` says "a word of ``c`` characters follows, spelled", and the ``c``
characters follow as codewords of a small alphabet codebook (``len(SPELL_ALPHABET)`` rows,
``spell_uses`` channel uses each), the way a voice operator spells a name it cannot assume the
other side knows.

:func:`build_lexicon` takes the words from a source corpus (the training split of the WordNet
examples, say), numbers and a gazetteer, never from the sentences that are evaluated: it refuses
a source that shares a sentence with ``exclude``, and it never reads ``exclude`` otherwise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from semguard.data.text import ALPHABET
from semguard.network.priority_text import NUMBER_WORDS

__all__ = ["MAX_SPELL", "SPELL_ALPHABET", "build_lexicon", "escape_length", "escape_row", "lexicon_words",
           "spell"]

#: the characters a spelled word may hold: every character of a normalised sentence but the space
SPELL_ALPHABET = ALPHABET.replace(" ", "")
#: longest spelled word (escape rows reserved at the top of the header codebook)
MAX_SPELL = 32


def escape_row(length: int, index_bits: int, *, max_spell: int = MAX_SPELL) -> int:
    """Header row announcing a spelled word of ``length`` characters: ``2^b - length``."""
    if not 1 <= length <= max_spell:
        raise ValueError(f"a spelled word must have 1..{max_spell} characters, got {length}")
    if max_spell >= 2 ** index_bits:
        raise ValueError(f"{index_bits} index bits leave no row for words beside {max_spell} escapes")
    return 2 ** index_bits - length


def escape_length(row: int, index_bits: int, *, max_spell: int = MAX_SPELL) -> int | None:
    """The spelled length a header row announces, or None for a word row."""
    c = 2 ** index_bits - row
    return c if 1 <= c <= max_spell else None


def spell(word: str) -> list[int]:
    """Rows of the alphabet codebook for ``word``'s characters."""
    bad = sorted(set(word) - set(SPELL_ALPHABET))
    if not word or bad:
        raise ValueError(f"cannot spell {word!r}: characters {bad} are outside the spelling alphabet")
    return [SPELL_ALPHABET.index(ch) for ch in word]


def lexicon_words(source: Iterable[str], *, names: Iterable[str] = (), numbers: int = 1000,
                  min_letters: int = 4) -> list[str]:
    """Candidate lexicon words in priority order: the digits ``0..numbers-1`` and number words,
    then ``names`` (sorted), then the content words of ``source`` (alphabetic, at least
    ``min_letters`` letters: the words :func:`~semguard.network.priority_text.critical_words`
    can flag as rare) by descending count, ties alphabetical.  No duplicates."""
    head = [str(i) for i in range(numbers)] + sorted(NUMBER_WORDS) + sorted(set(names))
    counts = Counter(w for s in source for w in s.split() if len(w) >= min_letters and w.isalpha())
    seen = dict.fromkeys(head)
    for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        seen.setdefault(w)
    return list(seen)


def build_lexicon(source: Sequence[str], *, exclude: Sequence[str], index_bits: int | None = None,
                  names: Iterable[str] = (), numbers: int = 1000, max_spell: int = MAX_SPELL) -> tuple[dict[str, int], int]:
    """Lexicon ``word -> row`` and its index bits from ``source`` (see :func:`lexicon_words`).

    ``exclude``: the sentences that will be evaluated; a source sharing one of them is refused,
    and nothing else is read from them, so the lexicon is a function of ``source``, ``names`` and
    ``numbers`` only.  ``index_bits`` (default: the fewest that hold every candidate beside the
    ``max_spell`` escape rows) truncates the candidates in priority order."""
    src = list(source)
    ex = set(exclude)
    shared = sum(s in ex for s in src)
    if shared:
        raise ValueError(f"the lexicon source shares {shared} sentences with the evaluated ones")
    words = lexicon_words(src, names=names, numbers=numbers)
    bits = index_bits or max(1, (len(words) + max_spell - 1).bit_length())
    room = 2 ** bits - max_spell
    if room < 1:
        raise ValueError(f"{bits} index bits leave no row for words beside {max_spell} escapes")
    return {w: i for i, w in enumerate(words[:room])}, bits
