"""Fidelity metrics, one definition each, on the ground floor (every family may import them).

* :mod:`semguard.metrics.image`: PSNR (peak 1, per image), SSIM / MS-SSIM, top-1 accuracy;
* :mod:`semguard.metrics.text`: sentence BLEU-1..4 and sentence-embedding similarity.
"""

from semguard.metrics.image import MS_SSIM_MIN_SIDE, accuracy, ms_ssim, psnr, ssim
from semguard.metrics.text import TEXT_EXTRA_HINT, SentenceSimilarity, bleu, bleu_table, sentence_bleu

__all__ = ["MS_SSIM_MIN_SIDE", "accuracy", "ms_ssim", "psnr", "ssim",
           "TEXT_EXTRA_HINT", "SentenceSimilarity", "bleu", "bleu_table", "sentence_bleu"]
