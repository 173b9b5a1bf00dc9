"""Handshake, sync with proofs, codec priors via the KB, desync detection and cost."""

import pytest
import torch

from semguard.codecs.deepjscc import DeepJSCC, adjscc
from semguard.knowledge import (
    HistoryError, KnowledgeBase, PoisoningRejected, generate_key, handshake, load_codec, save_codec, sync,
)
from semguard.evaluation.studies.desync import canary_images, desync_cost
from semguard.knowledge.poison import make_gate


def _kb(tmp_path, name="kb.db"):
    key = generate_key()
    return KnowledgeBase.init(tmp_path / name, key), key


def test_handshake_states(tmp_path):
    kb, key = _kb(tmp_path)
    kb.publish(key, {"a": b"1"})
    h1 = kb.hello()
    kb.publish(key, {"a": b"2"})
    h2 = kb.hello()
    other, _ = _kb(tmp_path, "other.db")
    assert handshake(h1, h1).state == "in_sync" and handshake(h1, h1).ok
    assert handshake(h1, h2).state == "behind" and handshake(h2, h1).state == "ahead"
    assert handshake(h1, other.hello()).state == "foreign"
    forged = h2.__class__(h2.kb_id, 2, h1.root, h2.log_root)
    assert handshake(h2, forged).state == "diverged"


def test_codec_priors_and_sync(tmp_path):
    torch.manual_seed(0)
    kb, key = _kb(tmp_path)
    codec = adjscc(cbr=1 / 12, width=16)
    save_codec(kb, key, "adjscc", codec)
    with torch.no_grad():
        codec.dec_out.bias.add_(0.1)
    save_codec(kb, key, "adjscc", codec)
    reader = KnowledgeBase.init_replica(tmp_path / "reader.db", kb.genesis())
    assert sync(reader, kb).state == "behind" and sync(reader, kb).state == "in_sync"
    c1 = load_codec(reader, "adjscc", DeepJSCC, version=1)
    c2 = load_codec(reader, "adjscc", DeepJSCC, root=kb.record(2).root)
    assert c1.priors.version == 1 and c2.priors.version == 2
    assert torch.equal(c2.dec_out.bias, codec.dec_out.bias)
    assert not torch.equal(c1.dec_out.bias, c2.dec_out.bias)
    assert handshake(c1.priors.hello(reader), c2.priors.hello(reader)).state == "behind"
    # every encoder/decoder pair: handshake flags exactly the mismatched ones
    rep = desync_cost(reader, "adjscc", DeepJSCC, [1, 2], canary_images(n=4))
    assert rep.detected == rep.mismatched == 2 and rep.false_alarms == 0
    assert rep.psnr[(1, 1)] != rep.psnr[(1, 2)]


def test_reader_gate_quarantines_poisoned_version(tmp_path):
    kb, key = _kb(tmp_path)
    kb.publish(key, {"vocab": b'{"cat": "animal", "car": "vehicle"}'})
    kb.publish(key, {"vocab": b'{"cat": "animal", "car": "vehicle", "bus": "vehicle"}'})
    kb.publish(key, {"vocab": b'{"cat": "vehicle", "car": "animal", "bus": "vehicle"}'})  # swap
    reader = KnowledgeBase.init_replica(tmp_path / "reader.db", kb.genesis())
    with pytest.raises(PoisoningRejected, match="version 3 quarantined.*remaps existing keys"):
        sync(reader, kb, gate=make_gate(vocabularies=("vocab",)))
    assert reader.version == 2 and len(reader.quarantined()) == 1
    with pytest.raises(HistoryError):
        sync(reader, KnowledgeBase.init(tmp_path / "foreign.db", key))


@pytest.mark.slow
def test_desync_cost_trained_codec(tmp_path):
    from semguard.evaluation.studies.desync import build_trained_versions
    torch.set_num_threads(1)
    kb, key = _kb(tmp_path)
    vs = build_trained_versions(kb, key, adjscc, name="c", steps=300, cbr=1 / 12, width=16)
    rep = desync_cost(kb, "c", DeepJSCC, vs[1:], canary_images())
    assert rep.psnr[(vs[2], vs[2])] > 15.0          # trained beyond a grey image (~14.3 dB)
    assert rep.drop_db > 0.3                          # decoder v-1 with encoder v costs fidelity
    assert rep.detected == rep.mismatched and rep.false_alarms == 0
