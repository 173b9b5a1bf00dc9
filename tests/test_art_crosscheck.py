"""Slow: semguard's input PGD against the Adversarial Robustness Toolbox's PGD and APGD on the same
wrapped task codec (bench/art_crosscheck.py; needs the ``[art]`` extra)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "art_crosscheck.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_art_crosscheck", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_frozen_channel_is_deterministic_whatever_the_batch() -> None:
    import torch

    from semguard.codecs.zoo import pretrained
    from semguard.data.shipped import shipped_fashion_mnist
    from semguard.link import Link

    bench = _bench()
    x, _ = shipped_fashion_mnist(6)
    codec = pretrained("task-fmnist").eval()
    model = bench.Decision(Link(codec, bench.FrozenAWGN(16)), 10.0)
    with torch.no_grad():
        whole = model(x)
        parts = torch.cat([model(x[:1]), model(x[1:4]), model(x[4:])])
        noiseless = codec(x, bench.FrozenAWGN(16), 60.0)["logits"]
    assert torch.allclose(whole, parts, atol=1e-5)          # the same function for any batching
    assert not torch.allclose(whole, noiseless, atol=1e-3)  # and the noise is there


@pytest.mark.slow
def test_semguard_pgd_is_within_a_few_points_of_art() -> None:
    pytest.importorskip("art")
    bench = _bench()
    # eps 0.02: the undefended codec keeps about half its accuracy, so the attacks can differ
    res = bench.crosscheck("task-fmnist", 200, 0.02, art_steps=50, art_restarts=1,
                           semguard_settings={"semguard PGD 50 x 2": {"steps": 50, "restarts": 2}})
    assert 0.2 < res["art_strongest"] < 0.8, res
    assert abs(res["gap_points"]) <= 3.0, res
