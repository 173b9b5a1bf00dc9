"""Bound propagation (IBP, CROWN) over l2 / linf balls: a hand-computed 2-layer case, soundness against
sampled, sphere and PGD-found points, CROWN no looser than IBP on a small net, layer folding, bad input;
and the verified task receiver on the shipped codec (its net is the decoder, its margin never above
what a noise-aware PGD jammer leaves, the certificate it writes)."""

import json
import math

import pytest
import torch
from torch import nn

from semguard.channels import AWGN
from semguard.cli.main import main
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.defenses.bounds import (AffineReLUNet, affine_relu_net, alpha_crown_bounds, bounds, crown_bounds,
                                      ibp_bounds, margin_spec, pgd_lowest)
from semguard.defenses.certificate import CertificateError, issue
from semguard.defenses.verified import VerifiedReceiver
from semguard.link import Link

S2 = math.sqrt(2.0)


def _hand_net() -> AffineReLUNet:
    # z = [[1, 1], [1, -1]] x, f = relu(z_1) + relu(z_2)
    d = torch.float64
    return AffineReLUNet((torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=d), torch.tensor([[1.0, 1.0]], dtype=d)),
                         (torch.zeros(2, dtype=d), torch.zeros(1, dtype=d)))


def test_hand_computed_two_layer_case():
    net, x0 = _hand_net(), torch.tensor([[1.0, 0.0]])
    # l2 ball of radius 1 around (1, 0): both z in 1 -+ sqrt(2), unstable
    lo, hi = ibp_bounds(net, x0, 1.0)
    assert lo.item() == pytest.approx(0.0, abs=1e-12) and hi.item() == pytest.approx(2 + 2 * S2, rel=1e-12)
    # CROWN: lower slope 1 (u > -l), so f >= z_1 + z_2 = 2 x_1 >= 2 - 2 = 0; upper slope s = u / (u - l)
    # = (1 + sqrt2) / (2 sqrt2), intercept -s l = 1 / (2 sqrt2) per neuron: f <= 2 s x_1 + 1/sqrt2,
    # at most 2 s (1 + 1) + 1/sqrt2 = 2 + 3 / sqrt2 (the true maximum is 4, at x = (2, 0))
    lo, hi = crown_bounds(net, x0, 1.0)
    assert lo.item() == pytest.approx(0.0, abs=1e-12) and hi.item() == pytest.approx(2 + 3 / S2, rel=1e-12)
    assert net(torch.tensor([[2.0, 0.0]])).item() == 4.0 <= hi.item()
    # linf ball of radius 0.5: each z in 1 -+ 1 = [0, 2], stable active; IBP adds the two intervals,
    # CROWN keeps f = z_1 + z_2 = 2 x_1 in [1, 3] exactly
    lo, hi = ibp_bounds(net, x0, 0.5, norm="linf")
    assert (lo.item(), hi.item()) == pytest.approx((0.0, 4.0), abs=1e-12)
    lo, hi = crown_bounds(net, x0, 0.5, norm="linf")
    assert (lo.item(), hi.item()) == pytest.approx((1.0, 3.0), abs=1e-12)


def test_linear_net_is_exact_and_spec_is_folded():
    g = torch.Generator().manual_seed(3)
    w, b = torch.randn(4, 6, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)
    net, x0 = AffineReLUNet((w,), (b,)), torch.randn(2, 6, generator=g)
    spec = margin_spec(torch.tensor([1, 3]), 4)
    for fn in (ibp_bounds, crown_bounds):
        lo, _ = fn(net, x0, 0.7, spec)
        cw = torch.einsum("brk,kd->brd", spec, w)
        want = torch.einsum("brd,bd->br", cw, x0.double()) + spec @ b - 0.7 * cw.norm(dim=2)
        torch.testing.assert_close(lo, want, rtol=0, atol=1e-12)


def _random_net(seed: int, sizes=(5, 16, 16, 4)) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


