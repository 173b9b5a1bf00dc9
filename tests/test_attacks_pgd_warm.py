"""PGD's warm start: the warm attack's perturbation is one more start and stays in the best-of, so the
result is, per photo, at least as strong as the warm attack alone and as the same PGD without it."""

from __future__ import annotations

import pytest
import torch

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


def _psnr(attack, link, x) -> torch.Tensor:
    return psnr(attack(link, x, 10.0, generator=torch.Generator().manual_seed(0)).output, x)


def test_warm_start_is_never_weaker_than_either_of_its_parts(link, x) -> None:
    # the random restart draws what plain PGD draws (the warm start comes last) and the warm start is
    # scored as it is, so per photo the result is <= min(plain PGD, the warm attack alone), to the float
    noise = build("attack", "gaussian", surface="channel", psr_db=-15, seed=3)
    plain = build("attack", "pgd", surface="channel", psr_db=-15, steps=2, seed=3)
    warm = build("attack", "pgd", surface="channel", psr_db=-15, steps=2, seed=3, warm_start=noise)
    p_noise, p_plain, p_warm = _psnr(noise, link, x), _psnr(plain, link, x), _psnr(warm, link, x)
    assert (p_warm <= torch.minimum(p_noise, p_plain) + 1e-5).all(), (p_warm, p_noise, p_plain)
    assert warm.config()["warm_start"]["attack"] == "gaussian"


def test_a_strong_warm_start_survives_a_destructive_step(link, x, monkeypatch) -> None:
    # one step of twice the budget's radius from a 6-step PGD point lands more than 2 dB weaker (the
    # recorded last iterate); the best-of keeps the warm start, so the result is the warm attack's PSNR
    import semguard.attacks.pgd as pgd_module
    offered: list[torch.Tensor] = []

    class Recording(pgd_module.BestIterate):
        def update(self, delta, loss, success) -> None:
            offered.append(-loss.detach().clone())  # the loss is 10 log10 MSE = -PSNR
            super().update(delta, loss, success)

    strong = build("attack", "pgd", surface="channel", psr_db=-10, steps=6, seed=1)
    p_strong = _psnr(strong, link, x)
    monkeypatch.setattr(pgd_module, "BestIterate", Recording)
    warm = build("attack", "pgd", surface="channel", psr_db=-10, steps=1, alpha=2.0, seed=1, warm_start=strong)
    p_warm = _psnr(warm, link, x)
    assert (offered[-1] > p_strong + 2.0).all(), (offered[-1], p_strong)
    assert (p_warm <= p_strong + 1e-5).all(), (p_warm, p_strong)


def test_warm_start_is_refused_where_it_does_not_fit() -> None:
    noise = build("attack", "gaussian", surface="channel", psr_db=-10)
    with pytest.raises(ValueError, match="it attacks the channel surface, this pgd the symbols"):
        build("attack", "pgd", surface="symbols", psr_db=-10, warm_start=noise)
    with pytest.raises(ValueError, match="only plain pgd takes one, not fgsm"):
        build("attack", "fgsm", surface="channel", psr_db=-10, warm_start=noise)
    with pytest.raises(TypeError, match="warm_start must be a semguard Attack"):
        build("attack", "pgd", surface="channel", psr_db=-10, warm_start="transfer")


def test_the_grid_runs_pgd_from_the_transfer_start_and_writes_nothing_new_when_told(tmp_path) -> None:
    # `pgd-transfer` on the command line: per photo at least as strong as the grid's own pgd and transfer
    # cells (same seed, same draw); finished_only hands back the finished records and runs no new cell
    from semguard.cli.attack import run_grid
    cfg = {"codec": "softcast-cbr1_6", "attack": ["pgd", "transfer", "pgd-transfer"], "psr_db": [-10.0],
           "eps": None, "surface": "channel", "snr_db": 10.0, "channel": "rayleigh", "images": 1, "steps": 2,
           "side": None, "pilot_steps": None, "targeted": False, "train_images": 12, "surrogate_steps": 2,
           "seed": 0}
    recs = {r["attack"]: r for r in run_grid(cfg, tmp_path, progress=False)}
    both = min(recs["pgd"]["attacked"], recs["transfer"]["attacked"])
    assert recs["pgd-transfer"]["attacked"] <= both + 1e-5
    assert recs["pgd-transfer"]["config"]["warm_start"]["attack"] == "transfer"
    again = run_grid(cfg | {"psr_db": [-10.0, -5.0]}, tmp_path, progress=False, finished_only=True)
    assert sorted(r["attack"] for r in again) == ["pgd", "pgd-transfer", "transfer"]
    assert len((tmp_path / "records.jsonl").read_text().splitlines()) == 3
