"""Critical words of a sentence in one 5G LDPC + QPSK codeword: bit layout, energy, decoding."""

import math
from collections import Counter

import pytest
import torch

from semguard.network.lexicon import SPELL_ALPHABET
from semguard.network.priority_ldpc import CHAR_BITS, critical_bits, ldpc_uses, parse_critical_bits, send_ldpc
from semguard.network.priority_text import critical_token_mask, critical_words
from semguard.registry import build

from network_sentences import NAMES, SENTENCES, shipped_deepsc



@pytest.fixture(scope="module")
def deepsc():
    return shipped_deepsc()


def _setup(deepsc, lexicon_words):
    counts = Counter({w: 5 for s in SENTENCES for w in s.split()})
    counts["collapsed"] = 1
    _, spans = critical_token_mask(deepsc.tokenizer, SENTENCES, counts, names=NAMES)
    words = [[w for w, f in zip(s.split(), critical_words(s, counts, names=NAMES)) if f] for s in SENTENCES]
    return spans, words, {w: i for i, w in enumerate(lexicon_words)}, deepsc.tokenize(SENTENCES)


def test_bit_layout_hand_checked():
    """'12' (row 5), 'paris' out of the lexicon (escape row 256 - 5 = 251, then p a r i s =
    15 0 17 8 18 in 6 bits each), 'john' (row 9): 8 + 8 + 30 + 8 = 54 bits, MSB first."""
    assert CHAR_BITS == 6 and len(SPELL_ALPHABET) == 46
    lex = {"12": 5, "john": 9}
    bits = critical_bits(["12", "paris", "john"], lex, 8)
    want = "00000101" + "11111011" + "001111" "000000" "010001" "001000" "010010" + "00001001"
    assert "".join(map(str, bits.tolist())) == want
    inv = {i: w for w, i in lex.items()}
    assert parse_critical_bits(bits.tolist(), 3, inv, 8) == ["12", "paris", "john"]
    assert critical_bits(["12", "paris", "john"], lex, 8, spell_oov=False).tolist() == [int(c) for c in want[:8] + want[-8:]]
    bad = [int(c) for c in want]
    bad[7] = 0                                          # row 4: no word, no escape
    assert parse_critical_bits(bad, 3, inv, 8) == [None, "paris", "john"]
    bad = [int(c) for c in want]
    bad[15] = 0                                         # escape row 250: 6 characters, the 6th from 'john's row
    assert parse_critical_bits(bad, 3, inv, 8) == ["12", "parisc", None]      # ... and 'john' runs out of bits
    bad = [int(c) for c in want]
    bad[16:22] = [1, 1, 1, 1, 1, 1]                     # character 63: past the 46-letter alphabet
    assert parse_critical_bits(bad, 3, inv, 8) == ["12", None, "john"]
    assert parse_critical_bits(want[:20], 3, inv, 8) == ["12", None, None]
    with pytest.raises(ValueError, match="does not fit 3 bits"):
        critical_bits(["john"], lex, 3)


def test_ldpc_uses_hand_checked():
    assert ldpc_uses(46, 16) == (46, 46)                # rate 1/2 needs 46 QPSK uses: 30 past the critical tokens'
    assert ldpc_uses(16, 16) == (16, 16)
    assert ldpc_uses(8, 8) == (12, 12)                  # padded to the 5G minimum of 12 information bits
    assert ldpc_uses(15, 40) == (15, 40)                # more uses than needed: a lower rate
    assert ldpc_uses(46, 16, max_rate=2 / 3) == (46, 35)
    for bad in ((0, 8, 0.5), (10, 8, 1.0)):
        with pytest.raises(ValueError) as e:
            ldpc_uses(*bad)
        assert "\n" not in str(e.value)


