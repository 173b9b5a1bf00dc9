"""Budget continuation (``pgd-continuation``): PGD also started from its own smaller-budget solution.
It spends exactly its budget, is per photo never weaker than plain PGD with the same seed on the same
draw, reproduces bit for bit, and a cached rung is the rung recomputed."""

from __future__ import annotations

import pytest
import torch

from semguard.attacks.continuation import ladder
from semguard.channels import Rayleigh
from semguard.codecs.zoo import pretrained
from semguard.data.photos import shipped_photos
from semguard.link import Link
from semguard.metrics.image import psnr
from semguard.registry import build


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return shipped_photos()[:2]


@pytest.fixture(scope="module")
def link() -> Link:
    return Link(pretrained("softcast-cbr1_6"), Rayleigh(csi="estimated"))


def _attack(atk, link, x):
    return atk(link, x, 10.0, generator=torch.Generator().manual_seed(0))


def test_the_ladder_counts_the_rungs_by_hand() -> None:
    assert ladder(-5.0, -25.0, 5.0) == [-25.0, -20.0, -15.0, -10.0]
    assert ladder(-20.0, -25.0, 5.0) == [-25.0]
    assert ladder(-25.0, -25.0, 5.0) == []  # the bottom rung itself: plain PGD
    assert ladder(-10.0, None, 5.0) == [-15.0]
    assert ladder(-10.0, -20.0, 2.5) == [-20.0, -17.5, -15.0, -12.5]
    with pytest.raises(ValueError, match="step_db must be a finite number > 0"):
        ladder(-10.0, -20.0, 0.0)


@pytest.mark.parametrize("psr", [-15.0, -5.0])
def test_the_budget_holds_exactly_at_the_receiver(link, x, psr) -> None:
    # the warm start is the -20 (-10) dB solution scaled up: every photo must spend exactly psr dB
    atk = build("attack", "pgd-continuation", surface="channel", psr_db=psr, steps=2, seed=0, from_db=psr - 5)
    res = _attack(atk, link, x)
    assert torch.allclose(res.measured, torch.full_like(res.measured, psr), atol=1e-3), res.measured
    assert atk.config()["rungs"] == [psr - 5]
    assert atk.config()["warm_start"]["budget"] == psr - 5


def test_never_weaker_than_plain_pgd_with_the_same_seed(link, x) -> None:
    plain = build("attack", "pgd", surface="channel", psr_db=-10, steps=3, seed=2)
    cont = build("attack", "pgd-continuation", surface="channel", psr_db=-10, steps=3, seed=2, from_db=-20)
    p_plain, p_cont = psnr(_attack(plain, link, x).output, x), psnr(_attack(cont, link, x).output, x)
    assert (p_cont <= p_plain + 1e-5).all(), (p_cont, p_plain)


def test_a_fixed_seed_reproduces_bit_for_bit_and_the_cache_changes_nothing(link, x) -> None:
    kw = {"surface": "channel", "steps": 2, "seed": 5, "from_db": -20}
    a = _attack(build("attack", "pgd-continuation", psr_db=-10, **kw), link, x)
    b = _attack(build("attack", "pgd-continuation", psr_db=-10, **kw), link, x)
    assert torch.equal(a.perturbation, b.perturbation) and torch.equal(a.output, b.output)
    cache: dict = {}
    _attack(build("attack", "pgd-continuation", psr_db=-15, cache=cache, **kw), link, x)  # fills -20, -15
    assert len(cache) == 2
    c = _attack(build("attack", "pgd-continuation", psr_db=-10, cache=cache, **kw), link, x)
    assert len(cache) == 3  # the -15 dB rung came from the cache
    assert torch.equal(a.perturbation, c.perturbation) and torch.equal(a.output, c.output)


def test_bad_options_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="its own smaller-budget solution"):
        build("attack", "pgd-continuation", surface="channel", psr_db=-10,
              warm_start=build("attack", "gaussian", surface="channel", psr_db=-10))
    with pytest.raises(ValueError, match="a PSR budget on an air surface"):
        build("attack", "pgd-continuation", surface="input", eps=0.1)


def test_the_grid_cell_is_never_weaker_than_the_grid_pgd(tmp_path) -> None:
    from semguard.cli.attack import run_grid
    cfg = {"codec": "softcast-cbr1_6", "attack": ["pgd", "pgd-continuation"], "psr_db": [-15.0, -10.0],
           "eps": None, "surface": "channel", "snr_db": 10.0, "channel": "rayleigh", "images": 1, "steps": 2,
           "side": 128, "pilot_steps": None, "targeted": False, "seed": 0}
    recs = run_grid(cfg, tmp_path, progress=False)
    for b in (-15.0, -10.0):
        pgd, cont = (next(r for r in recs if r["attack"] == a and r["budget"] == b) for a in cfg["attack"])
        assert all(c <= p + 1e-5 for c, p in zip(cont["attacked_per_sample"], pgd["attacked_per_sample"]))
        assert cont["config"]["rungs"] == [-25.0 + 5 * k for k in range(int((b + 25) / 5))]
