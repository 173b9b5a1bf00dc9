"""The budget ladder (``pgd-ladder``): white-box PGD from the random, transfer, continuation and own
lower-rung starts.  Per photo it is never weaker than each of ``pgd``, ``pgd-transfer`` and
``pgd-continuation`` with the same seed on the same draw, spends exactly its budget, reproduces bit for
bit, a cached rung is the rung recomputed, and its recorded components are those attacks' own losses."""

from __future__ import annotations

import pytest
import torch

from semguard.attacks.ladder import merge
from semguard.attacks._best import BestIterate
from semguard.channels import AWGN, Rayleigh
from semguard.link import Link
from semguard.metrics.image import psnr
from semguard.registry import build

TINY = {"adjscc": {"cbr": 1 / 12, "width": 8}, "analog": {"cbr": 1 / 12, "block": 8, "meta": 4, "width": 8}}
KW = {"surface": "channel", "steps": 2, "seed": 4}


def _codec(name: str, seed: int):
    torch.manual_seed(seed)
    return build("codec", name, **TINY[name]).eval()


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(7))


def _go(atk, link, x):
    return atk(link, x, 10.0, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("codec", sorted(TINY))
@pytest.mark.parametrize("channel", ["awgn", "rayleigh"])
def test_never_weaker_per_photo_than_each_component(codec, channel, x) -> None:
    link = Link(_codec(codec, 0), AWGN() if channel == "awgn" else Rayleigh(csi="estimated", pilots=2))
    sur = _codec(codec, 1)
    psr = -10.0
    lad = build("attack", "pgd-ladder", psr_db=psr, from_db=-25.0, continuation_from_db=-20.0, surrogate=sur, **KW)
    parts = {
        "pgd": build("attack", "pgd", psr_db=psr, **KW),
        "pgd-transfer": build("attack", "pgd", psr_db=psr, **KW,
                              warm_start=build("attack", "transfer", surrogate=sur, psr_db=psr, **KW)),
        "pgd-continuation": build("attack", "pgd-continuation", psr_db=psr, from_db=-20.0, **KW),
    }
    r = _go(lad, link, x)
    p_lad = psnr(r.output, x)
    for name, atk in parts.items():
        p = psnr(_go(atk, link, x).output, x)
        assert (p_lad <= p + 1e-4).all(), (name, p_lad, p)
        # the component the ladder records is that attack's own loss (10 log10 MSE = -PSNR), to the float
        torch.testing.assert_close(-torch.tensor(lad.components[name]), p, atol=1e-4, rtol=0)
    torch.testing.assert_close(-torch.tensor(lad.components["pgd-ladder"]), p_lad, atol=1e-4, rtol=0)
    torch.testing.assert_close(r.measured, torch.full((3,), psr), atol=1e-3, rtol=0)  # budget exact


def test_a_fixed_seed_reproduces_bit_for_bit_and_the_cache_changes_nothing(x) -> None:
    link = Link(_codec("adjscc", 0), Rayleigh(csi="estimated", pilots=2))
    sur = _codec("adjscc", 1)
    kw = {**KW, "from_db": -20.0, "continuation_from_db": -15.0, "surrogate": sur}
    a = _go(build("attack", "pgd-ladder", psr_db=-10.0, **kw), link, x)
    b = _go(build("attack", "pgd-ladder", psr_db=-10.0, **kw), link, x)
    assert torch.equal(a.perturbation, b.perturbation) and torch.equal(a.output, b.output)
    cache: dict = {}
    _go(build("attack", "pgd-ladder", psr_db=-15.0, cache=cache, **kw), link, x)
    n = len(cache)  # rungs -20, -15 and their transfer starts
    c = _go(build("attack", "pgd-ladder", psr_db=-10.0, cache=cache, **kw), link, x)
    assert len(cache) == n + 2  # only the -10 dB rung and its transfer start are new
    assert torch.equal(a.perturbation, c.perturbation) and torch.equal(a.output, c.output)


def test_with_no_other_start_it_is_plain_pgd_bit_for_bit(x) -> None:
    link = Link(_codec("analog", 0), AWGN())
    plain = _go(build("attack", "pgd", psr_db=-10.0, **KW), link, x)
    lad = _go(build("attack", "pgd-ladder", psr_db=-10.0, from_db=-10.0, continuation_from_db=None, **KW), link, x)
    assert torch.equal(plain.perturbation, lad.perturbation)


def test_merge_keeps_the_first_strict_best_by_hand() -> None:
    def part(loss):
        b = BestIterate()
        b.update(torch.tensor(loss)[:, None] * torch.ones(2, 2), torch.tensor(loss), None)
        return b
    m = merge(part([1.0, 5.0]), part([3.0, 5.0]), part([2.0, 4.0]))
    assert m.loss.tolist() == [3.0, 5.0] and m.result()[:, 0].tolist() == [3.0, 5.0]


def test_the_rungs_by_hand_and_bad_options() -> None:
    atk = build("attack", "pgd-ladder", psr_db=-25.0, **KW)
    assert atk.config()["rungs"] == [-40.0, -35.0, -30.0]  # the grid's -25 dB gets a warm start too
    with pytest.raises(ValueError, match="continuation_from_db must be from_db"):
        build("attack", "pgd-ladder", psr_db=-10.0, from_db=-40.0, continuation_from_db=-22.0, **KW)
    with pytest.raises(ValueError, match="warm_start: pgd-ladder's starts are its own"):
        build("attack", "pgd-ladder", psr_db=-10.0, warm_start=build("attack", "pgd", psr_db=-10.0, **KW), **KW)
    with pytest.raises(ValueError, match="a PSR budget on an air surface"):
        build("attack", "pgd-ladder", surface="input", eps=0.1)
    with pytest.raises(TypeError, match="surrogate must be a SemanticCodec"):
        build("attack", "pgd-ladder", psr_db=-10.0, surrogate="adjscc", **KW)


def test_the_grid_cell_is_never_weaker_than_the_grid_white_box_cells(tmp_path) -> None:
    # on the command line's grid (shipped SoftCast over Rayleigh, the attacker's own surrogate): per photo
    # the ladder cell is at most each of the pgd, pgd-transfer and pgd-continuation cells, and it records
    # those attacks' PSNR as its components
    from semguard.cli.attack import run_grid
    names = ["pgd", "pgd-transfer", "pgd-continuation", "pgd-ladder"]
    cfg = {"codec": "softcast-cbr1_6", "attack": names, "psr_db": [-20.0], "eps": None, "surface": "channel",
           "snr_db": 10.0, "channel": "rayleigh", "images": 1, "steps": 2, "side": 128, "pilot_steps": None,
           "targeted": False, "train_images": 12, "surrogate_steps": 2, "ladder_from_db": -30.0, "seed": 0}
    recs = {r["attack"]: r for r in run_grid(cfg, tmp_path, progress=False)}
    lad = recs["pgd-ladder"]
    assert lad["config"]["rungs"] == [-30.0, -25.0] and lad["config"]["continuation_from_db"] == -25.0
    for n in names[:3]:
        assert all(a <= b + 1e-4 for a, b in zip(lad["attacked_per_sample"], recs[n]["attacked_per_sample"])), n
        assert all(abs(-c - b) < 1e-4 for c, b in zip(lad["components"][n], recs[n]["attacked_per_sample"])), n
