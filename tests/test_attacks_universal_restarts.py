"""The universal attack's restarts: independent fits ranked by the damage they do on the attacker's
validation sources (``attack_damage``: token error rate, misclassification, distortion, by hand), the
kept block is the most damaging one and still spends exactly the PSR budget, the first restart is the
single fit bit for bit, a fixed seed reproduces the whole search; bad input is a one-line error."""

from __future__ import annotations

import pytest
import torch

from semguard.attacks.objectives import attack_damage, attack_loss
from semguard.attacks.universal import UniversalPerturbation
from semguard.channels import AWGN
from semguard.link import Link
from semguard.registry import build

TOKENS = 6


@pytest.fixture(scope="module")
def text_link():
    torch.manual_seed(0)
    codec = build("codec", "deepsc", vocab_size=40, d_model=16, heads=2, layers=1, ff=32).eval()
    src = torch.randint(2, 40, (8, TOKENS), generator=torch.Generator().manual_seed(0))
    val = torch.randint(2, 40, (6, TOKENS), generator=torch.Generator().manual_seed(1))
    return Link(codec, AWGN()), src, val


def test_damage_by_hand() -> None:
    # token logits [1, 3, 4]: argmax 1, 3, 2 against sent 1, 2, 0 (the last slot is padding)
    z = torch.tensor([[[0.0, 5.0, 1.0, 0.0], [0.0, 0.0, 1.0, 4.0], [0.0, 0.0, 9.0, 0.0]]])
    assert attack_damage("semantic", z, torch.tensor([[1, 2, 0]])).tolist() == [0.5]  # 1 wrong of 2 real
    assert attack_damage("semantic", z, torch.tensor([[1, 3, 2]])).tolist() == [0.0]
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0]])
    assert attack_damage("task", logits, torch.zeros(2, 1), labels=torch.tensor([0, 0])).tolist() == [0.0, 1.0]
    x, ref = torch.full((1, 1, 2, 2), 0.5), torch.zeros(1, 1, 2, 2)
    assert attack_damage("reconstruction", x, ref, recon_loss="mse").tolist() == [0.25]
    assert torch.equal(attack_damage("reconstruction", x, ref), attack_loss("reconstruction", x, ref))
    with pytest.raises(ValueError, match="semantic damage needs token logits"):
        attack_damage("semantic", z, torch.tensor([[1, 2]]))


def _spy(monkeypatch) -> list[torch.Tensor]:
    blocks: list[torch.Tensor] = []
    fit_one = UniversalPerturbation._fit_one

    def spy(self, *args, **kw):
        b = fit_one(self, *args, **kw)
        blocks.append(b.clone())
        return b
    monkeypatch.setattr(UniversalPerturbation, "_fit_one", spy)
    return blocks


def test_restarts_keep_the_most_damaging_block_and_its_budget(text_link, monkeypatch) -> None:
    link, src, val = text_link
    one = build("attack", "universal", surface="channel", psr_db=-3, steps=3, batch=4).fit(link, src, 10.0)
    blocks = _spy(monkeypatch)
    u = build("attack", "universal", surface="channel", psr_db=-3, steps=3, batch=4, restarts=3)
    u.fit(link, src, 10.0, validation=val)
    assert len(blocks) == 3 and len(u.restart_damage) == 3
    assert all(0.0 <= d <= 1.0 for d in u.restart_damage)  # token error rates
    assert torch.equal(blocks[0], one.delta)  # restart 1 is the single fit, bit for bit
    assert not torch.equal(blocks[0], blocks[1])  # the others start elsewhere
    best = max(range(3), key=lambda i: (u.restart_damage[i], -i))
    assert torch.equal(u.delta, blocks[best])
    assert u.config()["restarts"] == 3 and u.config()["restart_damage"] == u.restart_damage
    r = u(link, val, 10.0, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(r.measured, torch.full_like(r.measured, -3.0), atol=1e-4)


def test_restarts_rank_by_damage_not_order(text_link, monkeypatch) -> None:
    link, src, val = text_link
    scores = iter([0.2, 0.7, 0.4])
    monkeypatch.setattr(UniversalPerturbation, "_damage", lambda self, *a, **k: next(scores))
    blocks = _spy(monkeypatch)
    u = build("attack", "universal", surface="channel", psr_db=-3, steps=2, batch=4, restarts=3).fit(link, src, 10.0)
    assert u.restart_damage == [0.2, 0.7, 0.4]
    assert torch.equal(u.delta, blocks[1])


def test_restarts_reproduce_with_a_fixed_seed(text_link) -> None:
    link, src, val = text_link
    fits = [build("attack", "universal", surface="channel", psr_db=-6, steps=2, batch=4, restarts=2, seed=5)
            .fit(link, src, 10.0, validation=val) for _ in range(2)]
    assert torch.equal(fits[0].delta, fits[1].delta) and fits[0].restart_damage == fits[1].restart_damage


def test_bad_restarts_and_validation_are_one_line_errors(text_link) -> None:
    link, src, _ = text_link
    for kw in ({"restarts": 0}, {"restarts": 1.5}, {"score_draws": 0}):
        with pytest.raises(ValueError, match="restarts and score_draws must be whole numbers >= 1"):
            build("attack", "universal", surface="channel", psr_db=-6, **kw)
    u = build("attack", "universal", surface="channel", psr_db=-6, steps=1, batch=2, restarts=2)
    with pytest.raises(ValueError, match=r"validation: sources of shape \(6,\) expected, got \(4,\)"):
        u.fit(link, src, 10.0, validation=src[:, :4])
