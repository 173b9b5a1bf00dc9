"""Digital text baseline: Huffman code properties, MCS choice, LDPC link limits (clean / hopeless)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from semguard.baselines.text_link import (
    HuffmanCode, TextDigitalLink, bits_to_utf8, choose_mcs, utf8_bits,
)
from semguard.channels import AWGN, Rayleigh
from semguard.data.text import ALPHABET

TRAIN = ["the cat sat on the mat", "a dog ran in the park", "she reads books every evening",
         "they kept in daily contact", "he went to the market to buy bread"]


@pytest.fixture(scope="module")
def code():
    return HuffmanCode.fit(TRAIN)


def test_huffman_is_complete_prefix_free_and_near_entropy(code):
    lengths = {c: len(w) for c, w in code.codes.items()}
    assert set(code.codes) == set(ALPHABET)
    assert sum(2.0 ** -n for n in lengths.values()) == pytest.approx(1.0)  # Kraft equality
    words = sorted(code.codes.values())
    assert not any(b.startswith(a) for a, b in zip(words, words[1:]))  # prefix-free
    counts = Counter({c: 1 for c in ALPHABET}) + Counter("".join(TRAIN))
    total = sum(counts.values())
    entropy = -sum(n / total * math.log2(n / total) for n in counts.values())
    mean_len = sum(n / total * lengths[c] for c, n in counts.items())
    assert entropy <= mean_len < entropy + 1  # Huffman optimality bound


def test_huffman_and_utf8_round_trip(code):
    s = "they kept in daily contact , 42 times !"
    assert code.decode(code.encode(s)) == s
    assert code.decode(code.encode(s)[:-1]) is None or code.decode(code.encode(s)[:-1]) != s
    assert bits_to_utf8(utf8_bits(s)) == s and utf8_bits(s).size == 8 * len(s)
    with pytest.raises(ValueError, match="normalise"):
        code.encode("Café")


def test_choose_mcs_hand_numbers():
    # 100 uses: QPSK fits up to 134 bits, 16QAM 268, 64QAM 450, 256QAM 744; beyond: lost (0)
    k = torch.tensor([100, 134, 135, 268, 300, 450, 700, 745])
    assert choose_mcs(k, torch.full_like(k, 100)).tolist() == [2, 2, 4, 4, 6, 6, 8, 0]


SENTS = ["the cat sat on the mat today", "a dog ran in the park again"]


def test_link_clean_at_high_snr_and_lost_at_low_snr(code):
    link = TextDigitalLink(huffman=code)
    uses = torch.tensor([64, 64])
    g = torch.Generator().manual_seed(0)
    hi = link.transmit(SENTS, AWGN(), 30.0, uses, generator=g)
    assert hi.sentences == SENTS and hi.ok.all()
    assert (hi.rate <= 0.93).all() and (hi.bits_per_symbol > 0).all()
    lo = link.transmit(SENTS, AWGN(), -10.0, uses, generator=g)
    assert lo.sentences == ["", ""] and not lo.ok.any()


def test_link_with_too_few_channel_uses_loses_the_sentence(code):
    r = TextDigitalLink(huffman=code).transmit(SENTS[:1], AWGN(), 30.0, torch.tensor([8]))
    assert r.sentences == [""] and r.bits_per_symbol.tolist() == [0] and math.isnan(r.rate.item())


def test_link_low_rate_uses_repetition_and_fading(code):
    # 400 uses for ~130 bits: below rate 1/5 at QPSK, so the codeword is repeated
    r = TextDigitalLink(huffman=code).transmit(SENTS, Rayleigh(), 25.0, torch.tensor([400, 400]),
                                               generator=torch.Generator().manual_seed(1))
    assert r.bits_per_symbol.tolist() == [2, 2] and (r.rate < 0.2).all()
    assert r.sentences == SENTS


def test_link_utf8_and_bad_arguments(code):
    link = TextDigitalLink(source_coding="utf8")
    assert link.transmit(SENTS, AWGN(), 30.0, torch.tensor([96, 96])).sentences == SENTS
    with pytest.raises(ValueError, match="channel_uses"):
        link.transmit(SENTS, AWGN(), 30.0, torch.tensor([96]))
    with pytest.raises(ValueError, match="HuffmanCode"):
        TextDigitalLink()
    with pytest.raises(ValueError, match="source_coding"):
        TextDigitalLink(huffman=code, source_coding="ascii")
    assert np.array_equal(link.source_bits("A"), utf8_bits("a"))
