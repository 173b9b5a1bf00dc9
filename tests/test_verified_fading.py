"""The verified receiver over block fading with perfect CSI: the equaliser folded into the decoder."""

from __future__ import annotations

import cmath
import math

import pytest
import torch

from semguard.channels import AWGN, Rayleigh
from semguard.channels.base import Channel
from semguard.codecs.zoo import pretrained
from semguard.data.shipped import shipped_fashion_mnist
from semguard.defenses.bounds import AffineReLUNet, crown_bounds, margin_spec
from semguard.defenses.verified import VerifiedReceiver, fold_equalizer
from semguard.link import Link

GRID = [-30.0, -20.0, -15.0]


class FixedGain(Channel):
    """Flat fading with the same coefficient ``h`` on every block (draws nothing from the generator)."""

    def __init__(self, h: complex, **kw) -> None:
        super().__init__(**kw)
        self.h = h

    def _block_coefficients(self, batch, n_blocks, generator, device):
        return torch.full((batch, n_blocks), self.h, dtype=torch.complex64, device=device)


@pytest.fixture(scope="module")
def codec():
    return pretrained("task-fmnist")


def test_fold_equalizer_is_the_gain_applied_before_the_net():
    g = torch.Generator().manual_seed(0)
    net = AffineReLUNet((torch.randn(5, 6, generator=g, dtype=torch.float64),
                         torch.randn(3, 5, generator=g, dtype=torch.float64)),
                        (torch.randn(5, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)))
    gain = torch.tensor([0.5 + 1j, -2.0 + 0.25j, 0.1 - 0.3j], dtype=torch.complex128)
    u = torch.randn(4, 3, generator=g, dtype=torch.complex128)
    want = net(torch.view_as_real(gain * u).flatten(1))
    torch.testing.assert_close(fold_equalizer(net, gain)(torch.view_as_real(u).flatten(1)), want)
    with pytest.raises(ValueError, match="one per symbol"):
        fold_equalizer(net, gain[:2])


