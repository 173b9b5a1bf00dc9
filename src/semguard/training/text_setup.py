"""What training DeepSC needs besides the loop: its tokenizer (kept with the run) and its task.

The tokenizer of a run is saved in the run folder, so resuming keeps the ids the weights were
trained on; the shipped one is sha256-checked against the zoo (:func:`semguard.codecs.deepsc.shipped_tokenizer`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from semguard.codecs._text_tokenizer import TextTokenizer, train_wordpiece
from semguard.codecs.base import SemanticCodec
from semguard.codecs.deepsc import TOKENIZER_FILE, shipped_tokenizer
from semguard.data.text import TextCorpus, text_corpus
from semguard.registry import build
from semguard.training.tasks import TextTask

__all__ = ["TOKENIZER_CHOICES", "TextSetup", "run_tokenizer", "text_setup"]

log = logging.getLogger(__name__)

# besides a path to a tokenizer .json
TOKENIZER_CHOICES = ("shipped", "train")


def _wanted(choice: str) -> TextTokenizer:
    return shipped_tokenizer() if choice == "shipped" else TextTokenizer.from_file(choice)


def run_tokenizer(run_dir: str | Path, corpus: TextCorpus, *, choice: str | None = None, vocab: int = 8000,
                  resume: bool = True) -> tuple[TextTokenizer, str]:
    """The run's tokenizer and where it came from (``"resumed"``, ``"shipped"``, ``"trained"``, a path).

    Resuming (``resume`` and ``run_dir/deepsc-tokenizer.json`` exists) reuses the saved one, and a
    ``choice`` other than None / ``"train"`` must then be that same tokenizer (ValueError otherwise).
    Else ``choice``: ``"shipped"``, ``"train"`` (a ``vocab``-id WordPiece fitted on the corpus's
    training split) or a tokenizer .json path; None means shipped for ``wordnet``, train otherwise.
    The result is saved in ``run_dir``.
    """
    saved = Path(run_dir) / TOKENIZER_FILE
    pick = choice or ("shipped" if corpus.name == "wordnet" else "train")
    if saved.is_file() and resume:
        tok = TextTokenizer.from_file(saved)
        if choice not in (None, "train") and _wanted(pick).to_str() != tok.to_str():
            raise ValueError(f"--tokenizer {pick} differs from {saved} of the run being resumed; "
                             "use a new --out or --no-resume")
        return tok, "resumed"
    if pick == "train":
        log.info("training a %d-id WordPiece tokenizer on %d training sentences", vocab, len(corpus.split.train))
        tok, source = train_wordpiece(corpus.split.train, vocab), "trained"
    else:
        tok, source = _wanted(pick), pick
    saved.parent.mkdir(parents=True, exist_ok=True)
    tok.save(saved)
    return tok, source


@dataclass(frozen=True)
class TextSetup:
    codec: SemanticCodec
    task: TextTask
    tokenizer: TextTokenizer
    corpus: TextCorpus
    tokenizer_source: str  # see run_tokenizer


def text_setup(data: str | Path, run_dir: str | Path, *, codec: str = "deepsc", tokenizer: str | None = None,
               vocab: int = 8000, resume: bool = True, width: int | None = None,
               symbols_per_token: int | None = None) -> TextSetup:
    """DeepSC (``codec``), its :class:`TextTask` on the train / validation parts of ``data``'s hash
    split (the test part is never seen) and the run's tokenizer (:func:`run_tokenizer`); ``width`` and
    ``symbols_per_token`` override the codec's ``d_model`` and ``symbols_per_token`` when given."""
    corpus = text_corpus(data)
    if not corpus.split.train or not corpus.split.val:
        raise ValueError(f"{corpus.name}: {len(corpus.split.train)} training / {len(corpus.split.val)} validation "
                         "sentences after the hash split; the corpus is too small to train on")
    tok, source = run_tokenizer(run_dir, corpus, choice=tokenizer, vocab=vocab, resume=resume)
    kw = {k: v for k, v in (("d_model", width), ("symbols_per_token", symbols_per_token)) if v is not None}
    model = build("codec", codec, vocab_size=tok.vocab_size, tokenizer=tok, **kw)
    enc = {"max_tokens": model.max_tokens, "on_overflow": "truncate"}
    task = TextTask(tok.encode(corpus.split.train, **enc), tok.encode(corpus.split.val, **enc))
    return TextSetup(model, task, tok, corpus, source)
