"""The final global codec published as a signed knowledge-base version, screened for poisoning."""

from __future__ import annotations

import json

import pytest
import torch

from semguard.federated.client import LocalConfig
from semguard.federated.engine import FLConfig, Federation, evaluate, run_inprocess
from semguard.federated.model import get_vector
from semguard.federated.publish import federated_factory, fit_delta_screen, publish_global
from semguard.knowledge.codec_io import load_codec
from semguard.knowledge.keys import generate_key
from semguard.knowledge.records import PoisoningRejected
from semguard.knowledge.store import KnowledgeBase

torch.set_num_threads(1)


def test_publish_screen_and_reload(tmp_path):
    cfg = FLConfig(clients=4, rounds=4, width=8, n_symbols=8, local=LocalConfig(steps=2, batch=16), test_size=200,
                   root_size=50, strategy="reputation")
    fed = Federation(cfg)
    rec = run_inprocess(cfg, fed=fed, keep_vectors=True)
    key = generate_key()
    kb = KnowledgeBase.init(tmp_path / "kb.db", key)
    screen = fit_delta_screen(fed.codec, rec["vectors"][:-1])
    v1 = publish_global(kb, key, fed.codec, rec["vectors"][-2], rec)
    v2 = publish_global(kb, key, fed.codec, rec["vectors"][-1], rec, screen=screen)  # a benign round: accepted
    assert v2.version == v1.version + 1
    training = json.loads(kb.get("fl-task/training", v2.version))
    assert training["strategy"] == "reputation" and training["rounds"] == 4 and len(training["reputation"]) == 4
    codec = load_codec(kb, "fl-task", federated_factory)
    assert torch.equal(get_vector(codec), rec["final_vector"])
    assert evaluate(fed, get_vector(codec))["accuracy"] == rec["final"]["accuracy"]
    # a model-replacement step (the last change scaled 20x) is quarantined by the screen
    poisoned = rec["vectors"][-1] + 20 * (rec["vectors"][-1] - rec["vectors"][-2])
    with pytest.raises(PoisoningRejected):
        publish_global(kb, key, fed.codec, poisoned, rec, screen=screen)
    assert kb.version == v2.version


def _kb_and_key(tmp_path):
    from semguard.knowledge.keys import save_private_key

    key = generate_key()
    pem = tmp_path / "owner.pem"
    save_private_key(key, pem)
    KnowledgeBase.init(tmp_path / "kb.db", key).close()
    return tmp_path / "kb.db", pem, key


FL_TINY = ["fl", "--clients", "4", "--rounds", "3", "--local-steps", "2", "--width", "8", "--n-symbols", "8",
           "--strategy", "reputation"]


def test_fl_cli_publish_writes_a_signed_version_that_verifies(tmp_path, capsys):
    from semguard.cli.main import main

    db, pem, _ = _kb_and_key(tmp_path)
    rc = main([*FL_TINY, "--publish", str(db), "--key", str(pem), "--out", str(tmp_path / "fl.json")])
    assert rc == 0, capsys.readouterr().err
    assert "published fl-task as version 1" in capsys.readouterr().out
    kb = KnowledgeBase(db, readonly=True)
    kb.verify()  # signatures and Merkle roots of every version
    training = json.loads(kb.get("fl-task/training"))
    rec = json.loads((tmp_path / "fl.json").read_text())
    assert training["strategy"] == "reputation" and training["rounds"] == 3 and training["clients"] == 4
    assert training["final_sha256"] == rec["final_sha256"] and len(training["reputation"]) == 4
    codec = load_codec(kb, "fl-task", federated_factory)
    import hashlib

    assert hashlib.sha256(get_vector(codec).numpy().tobytes()).hexdigest() == rec["final_sha256"]


