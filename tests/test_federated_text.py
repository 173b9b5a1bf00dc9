"""The text federation: a small DeepSC on WordNet sentences through the same clients, engine and Flower apps."""

from __future__ import annotations

import pytest
import torch

from semguard.data.text import WORDNET_ROOT
from semguard.federated.client import LocalConfig
from semguard.federated.engine import Federation, FLConfig, evaluate, run_inprocess

torch.set_num_threads(1)
TINY = dict(codec="deepsc", clients=2, rounds=2, width=16, train_sentences=200, test_size=40, root_size=10,
            local=LocalConfig(steps=15, batch=16, lr=3e-3))
needs_wordnet = pytest.mark.skipif(not (WORDNET_ROOT / "data.noun").is_file(), reason="Debian wordnet-base missing")


def _skew(fed):
    """Mean total-variation distance between a client's domain mix and the pool's."""
    n = int(fed.labels.max()) + 1
    pool = torch.bincount(fed.labels, minlength=n).double()
    pool = pool / pool.sum()
    tv = [0.5 * (torch.bincount(fed.labels[p], minlength=n) / len(p) - pool).abs().sum() for p in fed.parts]
    return float(torch.stack(tv).mean())


@needs_wordnet
@pytest.mark.slow
def test_clients_hold_domain_skewed_training_sentences_in_the_shipped_tokenizer():
    from semguard.codecs.deepsc import shipped_tokenizer

    cfg = dict(TINY, clients=4, train_sentences=400)
    fed = Federation(FLConfig(**cfg, alpha=0.1))
    assert fed.tokenizer.to_str() == shipped_tokenizer().to_str() and fed.codec.tokenizer is fed.tokenizer
    assert sum(len(p) for p in fed.parts) == fed.images.shape[0] <= 400
    x, y = fed.client_data(0)
    assert x.dtype == torch.long and torch.equal(x, y)  # a sentence is its own target
    train = set(fed.tokenizer.decode(fed.images, (fed.images != 0).sum(1)))
    assert not train & set(fed.test_sentences)  # held-out sentences come from the test split
    assert _skew(fed) > 0.4 > _skew(Federation(FLConfig(**cfg, alpha=100.0)))  # non-IID by domain


@needs_wordnet
@pytest.mark.slow
def test_two_rounds_raise_bleu_over_the_initial_model():
    fed = Federation(FLConfig(**TINY, strategy="median"))
    start = evaluate(fed, fed.initial)
    rec = run_inprocess(fed.cfg, fed=fed)
    assert set(rec["final"]) == {"bleu1", "token_accuracy"}
    end = rec["final"]
    assert end["bleu1"] > start["bleu1"] + 0.05 and end["token_accuracy"] > start["token_accuracy"] + 0.02, (start, end)
    assert rec["rounds"][1]["bleu1"] > rec["rounds"][0]["bleu1"]
    assert evaluate(fed, rec["final_vector"])["bleu1"] == pytest.approx(end["bleu1"])


@needs_wordnet
@pytest.mark.slow
def test_flower_apps_give_the_in_process_model_under_sign_flip():
    pytest.importorskip("flwr")
    from semguard.federated.flower_app import run_flower_local

    cfg = FLConfig(**{**TINY, "clients": 3, "rounds": 1, "local": LocalConfig(steps=2, batch=8)}, malicious=1,
                   attack="sign_flip", strategy="trimmed_mean")
    a, b = run_inprocess(cfg), run_flower_local(cfg)
    assert torch.equal(a["final_vector"], b["final_vector"]) and a["final"] == b["final"]


@pytest.mark.parametrize("kw,field", [(dict(width=30), "--width"), (dict(layers=0), "--layers"),
                                      (dict(train_sentences=3), "--train-sentences"),
                                      (dict(dp_epsilon=-1.0), "--dp-epsilon"),
                                      (dict(malicious=1, attack="label_flip"), "--attack"),
                                      (dict(malicious=1, attack="backdoor"), "--attack")])
def test_bad_text_configs_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        FLConfig(**{**TINY, **kw})


@needs_wordnet
def test_more_test_sentences_than_the_split_holds_is_refused():
    with pytest.raises(ValueError, match="--test-size: 100000 sentences asked, the WordNet split holds"):
        Federation(FLConfig(**{**TINY, "test_size": 100_000}))