def _ball_points(x0: torch.Tensor, eps: float, norm: str, num: int, g: torch.Generator) -> torch.Tensor:
    d = x0.shape[1]
    if norm == "linf":
        inner = (torch.rand(num, d, generator=g, dtype=torch.float64) * 2 - 1) * eps
        corners = (torch.randint(0, 2, (num, d), generator=g).double() * 2 - 1) * eps
        return x0.double() + torch.cat([inner, corners])
    u = torch.randn(num, d, generator=g, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    radii = eps * torch.rand(num, 1, generator=g, dtype=torch.float64) ** (1 / d)
    return x0.double() + torch.cat([u * radii, u * eps])  # inside the ball, and on its sphere


@pytest.mark.parametrize("norm,eps", [("l2", 0.3), ("l2", 1.5), ("linf", 0.1), ("linf", 0.4)])
@pytest.mark.parametrize("method", ["ibp", "crown", "alpha-crown"])
def test_bounds_are_sound(method, norm, eps):
    g = torch.Generator().manual_seed(7)
    for seed in range(3):
        model = _random_net(seed)
        net = affine_relu_net(model, (5,))
        x0 = torch.randn(1, 5, generator=g)
        spec = margin_spec(net(x0).argmax(1), 4)
        lo, hi = bounds(method, net, x0, eps, norm=norm)
        mlo, _ = bounds(method, net, x0, eps, spec, norm=norm)
        pts = _ball_points(x0, eps, norm, 4000, g)
        out = net(pts)
        with torch.no_grad():
            torch.testing.assert_close(out, model.double()(pts), rtol=0, atol=1e-10)
        assert (out >= lo - 1e-9).all() and (out <= hi + 1e-9).all()
        assert ((out @ spec[0].T) >= mlo - 1e-9).all()
        # the strongest point PGD finds is still inside the bound (and inside the ball)
        low, arg = pgd_lowest(net, x0, eps, spec, norm=norm, steps=40, restarts=2, generator=g)
        dist = (arg - x0.double()).norm(dim=2) if norm == "l2" else (arg - x0.double()).abs().amax(2)
        assert (dist <= eps * (1 + 1e-9)).all() and (low >= mlo - 1e-9).all()
        low_out, _ = pgd_lowest(net, x0, eps, norm=norm, steps=40, restarts=2, generator=g)
        high_out, _ = pgd_lowest(net, x0, eps, -torch.eye(4), norm=norm, steps=40, restarts=2, generator=g)
        assert (low_out >= lo - 1e-9).all() and (-high_out <= hi + 1e-9).all()


def test_crown_is_no_looser_than_ibp_on_a_small_net():
    net = affine_relu_net(_random_net(11, (6, 24, 24, 24, 5)), (6,))
    x0 = torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
    spec = margin_spec(net(x0).argmax(1), 5)
    for eps in (0.05, 0.2, 0.5):
        ilo, ihi = ibp_bounds(net, x0, eps, spec)
        clo, chi = crown_bounds(net, x0, eps, spec)
        assert (clo >= ilo - 1e-12).all() and (chi <= ihi + 1e-12).all()
        assert float((chi - clo).mean()) < 0.8 * float((ihi - ilo).mean())  # and much tighter on average
        # alpha-CROWN starts from CROWN's slopes and keeps its best iterate: never looser, here tighter
        alo, ahi = alpha_crown_bounds(net, x0, eps, spec, steps=15)
        assert (alo >= clo - 1e-12).all() and (ahi <= chi + 1e-12).all()
        assert float((ahi - alo).mean()) < float((chi - clo).mean())
    # radius 0: both collapse to the network's value
    for fn in (ibp_bounds, crown_bounds):
        lo, hi = fn(net, x0, 0.0, spec)
        want = net(x0).unsqueeze(1) @ spec.transpose(1, 2)
        torch.testing.assert_close(lo, want.squeeze(1), rtol=0, atol=1e-10)
        torch.testing.assert_close(hi, want.squeeze(1), rtol=0, atol=1e-10)


def test_conv_batchnorm_flatten_fold_into_dense_maps():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 7)), nn.ReLU(), nn.Linear(7, 3))
    model.train()
    model(torch.randn(16, 1, 8, 8))  # non-trivial running statistics
    with pytest.raises(ValueError, match="BatchNorm2d must be in eval mode"):
        affine_relu_net(model, (1, 8, 8))
    model.eval()
    net = affine_relu_net(model, (1, 8, 8))
    assert len(net.weights) == 3 and net.in_features == 64
    assert next(model.parameters()).dtype == torch.float32  # the caller's model is left as it was
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(net(x.flatten(1)), model(x).double(), rtol=1e-5, atol=1e-5)


