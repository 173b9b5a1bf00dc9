"""Huffman-coded spelled characters: the code, the bit layout in the LDPC string, round trips."""

import math
from collections import Counter

import pytest
import torch

from semguard.network.huffman import (
    canonical_code,
    char_code,
    decode_chars,
    encode_chars,
    huffman_lengths,
    mean_bits,
)
from semguard.network.lexicon import SPELL_ALPHABET, spell
from semguard.network.priority_ldpc import critical_bits, parse_critical_bits, send_ldpc
from semguard.network.priority_text import critical_token_mask, critical_words
from semguard.registry import build


def _bits(s: str) -> tuple[int, ...]:
    return tuple(int(c) for c in s)


def test_huffman_lengths_and_canonical_code_hand_checked():
    """Weights 5, 2, 1, 1: merge 1+1 (symbols 2, 3), then 2 with that pair (the tie goes to the
    subtree with the smaller symbol, 1), then 4 with 5: lengths 1, 2, 3, 3; canonical codewords
    0, 10, 110, 111."""
    lengths = huffman_lengths({0: 5, 1: 2, 2: 1, 3: 1})
    assert lengths == {0: 1, 1: 2, 2: 3, 3: 3}
    assert canonical_code(lengths) == {0: _bits("0"), 1: _bits("10"), 2: _bits("110"), 3: _bits("111")}
    assert huffman_lengths({7: 3.0}) == {7: 1}
    # canonical order is (length, symbol), whatever the dict order: 1 -> 0, then 0 and 2 at length 2
    assert canonical_code({2: 2, 0: 2, 1: 1}) == {1: _bits("0"), 0: _bits("10"), 2: _bits("11")}
    for bad in ({}, {0: 0.0}):
        with pytest.raises(ValueError) as e:
            huffman_lengths(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="Kraft"):
        canonical_code({0: 1, 1: 1, 2: 1})


def test_huffman_is_optimal_within_one_bit_of_the_entropy():
    """Source coding theorem: H <= mean length < H + 1 for a Huffman code, and its lengths meet
    Kraft with equality (a full binary tree)."""
    w = {i: f for i, f in enumerate([40, 20, 15, 10, 8, 4, 2, 1])}
    n = huffman_lengths(w)
    total = sum(w.values())
    H = -sum(f / total * math.log2(f / total) for f in w.values())
    mean = sum(w[s] * n[s] for s in w) / total
    assert H <= mean < H + 1
    assert sum(2.0 ** -k for k in n.values()) == pytest.approx(1.0)


def _hand_code():
    """'a' 1 bit, 'b' 2 bits, the 44 other rows 8 bits: a = 0, b = 10, row r >= 2 = 192 + r - 2."""
    return canonical_code({i: 1 if i == 0 else 2 if i == 1 else 8 for i in range(len(SPELL_ALPHABET))})


def test_hand_code_codewords():
    code = _hand_code()
    assert code[0] == _bits("0") and code[1] == _bits("10")
    assert code[2] == _bits("11000000")                                  # 'c' = 192
    assert code[SPELL_ALPHABET.index("p")] == _bits("11001101")          # row 15 -> 205
    assert encode_chars(spell("abc"), code) == [0, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0]
    assert decode_chars(encode_chars(spell("cab"), code), 0, 3, code) == (spell("cab"), 11)
    # the code is incomplete (Kraft sum 0.92): 1111 1111 starts no codeword
    assert decode_chars([1] * 8, 0, 1, code) == (None, 8)
    assert decode_chars([0, 1], 0, 2, code) == (None, 2)                 # runs out of bits
    with pytest.raises(ValueError, match="no codeword"):
        encode_chars([99], code)


