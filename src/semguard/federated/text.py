"""The text federation: a small DeepSC trained across clients on WordNet example sentences.

Clients hold sentences of the WordNet corpus's training split (:func:`semguard.data.text.wordnet`,
the hash split the shipped DeepSC was trained on), split non-IID by semantic domain: the
lexicographer file of the synset that quotes the sentence (``noun.animal``, ``verb.motion``...,
45 files; :func:`semguard.data.text.load_wordnet_domains`), with per-domain Dirichlet proportions
as the task federation splits by class.  The server's FLTrust root set comes from the validation
split; the global model is scored on sentences of the test split, which no client holds, by
BLEU-1 and token accuracy through the channel.

Every client and the server tokenise with the shipped WordPiece tokenizer (sha256-checked against
the zoo), so token ids mean the same on every client.  The codec is the registry's ``deepsc``
narrowed (``d_model = width``, ``layers`` per side, 4 heads, ``ff = 4 width``) and without dropout:
dropout would draw from torch's global generator, and a client's randomness must come from
``(seed, round, client id)`` only, for the engines to agree bit for bit.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

from semguard.channels.base import Channel
from semguard.codecs._text_tokenizer import TextTokenizer
from semguard.codecs.base import SemanticCodec
from semguard.data.text import (
    WORDNET_ENV,
    WORDNET_ROOT,
    SentenceSplit,
    load_wordnet_domains,
    split_sentences,
)
from semguard.metrics.text import bleu
from semguard.training.tasks import token_hits

__all__ = ["HEADS", "SYMBOLS_PER_TOKEN", "SentenceData", "deepsc_kwargs", "sentence_data", "text_metrics",
           "tokenizer_sha256"]

HEADS = 4
SYMBOLS_PER_TOKEN = 8  # complex channel uses per token, as the shipped DeepSC
MAX_TOKENS = 64


def deepsc_kwargs(width: int, layers: int) -> dict[str, int | float]:
    """The narrowed DeepSC's architecture arguments (besides the vocabulary and tokenizer)."""
    return {"d_model": width, "heads": HEADS, "layers": layers, "ff": 4 * width,
            "symbols_per_token": SYMBOLS_PER_TOKEN, "max_tokens": MAX_TOKENS, "dropout": 0.0}


def tokenizer_sha256(tok: TextTokenizer) -> str:
    """sha256 of the tokenizer's JSON: what a stored federated DeepSC's config names its ids by."""
    return hashlib.sha256(tok.to_str().encode()).hexdigest()


@dataclass(frozen=True)
class SentenceData:
    """Client pool ``train`` token ids ``[N, T]`` with each sentence's domain ``domain`` ``[N]``; the
    server's ``root`` ids; the held-out ``test`` ids and their sentences ``test_sentences``."""

    train: Tensor
    domain: Tensor
    root: Tensor
    test: Tensor
    test_sentences: list[str]


def _fits(tok: TextTokenizer, sentences: list[str]) -> list[str]:
    ids = tok.encode(sentences, max_tokens=10**6)
    return [s for s, row in zip(sentences, ids) if int((row != 0).sum()) <= MAX_TOKENS]


@lru_cache(maxsize=2)
def _corpus(root: Path) -> tuple[SentenceSplit, dict[str, int]]:
    """The hash split of the WordNet sentences and each one's domain (read once per process)."""
    sentences, domains = load_wordnet_domains(root)
    return split_sentences(sentences), dict(zip(sentences, domains))


def sentence_data(seed: int, tok: TextTokenizer, *, train_size: int, root_size: int, test_size: int) -> SentenceData:
    """``train_size`` training sentences, ``root_size`` validation and ``test_size`` test sentences of
    the WordNet hash split, drawn from ``seed`` (sentences over 64 tokens are left out)."""
    split, dom = _corpus(Path(os.environ.get(WORDNET_ENV) or WORDNET_ROOT))
    g = torch.Generator().manual_seed(seed * 7919 + 29)

    def draw(pool: list[str], n: int, what: str) -> list[str]:
        if n > len(pool):
            raise ValueError(f"{what}: {n} sentences asked, the WordNet split holds {len(pool)}")
        return [pool[i] for i in torch.randperm(len(pool), generator=g)[:n].tolist()]

    train = _fits(tok, draw(split.train, train_size, "--train-sentences"))
    root = _fits(tok, draw(split.val, root_size, "--root-size"))
    test = _fits(tok, draw(split.test, test_size, "--test-size"))
    enc = {"max_tokens": MAX_TOKENS}
    return SentenceData(tok.encode(train, **enc), torch.tensor([dom[s] for s in train]), tok.encode(root, **enc),
                        tok.encode(test, **enc), test)


@torch.no_grad()
def text_metrics(codec: SemanticCodec, ids: Tensor, sentences: list[str], channel: Channel, snr_db: float,
                 generator: torch.Generator) -> dict[str, float]:
    """Mean sentence BLEU-1 of the greedy received sentences against ``sentences``, and token accuracy,
    of ``codec`` on ``ids`` through ``channel`` at ``snr_db``."""
    codec.eval()
    logits = codec(ids, channel, snr_db, generator=generator)["logits"]
    received = codec.tokenizer.decode(logits.argmax(-1), codec.lengths(ids))
    hits, total = token_hits(logits, ids)
    return {"bleu1": float(bleu(received, sentences, 1).mean()), "token_accuracy": hits / total}