def test_energy_equals_uniform_exactly_and_high_snr_recovers(deepsc):
    """Sentence 0, 'paris' spelled: K = 46 bits, 2 critical tokens = 16 uses, so the rate-1/2 codeword
    takes 46 uses, 30 of them after the DeepSC block, every symbol at a = 10^0.05 (+0.5 dB);
    a (S T_c + 30) + beta S (L - T_c) = S L.  Every sentence spends uniform's energy S L exactly."""
    spans, words, lex, tokens = _setup(deepsc, ["12", "john", "three", "dover", "collapsed"])
    S = deepsc.S
    uniform = deepsc.encode(tokens, 0.0).abs().square().sum(1).double()
    S_L = (S * deepsc.lengths(tokens)).double()
    assert torch.allclose(uniform, S_L, rtol=1e-6)
    seen = {}

    def spy(tx):
        seen["tx"] = tx.clone()
        return torch.zeros_like(tx)

    out = send_ldpc(deepsc, tokens, spans, words, lex, 8, 30.0, build("channel", "awgn"), boost_db=0.5, jam=spy,
                    generator=torch.Generator().manual_seed(0))
    L = int(deepsc.lengths(tokens)[0])
    tc = sum(s1 - s0 for s0, s1, c in spans[0] if c)
    assert (L, tc) == (9, 2)
    assert out["info_bits"].tolist() == [46, 16, 16] and out["layout"][:2] == [(46, 46), (16, 16)]
    assert out["extra_uses"].tolist() == [30, 0, 0]
    assert out["uses"].tolist() == (S * deepsc.lengths(tokens) + torch.tensor([30, 0, 0])).tolist()
    a = 10 ** 0.05
    beta = (S * L - a * (S * tc + 30)) / (S * (L - tc))
    T = tokens.shape[1]
    tx = seen["tx"]
    assert tx.shape == (3, T * S + 30)
    assert torch.allclose(tx[0, T * S:].abs().square(), torch.full((30,), a), rtol=1e-5)
    crit = torch.zeros(T, dtype=torch.bool)
    for s0, s1, c in spans[0]:
        crit[s0:s1] = c
    p = tx[0, :T * S].abs().square().view(T, S)
    assert torch.allclose(p[crit], torch.full((tc, S), a), rtol=1e-5)          # QPSK: every symbol exactly a
    assert float(p[~crit].sum()) == pytest.approx(beta * S * (L - tc), rel=1e-5)
    assert torch.allclose(out["energy"], uniform, rtol=1e-6)
    for boost in (0.0, 2.0):
        for oov in ("spell", "deepsc"):
            o = send_ldpc(deepsc, tokens, spans, words, lex, 8, 0.0, build("channel", "awgn"), boost_db=boost,
                          oov=oov, generator=torch.Generator().manual_seed(1))
            assert torch.allclose(o["energy"], S_L, rtol=1e-6)
    assert all(all(ok) for ok in out["critical_ok"])                          # 30 dB: every critical word back
    assert torch.equal(out["tokens"], tokens)
    d = send_ldpc(deepsc, tokens, spans, words, lex, 8, 30.0, build("channel", "awgn"), oov="deepsc",
                  generator=torch.Generator().manual_seed(0))
    assert d["info_bits"].tolist() == [8, 16, 16] and d["extra_uses"].tolist() == [4, 0, 0]   # '12' alone: k = 12
    assert all(all(ok) for ok in d["critical_ok"]) and torch.equal(d["tokens"], tokens)
    with pytest.raises(ValueError, match="oov must be") as e:
        send_ldpc(deepsc, tokens, spans, words, lex, 8, 0.0, build("channel", "awgn"), oov="guess")
    assert "\n" not in str(e.value)


