"""The robustness cells of ``semguard run``: fidelity under one attack at one budget, for an image
codec (PSNR, SSIM, MS-SSIM per photo) and for DeepSC (BLEU-1 and sentence similarity per sentence).

Batch ``i`` of the clean pass and of the attacked pass draw Bob's channel from the same seed
(``seed + i``), as :func:`semguard.attacks.evaluate.robust_fidelity` does, so "under attack"
and "clean" differ by the attack alone.  The attack knows the link it is given: a defended link
(e.g. the blanking receiver) is attacked through its defence.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from semguard.attacks.base import Attack
from semguard.evaluation.image_eval import fidelity_per_image
from semguard.link import Link
from semguard.metrics.text import SentenceSimilarity, bleu

__all__ = ["image_under_attack", "text_under_attack"]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def image_under_attack(link: Link, images: Tensor, attack: Attack, snr_db: float, *, seed: int,
                       batch: int = 4) -> dict[str, Tensor]:
    """Per photo: ``{psnr, ssim, ms_ssim}`` under ``attack`` and ``clean_{...}`` on the same channel
    draws, plus ``measured_psr_db`` (the budget the attack spent, as measured at the receiver)."""
    parts: dict[str, list[Tensor]] = {}
    for i, s in enumerate(range(0, images.shape[0], batch)):
        x = images[s:s + batch]
        with torch.no_grad():
            clean = link(x, snr_db, generator=_gen(seed + i))["output"]
        res = attack(link, x, snr_db, generator=_gen(seed + i))
        for prefix, out in (("clean_", clean), ("", res.output)):
            for k, v in fidelity_per_image(out, x).items():
                parts.setdefault(prefix + k, []).append(v)
        parts.setdefault("measured_psr_db", []).append(res.measured.detach().float().reshape(-1).cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


def text_under_attack(model: Any, sentences: list[str], channel: torch.nn.Module, attack: Attack, snr_db: float,
                      *, seed: int, similarity: SentenceSimilarity | None, batch: int = 64) -> dict[str, Tensor]:
    """Per sentence: DeepSC's ``bleu1`` (and ``similarity`` when the model is installed) under
    ``attack`` (token cross-entropy objective, i.e. the differentiable surrogate of BLEU) and
    ``clean_{...}`` on the same channel draws."""
    link = Link(model, channel)
    decoded: dict[str, list[str]] = {"clean_": [], "": []}
    for i, s in enumerate(range(0, len(sentences), batch)):
        tokens = model.tokenize(sentences[s:s + batch])
        lengths = model.lengths(tokens)
        with torch.no_grad():
            clean = link(tokens, snr_db, generator=_gen(seed + i))["output"]
        hit = attack(link, tokens, snr_db, generator=_gen(seed + i)).output
        decoded["clean_"] += model.tokenizer.decode(clean.argmax(-1), lengths)
        decoded[""] += model.tokenizer.decode(hit.argmax(-1), lengths)
    out: dict[str, Tensor] = {}
    for prefix, hyps in decoded.items():
        out[prefix + "bleu1"] = bleu(hyps, sentences, 1).float()
        if similarity is not None:
            out[prefix + "similarity"] = similarity(hyps, sentences).float()
    return out
