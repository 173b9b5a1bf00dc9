"""Propagation of Byzantine beliefs through gossip: plain averaging against W-MSR."""

import numpy as np
import pytest
import torch

from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.network import graph
from semguard.network.propagation import initial_beliefs, propagation


def _beliefs(n=7, b=40, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, b, c, generator=g)
    logits[..., 0] += 2.5                                   # honest agents mostly favour class 0
    return logits.softmax(-1), torch.zeros(b, dtype=torch.long)


def test_plain_averaging_is_taken_over_wmsr_is_not():
    beliefs, labels = _beliefs()
    adj = graph.complete(7)                                 # 4-robust >= 2f+1 for f = 1
    bad = torch.zeros(7, dtype=torch.bool)
    bad[2] = True
    avg = propagation(beliefs, adj, bad, 40, rule="average", f=1, labels=labels)
    wmsr = propagation(beliefs, adj, bad, 40, rule="wmsr", f=1, labels=labels)
    # one stubborn agent drags every honest agent onto its class under plain averaging
    assert avg["flipped"][0] == 0.0 and avg["flipped"][-1] > 0.9
    assert avg["left_honest_range"]
    # W-MSR keeps the honest agents inside their initial range and (nearly) all decisions
    assert not wmsr["left_honest_range"]
    assert wmsr["flipped"][-1] < 0.1
    assert wmsr["accuracy"][-1] > avg["accuracy"][-1] + 0.5


def test_in_range_attack_stays_in_range_and_bad_graphs_fail():
    beliefs, labels = _beliefs()
    bad = torch.zeros(7, dtype=torch.bool)
    bad[:1] = True
    res = propagation(beliefs, graph.complete(7), bad, 20, rule="wmsr", f=1, mode="in-range", labels=labels)
    assert not res["left_honest_range"]
    split = np.zeros((7, 7), dtype=bool)
    split[:3, :3] = True
    split[3:, 3:] = True
    np.fill_diagonal(split, False)
    with pytest.raises(ValueError, match="not connected"):
        propagation(beliefs, split, bad, 5, rule="wmsr", f=1)
    with pytest.raises(ValueError, match="byzantine belief"):
        propagation(beliefs, graph.complete(7), bad, 5, rule="wmsr", f=1, mode="loud")
    with pytest.raises(ValueError, match="gossip rule"):
        propagation(beliefs, graph.complete(7), bad, 5, rule="vote", f=1)


def test_initial_beliefs_from_the_task_codec():
    torch.set_num_threads(1)
    x, _ = shipped_fashion_mnist(6)
    p = initial_beliefs(pretrained("task-fmnist").eval(), x, 4)
    assert p.shape == (4, 6, 10)
    assert torch.allclose(p.sum(-1), torch.ones(4, 6), atol=1e-5)
