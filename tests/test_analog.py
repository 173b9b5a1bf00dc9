"""The analog (SoftCast-style) codec against its theory: water-filling optimality, the linear
MMSE distortion of Gaussian blocks, the power-scale side channel, unit power."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from semguard.channels import AWGN
from semguard.codecs.analog import waterfilling_gains
from semguard.registry import build


def _distortion(lam: torch.Tensor, g: torch.Tensor, snr: float) -> float:
    return float((lam / (1 + g.square() * lam * snr)).sum())


def test_waterfilling_meets_the_power_budget_and_beats_other_allocations() -> None:
    lam = torch.tensor([4.0, 1.0, 0.25, 0.01])
    g = waterfilling_gains(lam, 10.0)
    assert abs(float((g.square() * lam).mean()) - 1) < 1e-5
    best = _distortion(lam, g, 10.0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):  # random allocations of the same power never do better
        a = torch.rand(4, generator=gen) ** 3
        a = a * 4 / a.sum()
        assert _distortion(lam, torch.sqrt(a / lam), 10.0) >= best - 1e-6
    # closed form with all four on: a_i = (sqrt(lam_i snr / mu) - 1) / snr
    a = g.square() * lam
    root = torch.sqrt(lam * 10.0) / (1 + a * 10.0)  # equal for every active coefficient (KKT)
    active = a > 2e-3
    assert torch.allclose(root[active], root[active][0].expand(int(active.sum())), rtol=1e-4)
    with pytest.raises(ValueError, match="positive"):
        waterfilling_gains(torch.tensor([1.0, 0.0]), 10.0)


def _gaussian_images(n: int, block: int, lam: torch.Tensor, q: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Images of 4x4 blocks, each Gaussian with variances ``lam`` along the orthonormal basis ``q``."""
    coef = torch.randn(n, 16, lam.numel(), generator=gen, dtype=torch.float64) * lam.sqrt()
    blocks = 0.5 + coef @ q.T
    return F.fold(blocks.transpose(1, 2).float(), (4 * block, 4 * block), block, stride=block)


