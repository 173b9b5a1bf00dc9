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
