"""DeepSC text codec: tokenizer edge cases, encode/decode contract, power, channel uses, weights."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from importlib import resources
from pathlib import Path

import pytest
import torch

from semguard.channels import AWGN, Rayleigh
from semguard.codecs import deepsc as deepsc_mod
from semguard.codecs import zoo
from semguard.codecs._text_tokenizer import PAD_ID, UNK_ID, train_wordpiece
from semguard.codecs.deepsc import DeepSC, masked_power_normalize
from semguard.data.text import ALPHABET, load_shipped, normalize_sentence
from semguard.metrics.text import bleu
from semguard.registry import build

TRAIN = ["the cat sat , on the mat .", "a dog ran in the park", "she reads books every evening",
         "they kept in daily contact", "he went to the market to buy bread", "the park was green"]


@pytest.fixture(scope="module")
def tok():
    return train_wordpiece(TRAIN, vocab_size=120)


@pytest.fixture()
def tiny(tok):
    torch.manual_seed(0)
    return DeepSC(vocab_size=tok.vocab_size, d_model=32, heads=2, layers=1, ff=64, max_tokens=16,
                  tokenizer=tok).eval()


def test_tokenizer_round_trip_and_padding(tok):
    s = ["The CAT sat, on the mat.", "a dog ran"]
    ids = tok.encode(s)
    assert ids.dtype == torch.long and ids.shape[0] == 2
    assert (ids[1, (ids[1] != PAD_ID).sum():] == PAD_ID).all()
    assert tok.decode(ids, (ids != PAD_ID).sum(1)) == [normalize_sentence(x) for x in s]


def test_tokenizer_bad_input(tok, caplog):
    with pytest.raises(ValueError, match="empty"):
        tok.encode(["fine sentence", ""])
    with pytest.raises(ValueError, match="empty after normalisation"):
        tok.encode(["€☃"])  # only unsupported characters
    with pytest.raises(ValueError, match="no sentences"):
        tok.encode([])
    with pytest.raises(TypeError, match="list"):
        tok.encode("the cat")  # type: ignore[arg-type]
    long = " ".join(["cat"] * 40)
    with pytest.raises(ValueError, match="more than 16 tokens"):
        tok.encode([long], max_tokens=16)
    with caplog.at_level(logging.WARNING):
        assert tok.encode([long], max_tokens=16, on_overflow="truncate").shape == (1, 16)
    assert "truncating" in caplog.text
    assert (tok.encode(["zyxq"]) == UNK_ID).any()  # unseen characters -> [UNK], not a crash


def test_masked_power_normalize_hand_numbers():
    x = torch.tensor([[[2 + 0j, 0j], [5j, 7 + 7j]]], dtype=torch.complex64)  # [1, T=2, S=2]
    out = masked_power_normalize(x, torch.tensor([[True, False]]))
    # real slot holds 2 and 0 -> mean power 2 -> scale 1/sqrt(2); padding slot -> 0
    assert torch.allclose(out[0, 0], torch.tensor([2 ** 0.5 + 0j, 0j]))
    assert torch.equal(out[0, 1], torch.zeros(2, dtype=torch.complex64))


def test_encode_contract_power_zeros_and_channel_uses(tiny, tok):
    ids = tok.encode(["the cat sat on the mat", "a dog"])
    x = tiny.encode(ids, 10.0)
    T, S = ids.shape[1], tiny.S
    assert x.dtype == torch.complex64 and x.shape == (2, S * T) == (2, tiny.n_symbols(tuple(ids.shape)))
    L = tiny.lengths(ids)
    assert torch.equal(tiny.channel_uses(ids), S * L)
    for b in range(2):
        real = x[b, :S * L[b]]
        assert real.abs().square().mean().item() == pytest.approx(1.0, rel=1e-5)
        assert torch.equal(x[b, S * L[b]:], torch.zeros_like(x[b, S * L[b]:]))


def test_encoding_does_not_depend_on_padding(tiny, tok):
    short = tok.encode(["a dog"])
    both = tok.encode(["the cat sat on the mat", "a dog"])
    n = tiny.S * short.shape[1]
    assert torch.allclose(tiny.encode(short, 5.0)[0], tiny.encode(both, 5.0)[1, :n], atol=1e-5)


def test_forward_shapes_gradients_and_seed(tok):
    torch.manual_seed(0)
    m = DeepSC(vocab_size=tok.vocab_size, d_model=32, heads=2, layers=1, ff=64, max_tokens=16)
    ids = tok.encode(TRAIN[:3])
    out = m(ids, Rayleigh(), torch.tensor([0.0, 9.0, 18.0]), generator=torch.Generator().manual_seed(3))
    assert set(out) == {"logits", "symbols", "received", "state"}
    assert out["logits"].shape == (*ids.shape, tok.vocab_size) and torch.isfinite(out["logits"]).all()
    torch.nn.functional.cross_entropy(out["logits"][ids != PAD_ID], ids[ids != PAD_ID]).backward()
    assert m.embed.weight.grad.abs().sum() > 0 and m.ch_enc[0].weight.grad.abs().sum() > 0
    m.eval()
    a = m(ids, AWGN(), 5.0, generator=torch.Generator().manual_seed(7))["logits"]
    b = m(ids, AWGN(), 5.0, generator=torch.Generator().manual_seed(7))["logits"]
    assert torch.equal(a, b)


def test_bad_sources_and_symbols(tiny):
    with pytest.raises(ValueError, match="LongTensor"):
        tiny.encode(torch.zeros(2, 3), 5.0)
    with pytest.raises(ValueError, match="token ids must be in"):
        tiny.encode(torch.tensor([[5, 10_000]]), 5.0)
    with pytest.raises(ValueError, match="at least one non-pad"):
        tiny.encode(torch.tensor([[4, 5], [0, 0]]), 5.0)
    with pytest.raises(ValueError, match="max_tokens"):
        tiny.encode(torch.full((1, 17), 4), 5.0)
    with pytest.raises(ValueError, match="complex symbols"):
        tiny.decode(torch.zeros(1, 12, dtype=torch.complex64))
    with pytest.raises(RuntimeError, match="no tokenizer"):
        DeepSC(vocab_size=50, d_model=32, heads=2, layers=1, ff=64).tokenize(["a b"])


def test_registry_builds_deepsc(tok):
    m = build("codec", "deepsc", vocab_size=60, d_model=32, heads=2, layers=1, ff=64)
    assert isinstance(m, DeepSC) and m.config["vocab_size"] == 60


def test_grow_from_keeps_the_first_symbols_of_each_token_and_refuses_other_changes(tiny, tok):
    torch.manual_seed(1)
    small = DeepSC(**{**tiny.config, "symbols_per_token": 3}, tokenizer=tok).eval()
    small.grow_from(tiny)  # 8 -> 3 symbols per token: the transformers are tiny's
    ids = tok.encode(["the cat sat , on the mat .", "a dog ran"])
    B, T = ids.shape
    big = tiny.encode(ids, 10.0).view(B, T, 8)[:, :, :3]
    got = small.encode(ids, 10.0).view(B, T, 3)
    for b, n in enumerate(small.lengths(ids).tolist()):  # the same symbols, up to the per-sentence power scale
        ratio = got[b, :n] / big[b, :n]
        assert torch.allclose(ratio, ratio[0, 0].expand_as(ratio), rtol=1e-4)
        assert torch.allclose(ratio.imag, torch.zeros_like(ratio.imag), atol=1e-4)
    grown = DeepSC(**{**tiny.config, "symbols_per_token": 12}, tokenizer=tok)
    grown.grow_from(tiny)  # the 4 symbols tiny lacks start silent
    assert not grown.ch_enc[2].weight[16:].any() and not grown.ch_dec[0].weight[:, 16:].any()
    for cfg in ({**tiny.config, "symbols_per_token": 3, "d_model": 16, "heads": 2}, tiny.config):
        with pytest.raises(ValueError, match="only change symbols_per_token"):
            DeepSC(**cfg).grow_from(tiny)


def test_save_and_load_round_trip(tiny, tmp_path):
    digests = tiny.save_pretrained(tmp_path)
    assert set(digests) == {deepsc_mod.WEIGHTS_FILE, deepsc_mod.TOKENIZER_FILE}
    back = DeepSC.from_pretrained(tmp_path)
    ids = back.tokenize(["the cat sat"])
    # fp16 storage: the same symbols to about 1e-2
    assert torch.allclose(back.encode(ids, 5.0), tiny.encode(ids, 5.0), atol=2e-2)


SHIPPED = Path(str(resources.files("semguard.codecs").joinpath("weights")))


def test_shipped_weights_checksum_size_and_tamper(monkeypatch):
    w = SHIPPED / deepsc_mod.WEIGHTS_FILE
    assert w.stat().st_size < 10 * 2**20
    entry = zoo.ZOO[deepsc_mod.ZOO_NAME]
    assert entry.file == w.name and hashlib.sha256(w.read_bytes()).hexdigest() == entry.sha256
    monkeypatch.setitem(zoo.ZOO, deepsc_mod.ZOO_NAME, dataclasses.replace(entry, sha256="0" * 64))
    with pytest.raises(zoo.WeightsError, match="sha256"):
        DeepSC.from_pretrained()
    tok = dict(entry.assets)[deepsc_mod.TOKENIZER_FILE]
    monkeypatch.setitem(zoo.ZOO, deepsc_mod.ZOO_NAME,
                        dataclasses.replace(entry, assets=((deepsc_mod.TOKENIZER_FILE, "1" * 64),)))
    with pytest.raises(zoo.WeightsError, match="sha256"):
        deepsc_mod.shipped_tokenizer()
    assert tok != "1" * 64


def test_shipped_tokenizer_covers_every_normalised_character():
    model = DeepSC.from_pretrained(verify=False)
    s = [" ".join(ALPHABET.replace(" ", "")), " ".join("q" + c + "z" for c in ALPHABET.replace(" ", ""))]
    ids = model.tokenize(s, on_overflow="truncate")
    assert not (ids == UNK_ID).any()


def test_shipped_model_on_held_out_sentences():
    torch.set_num_threads(1)
    model = build("codec", "deepsc", pretrained=True)
    refs = load_shipped()[:100]
    g = torch.Generator().manual_seed(0)
    hi, uses = model.transmit(refs, AWGN(), 18.0, generator=g)
    lo, _ = model.transmit(refs, AWGN(), -10.0, generator=g)
    assert torch.equal(uses, 8 * (model.tokenize(refs) != PAD_ID).sum(1))
    b_hi, b_lo = bleu(hi, refs, 1).mean().item(), bleu(lo, refs, 1).mean().item()
    assert b_hi > 0.95, b_hi  # bench/text.py measured 0.999 on 1000 held-out sentences
    assert b_lo < b_hi - 0.3, (b_lo, b_hi)  # noise must hurt: the decoder is not a lookup