def test_bad_input_gets_one_line_errors():
    net = affine_relu_net(_random_net(0), (5,))
    x0 = torch.zeros(1, 5)
    cases = [(lambda: crown_bounds(net, x0, -0.1), "eps must be a finite radius >= 0"),
             (lambda: ibp_bounds(net, x0, float("nan")), "eps must be a finite radius >= 0"),
             (lambda: crown_bounds(net, torch.zeros(5), 0.1), r"x0 must be \[batch, 5\]"),
             (lambda: ibp_bounds(net, torch.zeros(1, 4), 0.1), r"x0 must be \[batch, 5\]"),
             (lambda: crown_bounds(net, x0, 0.1, torch.zeros(2, 3)), r"spec must be \[rows, 4\]"),
             (lambda: crown_bounds(net, x0, 0.1, norm="l1"), "norm must be one of l2, linf"),
             (lambda: bounds("beta-crown", net, x0, 0.1), "method must be one of ibp, crown, alpha-crown"),
             (lambda: alpha_crown_bounds(net, x0, 0.1, steps=-1), "steps must be >= 0 and lr > 0"),
             (lambda: margin_spec(torch.tensor([4]), 4), r"labels must be in \[0, 4\)"),
             (lambda: affine_relu_net(nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 1)), (2,)),
              "Tanh blocks it"),
             (lambda: affine_relu_net(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), (2,)), "must end with an affine"),
             (lambda: affine_relu_net(nn.Sequential(nn.ReLU(), nn.Linear(2, 2)), (2,)), "must start with an affine")]
    for fn, msg in cases:
        with pytest.raises(ValueError, match=msg) as e:
            fn()
        assert len(str(e.value).splitlines()) == 1


@pytest.fixture(scope="module")
def receiver():
    return VerifiedReceiver(Link(pretrained("task-fmnist"), AWGN()))


def test_receiver_net_is_the_decoder_and_certified_margins_are_sound(receiver):
    x, _ = shipped_fashion_mnist(6)
    tx, y0, eff = receiver.received(x, 10.0, seed=3)
    net = receiver.receiver_net(float(eff[0]))
    with torch.no_grad():
        want = receiver.link.codec.decode(y0, receiver.link(x, 10.0, generator=torch.Generator().manual_seed(3))["state"])
    torch.testing.assert_close(net(torch.view_as_real(y0).flatten(1)), want.double(), rtol=1e-5, atol=1e-5)
    grid = [-40.0, -25.0, -15.0]
    ibp = VerifiedReceiver(receiver.link, method="ibp").certify(x, 10.0, grid, seed=3)
    crown = receiver.certify(x, 10.0, grid, seed=3)
    assert torch.equal(ibp.prediction, crown.prediction)
    assert (crown.margin_lower >= ibp.margin_lower - 1e-9).all()
    # the ball's radius is the PSR's: sqrt(10^(psr/10) * 16) for a unit-power 16-symbol block
    torch.testing.assert_close(crown.radius[:, 1], torch.full((6,), math.sqrt(10 ** -2.5 * 16), dtype=torch.float64),
                               rtol=1e-5, atol=0)
    for j, psr in enumerate(grid):
        worst = receiver.attack(x, 10.0, psr, seed=3, steps=30, restarts=2)
        assert (crown.margin_lower[:, j] <= worst + 1e-9).all()
        # a certified block is never flipped by the attack
        assert not bool((crown.certified(psr) & (worst < 0)).any())


def test_alpha_crown_receiver_refines_only_what_crown_leaves(receiver):
    x, _ = shipped_fashion_mnist(8)
    crown = receiver.certify(x, 10.0, [-30.0, -12.0], seed=5)
    alpha = VerifiedReceiver(receiver.link, method="alpha-crown").certify(x, 10.0, [-30.0, -12.0], seed=5)
    kept = crown.margin_lower > 0
    assert torch.equal(alpha.margin_lower[kept], crown.margin_lower[kept])  # certified by CROWN: untouched
    assert (alpha.margin_lower >= crown.margin_lower).all() and (alpha.margin_lower > crown.margin_lower).any()
    worst = receiver.attack(x, 10.0, -12.0, seed=5, steps=30, restarts=2)
    assert (alpha.margin_lower[:, 1] <= worst + 1e-9).all()


def test_cli_writes_a_deterministic_certificate(tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(["certify", "--method", "crown", "--psr-db", "-25", "--images", "4", "--out", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["method"] == "crown" and d["confidence"] == 1.0 and d["n"] == 0 and d["samples"] == 4
    assert main(["certify", "--check", str(out)]) == 0
    assert "by crown" in capsys.readouterr().out
    assert main(["certify", "--method", "ibp", "--radius", "0.2"]) == 2
    assert "verifies the receiver against a PSR" in capsys.readouterr().err
    codec = pretrained("task-fmnist")
    with pytest.raises(CertificateError, match="deterministic symbol-domain certificate"):
        issue(codec, "task-fmnist", surface="symbols", channel="awgn", snr_db=10.0, budget=-20.0,
              certified_accuracy=0.5, abstain_rate=0.0, alpha=0.001, sigma=0.0, n0=0, n=0, samples=4, seed=0,
              method="crown")