def test_publish_run_refuses_a_poisoned_last_round(tmp_path):
    from semguard.federated.publish import publish_run

    db, _, key = _kb_and_key(tmp_path)
    cfg = FLConfig(clients=4, rounds=4, width=8, n_symbols=8, local=LocalConfig(steps=2, batch=16), test_size=200,
                   root_size=50, strategy="reputation")
    fed = Federation(cfg)
    rec = run_inprocess(cfg, fed=fed, keep_vectors=True)
    vecs = rec["vectors"]

    def accuracy(codec):
        return 100.0 * evaluate(fed, get_vector(codec))["accuracy"]

    poisoned = [*vecs[:-1], vecs[-1] + 20 * (vecs[-1] - vecs[-2])]  # model replacement in the last round
    with pytest.raises(PoisoningRejected, match="last round against the run's earlier rounds"):
        publish_run(db, key, fed.codec, poisoned, rec, accuracy)
    assert KnowledgeBase(db, readonly=True).version == 0
    v = publish_run(db, key, fed.codec, vecs, rec, accuracy)  # the benign run is accepted
    assert v.version == 1
    # a later model that is worse on the held-out set than the published one is refused
    worse = [*vecs[:2], vecs[0], vecs[0] + 1e-4 * (vecs[1] - vecs[0])]
    with pytest.raises(PoisoningRejected, match="against the published version 1: canary accuracy dropped"):
        publish_run(db, key, fed.codec, worse, rec, accuracy, max_drop=2.0, z_max=1e9)


@pytest.mark.parametrize("extra, message", [
    (["--key", "k.pem"], "--key is only used with --publish"),
    (["--publish", "kb.db"], "--publish needs the publisher's key"),
    (["--publish", "kb.db", "--key", "k.pem", "--rounds", "2"], "--publish needs --rounds >= 3"),
    (["--publish", "missing.db", "--key", "owner.pem"], "--publish missing.db: no such file"),
    (["--publish", "text.db", "--key", "owner.pem"], "--publish text.db"),
])
def test_fl_cli_publish_bad_flags(tmp_path, monkeypatch, capsys, extra, message):
    from semguard.cli.main import main

    _kb_and_key(tmp_path)
    (tmp_path / "text.db").write_text("not a database")
    monkeypatch.chdir(tmp_path)
    assert main([*FL_TINY, *extra, "--out", str(tmp_path / "fl.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "fl.json").exists()  # refused before any training


def test_a_stored_deepsc_is_rebuilt_only_on_the_tokenizer_it_names():
    from semguard.codecs.deepsc import shipped_tokenizer
    from semguard.federated.model import federated_codec
    from semguard.federated.text import deepsc_kwargs, tokenizer_sha256

    tok = shipped_tokenizer()
    codec = federated_codec("deepsc", vocab_size=tok.vocab_size, tokenizer=tok, **deepsc_kwargs(8, 1))
    codec.config["tokenizer_sha256"] = tokenizer_sha256(tok)
    again = federated_factory(**json.loads(json.dumps(codec.config)))  # as the knowledge base stores it
    assert again.config == codec.config and again.tokenizer.to_str() == tok.to_str()
    assert [p.shape for p in again.parameters()] == [p.shape for p in codec.parameters()]
    with pytest.raises(ValueError, match="tokenizer_sha256 0+ is not the shipped tokenizer's"):
        federated_factory(**{**codec.config, "tokenizer_sha256": "0" * 64})


@pytest.mark.slow
def test_fl_cli_publishes_a_federated_deepsc_behind_the_bleu_gate(tmp_path, capsys):
    from semguard.cli.main import main

    db, pem, _ = _kb_and_key(tmp_path)
    out = tmp_path / "fl.json"
    rc = main(["fl", "--codec", "deepsc", "--clients", "2", "--rounds", "3", "--local-steps", "3", "--width", "8",
               "--lr", "3e-3", "--train-sentences", "60", "--publish", str(db), "--key", str(pem), "--publish-name",
               "fl-text", "--max-drop", "100", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert "published fl-text as version 1" in capsys.readouterr().out
    kb = KnowledgeBase(db, readonly=True)
    kb.verify()
    training = json.loads(kb.get("fl-text/training"))
    rec = json.loads(out.read_text())
    assert training["codec"] == "deepsc" and training["metrics_by_round"]["bleu1"] == [r["bleu1"] for r in rec["rounds"]]
    codec = load_codec(kb, "fl-text", federated_factory)
    fed = Federation(FLConfig(codec="deepsc", clients=2, rounds=3, width=8, train_sentences=60))
    assert evaluate(fed, get_vector(codec))["bleu1"] == pytest.approx(rec["final"]["bleu1"])