def test_bit_layout_with_huffman_characters_hand_checked():
    """'12' (row 5), 'abc' out of the lexicon (escape row 256 - 3 = 253, then a b c as 0, 10,
    11000000): 8 + 8 + 11 = 27 bits, against 8 + 8 + 18 with 6-bit characters."""
    code = _hand_code()
    lex = {"12": 5, "john": 9}
    inv = {i: w for w, i in lex.items()}
    want = "00000101" + "11111101" + "0" + "10" + "11000000"
    bits = critical_bits(["12", "abc"], lex, 8, char_code=code)
    assert "".join(map(str, bits.tolist())) == want
    assert len(critical_bits(["12", "abc"], lex, 8)) == 8 + 8 + 18
    assert parse_critical_bits(bits.tolist(), 2, inv, 8, char_code=code) == ["12", "abc"]
    ext = critical_bits(["abc", "john", "pab"], lex, 8, char_code=code).tolist()   # words after a spelled one
    assert parse_critical_bits(ext, 3, inv, 8, char_code=code) == ["abc", "john", "pab"]
    bad = [int(c) for c in want]
    bad[16] = 1                                     # 'a' -> '1...': '10' = b, then the rest shifts
    assert parse_critical_bits(bad, 2, inv, 8, char_code=code)[1] != "abc"
    assert parse_critical_bits([int(c) for c in want[:20]], 2, inv, 8, char_code=code) == ["12", None]


@pytest.mark.slow
def test_training_split_code_round_trips_and_saves_bits():
    """The code built on the WordNet training split: complete (Kraft = 1), every alphabet row has
    a codeword, 'e' gets the shortest, and every critical word of the first 400 shipped sentences
    round-trips through critical_bits / parse_critical_bits at fewer than 6 bits a character."""
    from semguard.data.text import load_shipped, load_wordnet_examples, split_sentences
    from semguard.network.lexicon import build_lexicon
    train = split_sentences(load_wordnet_examples()).train
    s = load_shipped()
    code = char_code(train)
    assert set(code) == set(range(len(SPELL_ALPHABET)))
    assert sum(2.0 ** -len(c) for c in code.values()) == pytest.approx(1.0)
    assert len(code[SPELL_ALPHABET.index("e")]) == min(map(len, code.values()))
    lex, bits = build_lexicon(train, exclude=s)
    inv = {i: w for w, i in lex.items()}
    counts = Counter(" ".join(s).split())
    crit = [[w for w, f in zip(x.split(), critical_words(x, counts)) if f] for x in s[:400]]
    oov = [w for ws in crit for w in ws if w not in lex]
    assert len(oov) > 100 and mean_bits(code, oov) < 4.5
    for ws in crit:
        assert parse_critical_bits(critical_bits(ws, lex, bits, char_code=code).tolist(), len(ws), inv, bits,
                                   char_code=code) == ws


def test_send_ldpc_with_huffman_energy_and_recovery():
    """'paris' spelled with a code built on a tiny corpus: the codeword holds 8 + 8 + (Huffman
    bits of 'paris') + 8 bits, every sentence spends uniform's energy S L, and at 30 dB every
    critical word comes back."""
    torch.set_num_threads(1)
    m = build("codec", "deepsc", pretrained=True).eval()
    sentences = ["send 12 ambulances to paris now", "john is trapped on floor three"]
    names = frozenset({"paris", "john"})
    counts = Counter({w: 5 for x in sentences for w in x.split()})
    _, spans = critical_token_mask(m.tokenizer, sentences, counts, names=names)
    words = [[w for w, f in zip(x.split(), critical_words(x, counts, names=names)) if f] for x in sentences]
    assert words == [["12", "paris"], ["john", "three"]]
    lex = {"12": 0, "john": 1, "three": 2}
    code = char_code(["the quick brown fox jumps over the lazy dog", "paris rome"])
    tokens = m.tokenize(sentences)
    out = send_ldpc(m, tokens, spans, words, lex, 8, 30.0, build("channel", "awgn"), boost_db=1.0,
                    generator=torch.Generator().manual_seed(0), char_code=code)
    assert out["info_bits"].tolist() == [16 + len(encode_chars(spell("paris"), code)), 16]
    assert torch.allclose(out["energy"], (m.S * m.lengths(tokens)).double(), rtol=1e-6)
    assert all(all(ok) for ok in out["critical_ok"]) and torch.equal(out["tokens"], tokens)


