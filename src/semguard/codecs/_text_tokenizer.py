"""WordPiece tokenisation for the text codec (Hugging Face ``tokenizers``).

Sentences are first put in :func:`semguard.data.text.normalize_sentence` form (lower-case ASCII,
punctuation split off), so ``decode(encode(s)) == normalize_sentence(s)`` whenever every piece
is in the vocabulary.  Ids are right-padded with ``PAD_ID = 0``; ``UNK_ID = 1``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from semguard.data.text import normalize_sentence

__all__ = ["PAD_ID", "UNK_ID", "SPECIAL_TOKENS", "TextTokenizer", "train_wordpiece"]

log = logging.getLogger(__name__)

PAD_ID, UNK_ID = 0, 1
SPECIAL_TOKENS = ["[PAD]", "[UNK]"]


def _require_tokenizers():  # noqa: ANN202 - returns the module
    try:
        import tokenizers
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the text codec needs the Hugging Face tokenizers library: "
                          "pip install 'semguard[text]' (or pip install tokenizers)") from e
    return tokenizers


def train_wordpiece(sentences: Sequence[str], vocab_size: int = 8000) -> TextTokenizer:
    """Train a WordPiece vocabulary of ``vocab_size`` on ``sentences`` (use the TRAINING split only)."""
    tk = _require_tokenizers()
    if not sentences:
        raise ValueError("cannot train a tokenizer on no sentences")
    tok = tk.Tokenizer(tk.models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.pre_tokenizer = tk.pre_tokenizers.WhitespaceSplit()
    tok.decoder = tk.decoders.WordPiece(prefix="##", cleanup=False)
    trainer = tk.trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                           show_progress=False)
    tok.train_from_iterator([normalize_sentence(s) for s in sentences], trainer=trainer)
    return TextTokenizer(tok)


class TextTokenizer:
    """Sentences <-> right-padded id tensors.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` whose ids 0 and 1 are ``[PAD]`` and ``[UNK]``.
    """

    def __init__(self, tokenizer: object) -> None:
        self._tok = tokenizer
        if tokenizer.token_to_id("[PAD]") != PAD_ID or tokenizer.token_to_id("[UNK]") != UNK_ID:
            raise ValueError("tokenizer must map [PAD] -> 0 and [UNK] -> 1")

    @classmethod
    def from_file(cls, path: str | Path) -> TextTokenizer:
        tk = _require_tokenizers()
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer file not found: {path}")
        try:
            tok = tk.Tokenizer.from_file(str(path))
        except Exception as e:  # the Rust side raises a bare Exception for unreadable JSON
            raise ValueError(f"{path}: not a tokenizers JSON file ({' '.join(str(e).split())[:200]})") from None
        try:
            return cls(tok)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    @classmethod
    def from_str(cls, text: str) -> TextTokenizer:
        return cls(_require_tokenizers().Tokenizer.from_str(text))

    def save(self, path: str | Path) -> None:
        self._tok.save(str(path))

    def to_str(self) -> str:
        return self._tok.to_str()

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def vocab(self) -> dict[str, int]:
        """Word piece -> id (continuation pieces start with ``##``)."""
        return dict(self._tok.get_vocab())

    def encode(self, sentences: Sequence[str], *, max_tokens: int = 64,
               on_overflow: str = "error") -> Tensor:
        """Sentences -> ids ``[B, T]`` (int64, right-padded with 0, ``T`` = longest sentence).

        Raises ValueError for an empty list, a sentence that is empty after normalisation, or
        (``on_overflow="error"``) one longer than ``max_tokens`` pieces; ``"truncate"`` keeps the
        first ``max_tokens`` pieces and logs a warning.  Characters outside the supported set
        are dropped by :func:`normalize_sentence`; pieces outside the vocabulary become ``[UNK]``.
        """
        if isinstance(sentences, str):
            raise TypeError("encode takes a list of sentences, not one str")
        if len(sentences) == 0:
            raise ValueError("no sentences to encode")
        if on_overflow not in ("error", "truncate"):
            raise ValueError(f"on_overflow must be 'error' or 'truncate', got {on_overflow!r}")
        norm = [normalize_sentence(s) for s in sentences]
        empty = [i for i, s in enumerate(norm) if not s]
        if empty:
            raise ValueError(f"sentence(s) at index {empty[:5]} are empty after normalisation "
                             f"(first: {sentences[empty[0]]!r}); nothing to transmit")
        ids = [e.ids for e in self._tok.encode_batch(norm)]
        long = [i for i, x in enumerate(ids) if len(x) > max_tokens]
        if long:
            if on_overflow == "error":
                raise ValueError(f"sentence(s) at index {long[:5]} have more than {max_tokens} tokens "
                                 f"(first has {len(ids[long[0]])}); split them or pass on_overflow='truncate'")
            log.warning("truncating %d sentence(s) to %d tokens", len(long), max_tokens)
            ids = [x[:max_tokens] for x in ids]
        out = torch.full((len(ids), max(len(x) for x in ids)), PAD_ID, dtype=torch.long)
        for i, x in enumerate(ids):
            out[i, :len(x)] = torch.tensor(x, dtype=torch.long)
        return out

    def decode(self, ids: Tensor, lengths: Tensor | None = None) -> list[str]:
        """Ids ``[B, T]`` -> normalised sentences; positions at or after ``lengths[b]`` are ignored."""
        if ids.dim() != 2:
            raise ValueError(f"ids must be [batch, tokens], got {tuple(ids.shape)}")
        rows = ids.tolist()
        lens = lengths.tolist() if lengths is not None else [len(r) for r in rows]
        seqs = [[t for t in r[:n] if t != PAD_ID] for r, n in zip(rows, lens)]
        return [" ".join(self._tok.decode(s, skip_special_tokens=False).split()) for s in seqs]
