"""Sentence corpora for text semantic communication (DeepSC-style experiments).

Three sources, all returning normalised sentences (see :func:`normalize_sentence`):

* :func:`load_europarl` — Europarl (English side, v7 text files or a folder of ``*.txt``), for
  users who have it; the standard DeepSC preprocessing keeps sentences of 4-30 words
  (Xie, Qin, Li, Juang, "Deep Learning Enabled Semantic Communication Systems", IEEE TSP 2021).
* :func:`load_wordnet_examples` — the ~48k example sentences quoted in the glosses of Princeton
  WordNet 3.0, as shipped by Debian's ``wordnet-base`` (``/usr/share/wordnet/data.*``), offline.
* :func:`load_shipped` — a small held-out set shipped in the package
  (``data/assets/sentences/``), for the default run without any corpus installed.

Splits are by a hash of the normalised sentence (:func:`split_sentences`), so a sentence lands
in the same split whatever the corpus order, and the test split is never seen in training.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from torch.utils.data import Dataset

from semguard.registry import available, build, register

__all__ = [
    "PUNCTUATION", "ALPHABET", "normalize_sentence", "word_count", "filter_by_length", "load_europarl",
    "load_wordnet_examples", "load_wordnet_domains", "load_shipped", "SentenceSplit", "split_sentences", "SentenceDataset",
    "WORDNET_ROOT", "SHIPPED_SETS", "TextCorpus", "TEXT_CORPORA", "text_corpus", "WORDNET_ENV",
    "EUROPARL_ENV",
]

log = logging.getLogger(__name__)

WORDNET_ROOT = Path("/usr/share/wordnet")
WORDNET_ENV = "SEMGUARD_WORDNET"  # overrides WORDNET_ROOT for the registered "wordnet" corpus
EUROPARL_ENV = "SEMGUARD_EUROPARL"  # path of the Europarl English text for the "europarl" corpus
TEXT_CORPORA: list[str] = []  # names registered in the "dataset" family that are sentence corpora
PUNCTUATION = ".,!?;:'()-"  # '"' is dropped: WordNet uses it to delimit examples
SHIPPED_SETS = ("wordnet_test",)
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 " + PUNCTUATION  # every character a normalised sentence may hold
_KEEP = re.compile(r"[^a-z0-9" + re.escape(PUNCTUATION) + r"\s]")
_PUNCT = re.compile("([" + re.escape(PUNCTUATION) + "])")
_WORD = re.compile(r"[a-z0-9]+")
_QUOTED = re.compile(r'"([^"]+)"')


def normalize_sentence(text: str) -> str:
    """Canonical form used by corpora, tokenizer and metrics.

    Unicode is folded to ASCII (accents dropped: ``café`` -> ``cafe``), lower-cased; characters
    other than ``a-z``, ``0-9`` and ``PUNCTUATION`` are replaced by a space (documented
    truncation of unknown characters); each punctuation mark becomes its own space-separated
    token; whitespace is collapsed.  May return ``""`` (e.g. for ``"€€"``).
    """
    if not isinstance(text, str):
        raise TypeError(f"sentence must be str, got {type(text).__name__}")
    s = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    s = _PUNCT.sub(r" \1 ", _KEEP.sub(" ", s))
    return " ".join(s.split())


def word_count(sentence: str) -> int:
    """Words (runs of letters/digits; punctuation does not count) in a normalised sentence."""
    return len(_WORD.findall(sentence))


def filter_by_length(sentences: Iterable[str], min_words: int = 4, max_words: int = 30) -> list[str]:
    """Normalise, keep sentences of ``min_words..max_words`` words, drop duplicates (order kept)."""
    if min_words < 1 or max_words < min_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    seen: dict[str, None] = {}
    for raw in sentences:
        s = normalize_sentence(raw)
        if min_words <= word_count(s) <= max_words:
            seen.setdefault(s, None)
    return list(seen)


def load_europarl(path: str | Path, *, min_words: int = 4, max_words: int = 30) -> list[str]:
    """Europarl English sentences with the DeepSC preprocessing (4-30 words, normalised).

    ``path``: a text file with one sentence per line (e.g. ``europarl-v7.fr-en.en``) or a folder
    whose ``*.txt`` files (Europarl's ``txt/en/``) are read; lines of XML-like markup
    (``<CHAPTER ...>``, ``<SPEAKER ...>``) are skipped.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        if not files:
            raise FileNotFoundError(f"Europarl folder {path} holds no *.txt files")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"Europarl corpus not found at {path}: pass the English text file "
                                "(europarl-v7.*.en) or the txt/en folder")
    lines: list[str] = []
    for f in files:
        lines += [ln for ln in f.read_text(encoding="utf-8", errors="replace").splitlines()
                  if ln.strip() and not ln.lstrip().startswith("<")]
    out = filter_by_length(lines, min_words, max_words)
    log.info("Europarl: %d sentences of %d-%d words from %d file(s)", len(out), min_words, max_words,
             len(files))
    return out