def test_unit_gain_fading_is_the_awgn_certificate(codec):
    x, _ = shipped_fashion_mnist(8)
    awgn = VerifiedReceiver(Link(codec, AWGN())).certify(x, 10.0, GRID, seed=2)
    flat = VerifiedReceiver(Link(codec, FixedGain(1.0, equalizer="zf"))).certify(x, 10.0, GRID, seed=2)
    assert torch.equal(awgn.prediction, flat.prediction)
    torch.testing.assert_close(flat.radius, awgn.radius)
    torch.testing.assert_close(flat.margin_lower, awgn.margin_lower, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("equalizer", ["zf", "mmse"])
@pytest.mark.parametrize("reference", ["transmitted", "received"])
def test_a_fixed_gain_scales_the_ball_by_hand(codec, equalizer, reference):
    h = 0.5 * cmath.exp(1j * math.pi / 3)
    n0 = 0.1  # 10 dB SNR
    x, _ = shipped_fashion_mnist(6)
    rec = VerifiedReceiver(Link(codec, FixedGain(h, equalizer=equalizer)), psr_reference=reference)
    cert = rec.certify(x, 10.0, GRID, seed=4)
    ref, raw, gain, eff = rec.fading_draw(x, 10.0, seed=4)
    g = 1 / h if equalizer == "zf" else h.conjugate() / (abs(h) ** 2 + n0)
    torch.testing.assert_close(gain, torch.full_like(gain, g), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(eff, torch.full_like(eff, 10.0 + 20 * math.log10(abs(h))), rtol=1e-5, atol=1e-5)
    r0 = torch.tensor([math.sqrt(10 ** (p / 10) * 16) for p in GRID], dtype=torch.float64)  # unit-power x
    scale = abs(h) if reference == "received" else 1.0
    torch.testing.assert_close(cert.radius, (scale * r0).expand(6, -1), rtol=1e-5, atol=0)
    # the same as CROWN on the plain decoder at the equalised block, in a ball scaled by |g|
    net = rec.receiver_net(float(eff[0]))
    z0 = torch.view_as_real(g * raw.to(torch.complex128)).flatten(1)
    spec = margin_spec(net(z0).argmax(1), 10)
    for j in range(len(GRID)):
        want = crown_bounds(net, z0, abs(g) * scale * r0[j], spec)[0].min(1).values
        torch.testing.assert_close(cert.margin_lower[:, j], want, rtol=1e-6, atol=1e-6)


def _assert_sound_through_link(link, rec, x, seed, jammer_seed):
    """Every certified margin is under PGD's lowest and under the link's own margin with random jammers at
    the ball's edge sent at the antenna; the certified decision is the link's plain one."""
    cert = rec.certify(x, 10.0, GRID, seed=seed)
    _, raw, _, _ = rec.fading_draw(x, 10.0, seed=seed)
    g = torch.Generator().manual_seed(jammer_seed)
    for j, psr in enumerate(GRID):
        worst = rec.attack(x, 10.0, psr, seed=seed, steps=30, restarts=2)
        assert (cert.margin_lower[:, j] <= worst + 1e-9).all()
        for _ in range(3):
            d = torch.randn(raw.shape, generator=g, dtype=torch.complex64)
            d = d * (cert.radius[:, j] / torch.linalg.vector_norm(d, dim=1)).unsqueeze(1).float()
            with torch.no_grad():
                logits = link(x, 10.0, generator=torch.Generator().manual_seed(seed), interference=d)["output"]
            logits = logits.double()
            margin = (logits.gather(1, cert.prediction[:, None]) - logits).scatter(1, cert.prediction[:, None],
                                                                                     math.inf).min(1).values
            assert (cert.margin_lower[:, j] <= margin + 1e-4).all()
    with torch.no_grad():
        plain = link(x, 10.0, generator=torch.Generator().manual_seed(seed))["output"].argmax(1)
    assert torch.equal(plain, cert.prediction)


def test_rayleigh_certificate_is_sound_through_the_link(codec):
    link = Link(codec, Rayleigh(csi="perfect"))
    _assert_sound_through_link(link, VerifiedReceiver(link), shipped_fashion_mnist(10)[0], 7, 11)


def test_estimated_csi_data_only_certificate_is_sound_through_the_link(codec):
    """With pilot-estimated CSI the fold uses the receiver's estimate (hand formula), not the true h, and the
    certificate holds against jammers on the data symbols sent through the real link (pilots untouched)."""
    x, _ = shipped_fashion_mnist(10)
    link = Link(codec, Rayleigh(csi="estimated", pilots=2))
    rec = VerifiedReceiver(link, data_only=True)
    _, _, gain, eff = rec.fading_draw(x, 10.0, seed=5)
    with torch.no_grad():
        st = link(x, 10.0, generator=torch.Generator().manual_seed(5))["state"]
    n0 = 0.1
    want = st.h_est.conj() / (st.h_est.abs().square() + n0)
    torch.testing.assert_close(gain, want, rtol=1e-5, atol=1e-6)
    assert (st.h_est != st.h).all()                       # the estimate really differs from the channel
    torch.testing.assert_close(eff, 10.0 + 10 * torch.log10(st.h_est.abs().square()[:, 0]), rtol=1e-5, atol=1e-5)
    _assert_sound_through_link(link, rec, x, 5, 13)


def test_fading_needs_perfect_csi(codec):
    with pytest.raises(ValueError, match="perfect CSI"):
        VerifiedReceiver(Link(codec, Rayleigh(csi="estimated")))
    with pytest.raises(ValueError, match="psr_reference"):
        VerifiedReceiver(Link(codec, Rayleigh()), psr_reference="peak")


def test_cli_certifies_over_fading_what_the_receiver_certifies(tmp_path, capsys, codec):
    """``semguard certify --channel rayleigh`` writes the verified receiver's own figure for that draw, per
    PSR reference, and records the channel; the AWGN-only methods and flags refuse fading in one line."""
    import json

    from semguard.cli.main import main
    x, y = shipped_fashion_mnist(12)
    for reference in ("received", "transmitted"):
        out = tmp_path / f"{reference}.json"
        assert main(["certify", "--method", "crown", "--channel", "rayleigh", "--psr-reference", reference,
                     "--psr-db", "-15", "--images", "12", "--seed", "3", "--out", str(out)]) == 0
        want = VerifiedReceiver(Link(codec, Rayleigh(csi="perfect")), psr_reference=reference).certify(
            x, 10.0, [-15.0], seed=3).certified_accuracy(y, -15.0)
        d = json.loads(out.read_text())
        assert d["channel"] == "rayleigh" and d["certified_accuracy"] == pytest.approx(want)
        assert d["extra"]["psr_reference"] == reference and d["extra"]["equalizer"] == "mmse"
        assert d["extra"]["csi"] == "perfect" and "jammer" not in d["extra"]
        assert main(["certify", "--check", str(out)]) == 0
        assert "by crown over rayleigh" in capsys.readouterr().out
    est = tmp_path / "estimated.json"
    assert main(["certify", "--method", "crown", "--channel", "rayleigh", "--csi", "estimated", "--psr-db", "-15",
                 "--images", "12", "--seed", "3", "--out", str(est)]) == 0
    want = VerifiedReceiver(Link(codec, Rayleigh(csi="estimated")), data_only=True).certify(
        x, 10.0, [-15.0], seed=3).certified_accuracy(y, -15.0)
    d = json.loads(est.read_text())
    assert d["certified_accuracy"] == pytest.approx(want) and d["extra"]["csi"] == "estimated"
    assert d["extra"]["pilots"] == 1 and "data symbols only" in d["extra"]["jammer"]
    assert main(["certify", "--method", "crown", "--psr-db", "-15", "--images", "12", "--seed", "3",
                 "--out", str(tmp_path / "awgn.json")]) == 0
    awgn = json.loads((tmp_path / "awgn.json").read_text())
    assert awgn["channel"] == "awgn" and "psr_reference" not in awgn["extra"]
    capsys.readouterr()
    for argv, msg in ((["--channel", "rayleigh", "--psr-db", "-15"], "--channel rayleigh is for --method crown"),
                      (["--method", "crown", "--psr-reference", "transmitted", "--psr-db", "-15"],
                       "--psr-reference is for --channel rayleigh"),
                      (["--method", "crown", "--csi", "estimated", "--psr-db", "-15"], "--csi is for --channel")):
        assert main(["certify", *argv, "--out", str(tmp_path / "no.json")]) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1
    assert not (tmp_path / "no.json").exists()
