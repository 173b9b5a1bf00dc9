"""Text fidelity over a channel: DeepSC and the digital link at equal channel uses."""

from __future__ import annotations

import logging

import torch

from semguard.baselines.text_link import TextDigitalLink
from semguard.codecs.deepsc import DeepSC
from semguard.link import Link
from semguard.metrics.text import SentenceSimilarity, bleu_table

__all__ = ["similarity_or_none", "eval_text"]

log = logging.getLogger(__name__)


def similarity_or_none() -> SentenceSimilarity | None:
    """The MiniLM similarity model, or None (with a warning) when the ``[text]`` extra is absent."""
    try:
        return SentenceSimilarity()
    except (ImportError, FileNotFoundError) as e:
        log.warning("sentence similarity skipped: %s", e)
        return None


@torch.no_grad()
def eval_text(model: DeepSC, link: TextDigitalLink, refs: list[str], channel: torch.nn.Module, snr_db: float, *,
              similarity: SentenceSimilarity | None, seed: int = 0, batch: int = 250) -> dict[str, dict[str, float]]:
    """BLEU-1..4, similarity and channel uses per sentence for ``deepsc`` and ``digital``.

    Both systems get exactly DeepSC's channel uses for each sentence (8 per WordPiece token).
    """
    g = torch.Generator().manual_seed(seed)
    hyps: list[str] = []
    uses = []
    deepsc = Link(model, channel)
    for i in range(0, len(refs), batch):
        tokens = model.tokenize(refs[i:i + batch])
        lengths = model.lengths(tokens)
        hyps += model.tokenizer.decode(deepsc(tokens, snr_db, generator=g)["output"].argmax(-1), lengths)
        uses.append(model.channel_uses(tokens))
    n_uses = torch.cat(uses)
    digital = link.transmit(refs, channel, snr_db, n_uses, generator=g)
    out = {}
    for system, sentences in (("deepsc", hyps), ("digital", digital.sentences)):
        m = {**bleu_table(sentences, refs), "channel_uses_per_sentence": float(n_uses.float().mean())}
        if similarity is not None:
            m["similarity"] = float(similarity(sentences, refs).mean())
        out[system] = m
    out["digital"]["delivered"] = float(digital.ok.float().mean())
    return out