def wordnet_data_files(root: str | Path = WORDNET_ROOT) -> list[Path]:
    """WordNet's ``data.{noun,verb,adj,adv}`` under ``root``.

    Raises FileNotFoundError naming the missing files and the Debian package."""
    root = Path(root)
    files = [root / f"data.{pos}" for pos in ("noun", "verb", "adj", "adv")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"WordNet data files not found: {', '.join(missing)}; install Debian's "
                                "wordnet-base (apt-get install wordnet-base), set SEMGUARD_WORDNET=DIR or pass root=")
    return files


def _wordnet_quotes(root: str | Path) -> list[tuple[int, str]]:
    """``(lexicographer file number, quoted example)`` for every example quoted in a gloss, in file order."""
    quoted: list[tuple[int, str]] = []
    for f in wordnet_data_files(root):
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or "|" not in line:  # licence header lines start with spaces
                continue
            head = line.split(maxsplit=2)
            lex = int(head[1]) if len(head) > 1 and head[1].isdigit() else -1
            quoted += [(lex, q) for q in _QUOTED.findall(line.split("|", 1)[1])]
    return quoted


def load_wordnet_examples(root: str | Path = WORDNET_ROOT, *, min_words: int = 4,
                          max_words: int = 30) -> list[str]:
    """WordNet gloss example sentences (quoted text after ``|`` in ``data.{noun,verb,adj,adv}``).

    Raises FileNotFoundError naming the Debian package when the files are missing.
    """
    quoted = [q for _, q in _wordnet_quotes(root)]
    out = filter_by_length(quoted, min_words, max_words)
    log.info("WordNet: %d of %d example sentences have %d-%d words", len(out), len(quoted),
             min_words, max_words)
    return out


def load_wordnet_domains(root: str | Path = WORDNET_ROOT, *, min_words: int = 4,
                         max_words: int = 30) -> tuple[list[str], list[int]]:
    """The sentences of :func:`load_wordnet_examples` (same list, same order) and, for each, the
    lexicographer file of the first synset that quotes it (``lex_filenum``, 0-44: ``adj.all``,
    ``noun.animal``, ``verb.motion``...), its semantic domain; -1 where a line has no such field."""
    first: dict[str, int] = {}
    for lex, q in _wordnet_quotes(root):
        s = normalize_sentence(q)
        if min_words <= word_count(s) <= max_words:
            first.setdefault(s, lex)
    return list(first), list(first.values())


def load_shipped(name: str = "wordnet_test") -> list[str]:
    """A sentence set shipped with semguard (one normalised sentence per line).

    ``wordnet_test``: 1000 sentences from the held-out test split of :func:`load_wordnet_examples`
    (never used in training the shipped DeepSC weights).
    """
    if name not in SHIPPED_SETS:
        raise ValueError(f"unknown shipped sentence set {name!r}; available: {', '.join(SHIPPED_SETS)}")
    ref = resources.files("semguard.data").joinpath("assets", "sentences", f"{name}.txt")
    return [ln for ln in ref.read_text(encoding="utf-8").splitlines() if ln.strip()]


@dataclass(frozen=True)
class SentenceSplit:
    """Disjoint train / validation / test sentence lists."""

    train: list[str]
    val: list[str]
    test: list[str]


def _unit_hash(s: str) -> float:
    return int(hashlib.sha1(s.encode("utf-8")).hexdigest()[:12], 16) / float(16 ** 12)


