"""The threat model and the budgets: PSR measured at the receiver equals the target, input norms never
exceed eps, clear one-line errors for bad budgets, objectives and shapes."""

from __future__ import annotations

import math

import pytest
import torch

from semguard.attacks import ThreatModel
from semguard.attacks.budget import input_norm, project_input
from semguard.channels import AWGN, Rayleigh
from semguard.channels import functional as F
from semguard.codecs.zoo import pretrained
from semguard.data.photos import shipped_photos
from semguard.link import Link
from semguard.registry import build


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    return shipped_photos()[:3]


@pytest.fixture(scope="module")
def softcast() -> torch.nn.Module:
    return pretrained("softcast-cbr1_6")


def test_threat_model_fields_and_units() -> None:
    tm = ThreatModel("channel", "power", -10, "white-box", "reconstruction")
    assert tm.unit == "psr_db" and tm.budget == -10.0 and tm.to_dict()["unit"] == "psr_db"
    assert ThreatModel("input", "linf", 0.1, "none", "task", True).unit == "eps"
    with pytest.raises(ValueError, match="psr_db must be finite"):
        ThreatModel("channel", "power", math.inf, "white-box", "reconstruction")
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        ThreatModel("input", "linf", -0.1, "white-box", "reconstruction")
    with pytest.raises(ValueError, match="norm on the input surface"):
        ThreatModel("input", "power", 0.1, "white-box", "reconstruction")
    with pytest.raises(ValueError, match="surface must be one of"):
        ThreatModel("air", "power", 0.0, "white-box", "reconstruction")
    with pytest.raises(dataclasses_frozen()):
        tm.budget = 0.0  # type: ignore[misc]


def dataclasses_frozen() -> type[Exception]:
    import dataclasses
    return dataclasses.FrozenInstanceError


@pytest.mark.parametrize("surface", ["channel", "symbols"])
@pytest.mark.parametrize("psr", [-25.0, -10.0, -5.0])
def test_jamming_psr_is_exact_at_the_receiver(softcast, photos, surface: str, psr: float) -> None:
    link = Link(softcast, Rayleigh(csi="estimated"))
    r = build("attack", "gaussian", surface=surface, psr_db=psr)(link, photos, 10.0)
    torch.testing.assert_close(r.measured, torch.full((3,), psr), atol=1e-4, rtol=0)
    out = r.link
    if surface == "channel":  # recompute from the link's own record: the interference vs h x
        hx = out["state"].h * out["transmitted"]
        torch.testing.assert_close(F.psr_db(out["interference"], hx), torch.full((3,), psr), atol=1e-4, rtol=0)
        # -10 dB is a tenth of the received signal's power, never the other sign
        ratio = F.block_power(out["interference"]) / F.block_power(hx)
        torch.testing.assert_close(ratio, torch.full((3,), 10 ** (psr / 10)), rtol=1e-4, atol=0)


def test_pgd_stays_within_its_budgets(softcast, photos) -> None:
    link = Link(softcast, AWGN())
    r = build("attack", "pgd", surface="channel", psr_db=-15, steps=3)(link, photos, 10.0)
    assert (r.measured <= -15 + 1e-3).all() and (r.measured > -16).all()  # 1e-3 dB: float32 over 32768 symbols
    for norm, eps in (("linf", 0.03), ("l2", 2.0)):
        r = build("attack", "pgd", surface="input", eps=eps, norm=norm, steps=3)(link, photos, 10.0)
        assert (r.measured <= eps + 1e-6).all() and (r.measured > 0.5 * eps).all()


def test_input_projection_by_hand() -> None:
    x = torch.tensor([[0.0, 0.5, 0.98, 1.0]])
    d = torch.tensor([[-0.2, 0.3, 0.05, -0.01]])
    torch.testing.assert_close(project_input(d, x, 0.1, "linf"), torch.tensor([[0.0, 0.1, 0.02, -0.01]]))
    d2 = torch.tensor([[0.0, 0.3, 0.0, -0.4]])  # norm 0.5 -> scaled by 0.2 to norm 0.1
    torch.testing.assert_close(project_input(d2, x, 0.1, "l2"), torch.tensor([[0.0, 0.06, 0.0, -0.08]]))
    assert input_norm(project_input(d2, x, 0.1, "l2"), "l2").item() == pytest.approx(0.1, abs=1e-6)


def test_bad_input_names_the_field(softcast, photos) -> None:
    link = Link(softcast, AWGN())
    with pytest.raises(ValueError, match="psr_db must be finite"):
        build("attack", "pgd", surface="channel", psr_db=float("nan"))
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        build("attack", "fgsm", surface="input", eps=-0.1)
    with pytest.raises(ValueError, match="psr_db: the channel surface needs"):
        build("attack", "pgd", surface="channel")
    with pytest.raises(ValueError, match="objective 'task' does not fit"):
        build("attack", "pgd", surface="channel", psr_db=-10, objective="task", steps=1)(link, photos, 10.0)
    with pytest.raises(ValueError, match="target: a targeted attack needs"):
        build("attack", "pgd", surface="channel", psr_db=-10, targeted=True, steps=1)(link, photos, 10.0)
    atk = build("attack", "pgd", surface="channel", psr_db=-10, steps=1)
    with pytest.raises(ValueError, match="perturbation must be complex"):
        atk.send(_ctx(atk, link, photos), torch.zeros(3, 7, dtype=torch.complex64), torch.Generator())


def _ctx(atk, link, photos):
    from semguard.attacks.base import AttackContext
    g = torch.Generator().manual_seed(0)
    return AttackContext(link, photos, torch.full((3,), 10.0), "reconstruction", None, None, g.get_state(), g)


def test_jamming_is_independent_of_bobs_noise(softcast, photos) -> None:
    # the attacker's stream never replays the channel's: jamming at -25 dB on AWGN at 10 dB costs what
    # the equivalent SNR 10 log10(1 / (N0 + P_jam)) costs a linear codec, within 0.05 dB
    from semguard.metrics.image import psnr
    link = Link(softcast, AWGN())
    jam = build("attack", "gaussian", surface="channel", psr_db=-25, seed=0)(
        link, photos, 10.0, generator=torch.Generator().manual_seed(0))
    eq = 10 * math.log10(1 / (0.1 + 10 ** -2.5))
    with torch.no_grad():
        ref = link(photos, eq, generator=torch.Generator().manual_seed(0))["output"]
    assert abs(psnr(jam.output, photos).mean().item() - psnr(ref, photos).mean().item()) < 0.05


def test_reconstruction_losses_by_definition(photos) -> None:
    from semguard.attacks.objectives import attack_loss
    x = photos[:2]
    noisy = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    mse = (noisy - x).square().flatten(1).mean(1)
    torch.testing.assert_close(attack_loss("reconstruction", noisy, x, recon_loss="mse"), mse)
    torch.testing.assert_close(attack_loss("reconstruction", noisy, x), 10 * torch.log10(mse))  # -PSNR
    torch.testing.assert_close(attack_loss("reconstruction", x, x, recon_loss="ms-ssim"), -torch.ones(2))
    assert (attack_loss("reconstruction", noisy, x, recon_loss="ms-ssim") > -1).all()
    # targeted: minus the distortion to the target
    torch.testing.assert_close(attack_loss("reconstruction", noisy, x, target=x, recon_loss="mse"), -mse)