def test_joint_decoding_corrects_channel_errors(deepsc):
    """At Es/N0 = 6 dB an uncoded QPSK bit is wrong with probability Q(2) = 2.3 %: 20 draws of the
    three sentences send 20 x 188 = 3760 coded bits (46, 16 and 32 uses: 'dover collapsed' is 4
    tokens), about 86 expected raw errors, and the codewords (rates 1/2, 1/2, 1/4) still give back
    every critical word in every draw."""
    spans, words, lex, tokens = _setup(deepsc, ["12", "john", "three", "dover", "collapsed"])
    q2 = 0.5 * math.erfc(2 / math.sqrt(2))
    coded = 2 * (46 + 16 + 32)
    assert 20 * coded * q2 > 80
    for seed in range(20):
        out = send_ldpc(deepsc, tokens, spans, words, lex, 8, 6.0, build("channel", "awgn"),
                        generator=torch.Generator().manual_seed(seed), two_pass=False)
        assert out["layout"] == [(46, 46), (16, 16), (16, 32)]
        assert all(all(ok) for ok in out["critical_ok"]), seed


def test_text_sweep_ldpc_rows(deepsc):
    """The ldpc schemes sit beside uniform and the codebook in text_sweep's rows: same energy,
    the extra uses counted, every critical word back at 30 dB."""
    from semguard.data.text import load_shipped
    from semguard.network.emergency_text import text_sweep
    from semguard.network.lexicon import build_lexicon
    s = load_shipped()
    ev = s[:12]
    lex, bits = build_lexicon(s[400:], exclude=ev)
    rows = {r["scheme"]: r for r in text_sweep(ev, [30.0], reference=s, schemes=("uniform",), codebook_boosts=(),
                                                lexicon=lex, index_bits=bits, oov_modes=("spell", "deepsc"),
                                                ldpc_boosts=(1.0,), codec=deepsc)}
    assert set(rows) == {"uniform", "ldpc+1dB", "ldpc+1dB/deepsc"}
    for name in ("ldpc+1dB", "ldpc+1dB/deepsc"):
        r = rows[name]
        assert r["energy_ratio"] == pytest.approx(1.0, abs=1e-6)
        assert r["channel_uses"] == rows["uniform"]["channel_uses"] + r["extra_channel_uses"]
    assert rows["ldpc+1dB"]["critical_recall"] == 1.0 and rows["ldpc+1dB"]["oov_words"] > 0
    with pytest.raises(ValueError, match="ldpc_max_rate must be in"):
        text_sweep(ev, [30.0], ldpc_boosts=(1.0,), ldpc_max_rate=1.5, codec=deepsc)


def test_shannon_limit_hand_checked():
    from semguard.network.priority_ldpc import recall_limit, shannon_snr_db
    assert shannon_snr_db(10, 10 * math.log(2)) == pytest.approx(0.0, abs=1e-12)          # Eb/N0 = ln 2
    assert shannon_snr_db(46, 46, uses=46) == pytest.approx(0.0, abs=1e-12)              # 1 bit/use: SNR 1
    assert shannon_snr_db(46, 46, uses=23) == pytest.approx(10 * math.log10(1.5))         # 2 bits/use: 23 x 3 / 46
    assert shannon_snr_db(46, 46, uses=10 ** 6) == pytest.approx(10 * math.log10(math.log(2)), abs=1e-3)
    # three sentences: (K, E, words) = (10, 10 ln2, 2), (20, 10 ln2, 1), (5, 10, 1): limits 0, 3.01, -4.6 dB
    k, e, w = [10, 20, 5], [10 * math.log(2), 10 * math.log(2), 10.0], [2, 1, 1]
    lo = 10 * math.log10(5 * math.log(2) / 10)
    assert recall_limit(k, e, w, 0.25) == pytest.approx(lo)
    assert recall_limit(k, e, w, 0.75) == pytest.approx(0.0, abs=1e-12)
    assert recall_limit(k, e, w, 1.0) == pytest.approx(10 * math.log10(2))
    assert recall_limit([0, 10], [5.0, 5.0], [1, 1], 1.0) is None                        # a sentence with words, no bits
    with pytest.raises(ValueError, match="energy > 0"):
        shannon_snr_db(10, 0.0)
