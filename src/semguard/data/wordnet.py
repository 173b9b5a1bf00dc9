"""WordNet synonyms, offline, from Debian's ``wordnet-base`` (``/usr/share/wordnet/data.*``).

Each data line of ``data.{noun,verb,adj,adv}`` is one synset: ``offset lex_filenum ss_type w_cnt``
(two hex digits) then ``w_cnt`` pairs ``word lex_id``.  Two single words are synonyms when they share
a synset (multi-word lemmas, written with ``_``, are dropped; adjective markers such as ``(a)`` are
stripped).
"""

from __future__ import annotations

import re
from pathlib import Path

from semguard.data.text import WORDNET_ROOT, wordnet_data_files

__all__ = ["parse_synset_words", "wordnet_synonyms"]

_MARKER = re.compile(r"\([a-z]+\)$")


def parse_synset_words(line: str) -> list[str]:
    """The single-word lemmas of one ``data.*`` line (lower case), in the file's order."""
    f = line.split()
    if line.startswith(" ") or len(f) < 6 or not f[0].isdigit() or not all(c in "0123456789abcdef" for c in f[3]):
        return []  # the licence header (indented) or not a synset line
    count = int(f[3], 16)
    words = [_MARKER.sub("", f[4 + 2 * i]).lower() for i in range(count)]
    return [w for w in words if w.isalpha()]


def wordnet_synonyms(root: str | Path = WORDNET_ROOT) -> dict[str, frozenset[str]]:
    """``word -> its synonyms`` (the other single-word lemmas of every synset it is in).

    Raises FileNotFoundError naming the Debian package when the files are missing."""
    syn: dict[str, set[str]] = {}
    for p in wordnet_data_files(root):
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  "):  # licence header
                continue
            words = parse_synset_words(line)
            for w in words:
                syn.setdefault(w, set()).update(v for v in words if v != w)
    return {w: frozenset(s) for w, s in syn.items() if s}