def test_pool_energy_hand_checked_and_conserved():
    """Frame of 3: energies 4, 2, 6 (total 12) for 10, 30, 20 bits -> 2, 6, 4 (0.2 per bit).
    Frames of 2: (4, 2) for (10, 30) -> 1.5, 4.5; 6 alone stays 6.  A message without bits keeps
    its energy and takes no share."""
    from semguard.network.priority_ldpc import pool_energy
    e, k = torch.tensor([4.0, 2.0, 6.0]), torch.tensor([10, 30, 20])
    assert pool_energy(e, k, 3).tolist() == pytest.approx([2.0, 6.0, 4.0])
    assert pool_energy(e, k, 2).tolist() == pytest.approx([1.5, 4.5, 6.0])
    assert pool_energy(e, k, 1).tolist() == pytest.approx([4.0, 2.0, 6.0])
    assert pool_energy(torch.tensor([4.0, 1.0, 6.0]), torch.tensor([10, 0, 30]), 3).tolist() == pytest.approx(
        [2.5, 1.0, 7.5])
    g = torch.Generator().manual_seed(0)
    e, k = torch.rand(101, generator=g, dtype=torch.float64) * 50, torch.randint(0, 400, (101,), generator=g)
    for frame in (4, 16, 101):
        p = pool_energy(e, k, frame)
        for f0 in range(0, 101, frame):
            assert float(p[f0:f0 + frame].sum()) == pytest.approx(float(e[f0:f0 + frame].sum()), rel=1e-12)
    for bad in ((e, k, 0), (e, k[:3], 2), (-e, k, 2)):
        with pytest.raises(ValueError) as err:
            pool_energy(*bad)
        assert "\n" not in str(err.value)


def test_send_ldpc_pooled_frame_spends_the_frame_energy_exactly():
    """Pooled over the frame of 3 sentences, the frame spends exactly uniform's energy (sum of
    S L) while each sentence's share moves towards its critical bits; at 30 dB all come back."""
    torch.set_num_threads(1)
    m = build("codec", "deepsc", pretrained=True).eval()
    sentences = ["send 12 ambulances to paris now", "john is trapped on floor three", "the bridge at dover collapsed"]
    names = frozenset({"paris", "john", "dover"})
    counts = Counter({w: 5 for x in sentences for w in x.split()})
    _, spans = critical_token_mask(m.tokenizer, sentences, counts, names=names)
    words = [[w for w, f in zip(x.split(), critical_words(x, counts, names=names)) if f] for x in sentences]
    lex = {"12": 0, "john": 1, "three": 2, "dover": 3}
    tokens = m.tokenize(sentences)
    S_L = (m.S * m.lengths(tokens)).double()
    kw = dict(boost_db=3.0, generator=torch.Generator().manual_seed(0), max_rate=0.25)
    one = send_ldpc(m, tokens, spans, words, lex, 8, 30.0, build("channel", "awgn"), **kw)
    kw["generator"] = torch.Generator().manual_seed(0)
    pooled = send_ldpc(m, tokens, spans, words, lex, 8, 30.0, build("channel", "awgn"), pool=3, **kw)
    assert torch.allclose(one["energy"], S_L, rtol=1e-6)
    assert float(pooled["energy"].sum()) == pytest.approx(float(S_L.sum()), rel=1e-6)
    assert not torch.allclose(pooled["energy"], S_L, rtol=1e-3)           # energy moved between sentences
    assert pooled["uses"].tolist() == one["uses"].tolist()
    assert all(all(ok) for ok in pooled["critical_ok"])