def split_sentences(sentences: Sequence[str], *, test_fraction: float = 0.1,
                    val_fraction: float = 0.02) -> SentenceSplit:
    """Split by the SHA-1 of each sentence: test if ``u < test_fraction``, then validation.

    Deterministic and independent of corpus order; duplicates always land in the same split.
    Validation comes out of the training part (the 90/10 train/test split of the paper holds).
    """
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1 - test_fraction:
        raise ValueError(f"bad split fractions test={test_fraction} val={val_fraction}")
    train, val, test = [], [], []
    for s in sentences:
        u = _unit_hash(s)
        (test if u < test_fraction else val if u < test_fraction + val_fraction else train).append(s)
    return SentenceSplit(train=train, val=val, test=test)


class SentenceDataset(Dataset):
    """A list of normalised sentences as a torch ``Dataset`` (items are ``str``)."""

    def __init__(self, sentences: Sequence[str]) -> None:
        if len(sentences) == 0:
            raise ValueError("SentenceDataset needs at least one sentence")
        self.sentences = list(sentences)

    def __len__(self) -> int:
        return len(self.sentences)

    def __getitem__(self, i: int) -> str:
        return self.sentences[i]


# -- registered corpora ("dataset" family) ---------------------------------------------------


@dataclass(frozen=True)
class TextCorpus:
    """A named sentence corpus, already split by :func:`split_sentences` (train / val / test)."""

    name: str
    split: SentenceSplit


def _corpus(name: str):  # noqa: ANN202 - decorator
    """Register a :class:`TextCorpus` factory as dataset ``name`` and list it in ``TEXT_CORPORA``."""
    def deco(factory):  # noqa: ANN001, ANN202
        TEXT_CORPORA.append(name)
        return register("dataset", name)(factory)
    return deco


@_corpus("wordnet")
def wordnet(root: str | Path | None = None) -> TextCorpus:
    """WordNet 3.0 gloss examples (4-30 words), hash split 88/2/10 — the shipped DeepSC's data.

    ``root``: folder with ``data.{noun,verb,adj,adv}``; default ``$SEMGUARD_WORDNET`` or
    ``/usr/share/wordnet`` (Debian ``wordnet-base``).  FileNotFoundError names the package if missing.
    """
    root = root if root is not None else os.environ.get(WORDNET_ENV) or WORDNET_ROOT
    return TextCorpus("wordnet", split_sentences(load_wordnet_examples(root)))


@_corpus("europarl")
def europarl(path: str | Path | None = None) -> TextCorpus:
    """Europarl English (4-30 words, DeepSC preprocessing), hash split 88/2/10.

    ``path``: the English text file or ``txt/en`` folder (see :func:`load_europarl`); default
    ``$SEMGUARD_EUROPARL``.  Europarl is not shipped or downloaded: FileNotFoundError if unset.
    """
    path = path if path is not None else os.environ.get(EUROPARL_ENV)
    if not path:
        raise FileNotFoundError(f"Europarl is not bundled: set {EUROPARL_ENV}=/path/to/europarl-v7.xx-en.en "
                                "(or the txt/en folder), or pass path=")
    return TextCorpus("europarl", split_sentences(load_europarl(path)))


def text_corpus(name_or_path: str | Path) -> TextCorpus:
    """A registered text corpus by name, or a text file / folder of ``*.txt`` (one sentence a line).

    A path is read like Europarl (:func:`load_europarl`: markup lines skipped, 4-30 words) and
    split by :func:`split_sentences`.  ValueError for a dataset that is not a text corpus or a
    name that is neither registered nor an existing path.
    """
    name = str(name_or_path)
    if name in available("dataset"):
        corpus = build("dataset", name)
        if not isinstance(corpus, TextCorpus):
            raise ValueError(f"dataset {name!r} is not a text corpus; text corpora: {', '.join(sorted(TEXT_CORPORA))} "
                             "(or a text file with one sentence per line)")
        return corpus
    p = Path(name).expanduser()
    if p.exists():
        return TextCorpus(str(p), split_sentences(load_europarl(p)))
    raise ValueError(f"unknown text corpus {name!r}: not a registered corpus "
                     f"({', '.join(sorted(TEXT_CORPORA))}) nor an existing file or folder")