def test_softcast_mse_matches_the_linear_mmse_closed_form() -> None:
    gen = torch.Generator().manual_seed(0)
    block, cbr, snr_db = 4, 1 / 6, 10.0
    d = 3 * block * block
    lam = 1e-2 * torch.logspace(0, -3, d, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    train = _gaussian_images(2000, block, lam, q, gen)
    codec = build("codec", "softcast", cbr=cbr, block=block, meta=1)
    codec.init_from_images(train)
    k = codec.k
    test = _gaussian_images(400, block, lam, q, gen)
    with torch.no_grad():
        x_hat = codec(test, AWGN(), snr_db, generator=torch.Generator().manual_seed(1))["x_hat"]
    # clamp-free comparison: the images stay well inside [0, 1]
    assert 0 < float(test.min()) and float(test.max()) < 1
    mse = float((x_hat.double() - test.double()).square().sum(dim=(1, 2, 3)).mean()) / 16  # per block
    g = waterfilling_gains(lam[:k].float(), 10 ** (snr_db / 10)).double()
    theory = _distortion(lam[:k], g, 10 ** (snr_db / 10)) + float(lam[k:].sum())
    # 1 of the 16 x k real coefficients per image gives way to the scale symbol: a small excess
    assert theory <= mse * 1.02 and mse <= theory * 1.08, (mse, theory)


def test_the_power_scale_travels_with_the_symbols() -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    x = 0.2 + 0.6 * torch.rand(4, 3, 32, 32, generator=gen)  # inside [0, 1]: no clamping
    codec = build("codec", "softcast", cbr=1 / 2, block=4, meta=4)  # a complete basis
    codec.init_from_images(torch.rand(64, 3, 32, 32, generator=gen))
    low = 0.5 + 0.1 * (x - 0.5)  # the same images at a tenth of the contrast: rho 10x smaller
    with torch.no_grad():
        sym = codec.encode(torch.cat([x, low]), 50.0)
        assert torch.allclose(sym.abs().square().mean(dim=1), torch.ones(8), atol=1e-5)
        out = codec(torch.cat([x, low]), AWGN(), 50.0, generator=gen)["x_hat"]
    psnr = -10 * torch.log10((out - torch.cat([x, low])).square().mean(dim=(1, 2, 3)))
    # the error is the 8 real coefficients the scale symbols displace, so it scales with the
    # contrast: a tenth of it is 20 dB better.  Decoded at the wrong scale, the low-contrast
    # images would come out at full contrast, about 20 dB worse than the full ones.
    assert (psnr[:4] > 33).all(), psnr
    torch.testing.assert_close(psnr[4:] - psnr[:4], torch.full((4,), 20.0), atol=0.3, rtol=0)


def test_analog_refiner_starts_at_zero_and_learns() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    lin = build("codec", "softcast", cbr=1 / 12, block=8, meta=4)
    ref = build("codec", "analog", cbr=1 / 12, block=8, meta=4, width=8)
    fit = torch.rand(32, 3, 32, 32)
    lin.init_from_images(fit)
    ref.init_from_images(fit)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = lin(x, AWGN(), 10.0, generator=g1)["x_hat"]
    out = ref(x, AWGN(), 10.0, generator=g2)
    torch.testing.assert_close(out["x_hat"], a)  # the zero-initialised refinement adds nothing yet
    out["x_hat"].square().mean().backward()
    assert ref.refiner.out.weight.grad.abs().sum() > 0
    assert ref.enc_basis.grad is None and not ref.log_gain.requires_grad  # the linear path is fitted, not trained
    assert math.isclose(ref.n_symbols((3, 32, 32)), 3 * 32 * 32 / 12)
    with pytest.raises(ValueError, match="multiples of 8"):
        ref.encode(torch.rand(1, 3, 36, 32), 10.0)
    with pytest.raises(ValueError, match="even number of real coefficients"):
        build("codec", "softcast", cbr=1 / 7, block=8)


def test_snr_switch_routes_each_block_to_its_codec(tmp_path) -> None:
    from semguard.codecs.zoo import load_weights, save_weights

    torch.manual_seed(0)
    spec = {"low": {"codec": "adjscc", "config": {"cbr": 1 / 12, "width": 8}},
            "high": {"codec": "softcast", "config": {"cbr": 1 / 12, "block": 8, "meta": 4}}, "threshold_db": 7.5}
    sw = build("codec", "switched", **spec).eval()
    sw.high.init_from_images(torch.rand(32, 3, 32, 32))
    x = torch.rand(3, 3, 32, 48)
    snr = torch.tensor([0.0, 7.5, 20.0])  # low, high (the threshold itself), high
    with torch.no_grad():
        sym = sw.encode(x, snr)
        torch.testing.assert_close(sym[:1], sw.low.encode(x[:1], snr[:1]))
        torch.testing.assert_close(sym[1:], sw.high.encode(x[1:], snr[1:]))
        y, state = AWGN()(sym, snr, generator=torch.Generator().manual_seed(0))
        out = sw.decode(y, state, size=(32, 48))
        torch.testing.assert_close(out[1:], sw.high.decode(y[1:], state.subset(slice(1, None)), size=(32, 48)))
    save_weights(sw, "switched", tmp_path / "sw.safetensors")
    again = load_weights(tmp_path / "sw.safetensors")
    assert again.config == sw.config
    with torch.no_grad():
        torch.testing.assert_close(again.encode(x, snr), sym)
    with pytest.raises(ValueError, match="channel uses"):
        bad = build("codec", "switched", **{**spec, "high": {"codec": "softcast", "config": {"cbr": 1 / 6, "block": 8}}})
        bad.encode(x, snr)


def test_switch_threshold_is_the_last_crossing_on_the_validation_grid() -> None:
    from semguard.codecs.switch import choose_threshold

    grid = [0.0, 2.0, 4.0, 6.0, 8.0]
    assert choose_threshold(grid, [24, 25, 26, 27, 28], [22, 24.5, 26, 27.5, 30]) == 4.0  # a tie counts for high
    # high wins at 2 dB by chance but loses at 4 dB: the switch must not take it below 6 dB
    assert choose_threshold(grid, [24, 25, 26, 27, 28], [22, 25.5, 25.9, 28, 30]) == 6.0
    assert choose_threshold(grid, [1, 1, 1, 1, 1], [2, 2, 2, 2, 2]) == 0.0
    with pytest.raises(ValueError, match="never matches"):
        choose_threshold(grid, [5] * 5, [4, 6, 6, 6, 4])
    with pytest.raises(ValueError, match="increase"):
        choose_threshold([0.0, 4.0, 2.0], [1, 1, 1], [2, 2, 2])
    with pytest.raises(ValueError, match="equal"):
        choose_threshold(grid, [1] * 4, [2] * 5)


def test_decoder_undoes_the_equalisers_bias() -> None:
    from semguard.channels import Rayleigh

    torch.manual_seed(0)
    codec = build("codec", "softcast", cbr=1 / 12, block=8, meta=4)
    codec.init_from_images(torch.rand(32, 3, 32, 32))
    x = torch.rand(4, 3, 32, 32)
    outs = {}
    for eq in ("mmse", "zf"):
        ch = Rayleigh(coherence=16, equalizer=eq)
        with torch.no_grad():
            out = codec(x, ch, 5.0, generator=torch.Generator().manual_seed(7))
        assert out["state"].equalizer == eq
        outs[eq] = out["x_hat"]
    # MMSE output divided by its bias |h|^2 / (|h|^2 + N0) is the ZF output: same draws, same image
    torch.testing.assert_close(outs["mmse"], outs["zf"], atol=1e-5, rtol=0)
    assert AWGN().sample_state(2, 8, 10.0).equalizer == "none"
