"""Slow: semguard's input PGD against the Adversarial Robustness Toolbox's PGD and APGD on the same
wrapped task codec (bench/art_crosscheck.py; needs the ``[art]`` extra)."""

from __future__ import annotations

import pytest

from bench_module import load_bench


def test_frozen_channel_is_deterministic_whatever_the_batch() -> None:
    import torch

    from semguard.codecs.zoo import pretrained
    from semguard.data.shipped import shipped_fashion_mnist
    from semguard.link import Link

    bench = load_bench("art_crosscheck")
    x, _ = shipped_fashion_mnist(6)
    codec = pretrained("task-fmnist").eval()
    model = bench.Decision(Link(codec, bench.FrozenAWGN(16)), 10.0)
    with torch.no_grad():
        whole = model(x)
        parts = torch.cat([model(x[:1]), model(x[1:4]), model(x[4:])])
        noiseless = codec(x, bench.FrozenAWGN(16), 60.0)["logits"]
    assert torch.allclose(whole, parts, atol=1e-5)          # the same function for any batching
    assert not torch.allclose(whole, noiseless, atol=1e-3)  # and the noise is there


def test_cascaded_ensemble_keeps_what_its_first_member_breaks() -> None:
    # on the frozen channel each image is decided alone, so the ensemble's members may attack only the
    # images still unbroken; its first member (APGD-CE) always sees the whole batch, as on its own
    from semguard.codecs.zoo import pretrained
    from semguard.data.shipped import shipped_fashion_mnist
    from semguard.link import Link
    from semguard.registry import build

    bench = load_bench("art_crosscheck")
    x, y = shipped_fashion_mnist(32)
    codec = pretrained("task-fmnist-adv").eval()
    link = Link(codec, bench.FrozenAWGN(codec.n_symbols(tuple(x.shape[1:]))))
    kw = {"surface": "input", "eps": 0.1, "steps": 3}
    ens = build("attack", "autoattack", targets=2, queries=10, cascade=True, seed=1, **kw)(link, x, 10.0, labels=y)
    ce = build("attack", "apgd", seed=1, **kw)(link, x, 10.0, labels=y)
    broken, broken_ce = ens.output.argmax(1) != y, ce.output.argmax(1) != y
    assert ens.config["cascade"] and (broken | ~broken_ce).all() and broken.sum() > broken_ce.sum()
    assert (ens.perturbation.abs() <= 0.1 + 1e-7).all()


@pytest.mark.slow
def test_semguard_pgd_is_within_a_few_points_of_art() -> None:
    pytest.importorskip("art")
    bench = load_bench("art_crosscheck")
    # eps 0.02: the undefended codec keeps about half its accuracy, so the attacks can differ
    # measured at 100 steps: semguard's AutoAttack 0.470, ART's strongest 0.480
    res = bench.crosscheck("task-fmnist", 200, 0.02, art_steps=50, art_restarts=1, autoattack=True,
                           semguard_settings={"semguard AutoAttack": {"attack": "autoattack", "steps": 50,
                                                                      "targets": 3, "queries": 500, "cascade": True}})
    assert 0.2 < res["art_strongest"] < 0.8, res
    assert res["gap_points"] <= 1.0, res
