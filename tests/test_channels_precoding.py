"""DFT-spread precoding against its theory: unitary, white noise stays white, the despread
state predicts each despread symbol's bias and noise, and the shipped SoftCast gains from it
over fast fading."""

from __future__ import annotations

import pytest
import torch

from semguard.channels import AWGN, Rayleigh
from semguard.channels.precoding import despread, despread_state, spread, spread_chunk
from semguard.codecs.precoded import Precoded
from semguard.codecs.zoo import load_weights, pretrained, save_weights
from semguard.data.photos import shipped_photos
from semguard.metrics.image import psnr
from semguard.registry import build


def test_spreading_is_unitary_and_keeps_awgn_white() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 1024, dtype=torch.complex64, generator=g)
    c = spread_chunk(1024)
    s = spread(x, c)
    assert c == 64
    torch.testing.assert_close(s.abs().square().sum(1), x.abs().square().sum(1), rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(despread(s, c), x, rtol=1e-5, atol=1e-5)
    # each output mixes 64 inputs: no output equals its own input
    assert (s - x).abs().mean() > 0.5
    y, st = AWGN()(s, 3.0, generator=g)
    w = despread(y, c) - x
    n0 = float(st.n0[0])
    assert float(w.abs().square().mean()) == pytest.approx(n0, rel=0.02)
    assert abs(float((w[:, :-1] * w[:, 1:].conj()).mean().abs())) < 0.02 * n0   # still uncorrelated
    assert torch.allclose(despread_state(st, c).h, st.h)


def test_chunk_is_the_largest_divisor_and_short_odd_blocks_are_refused() -> None:
    assert spread_chunk(32768) == 64 and spread_chunk(600) == 60 and spread_chunk(384, 32) == 32
    with pytest.raises(ValueError, match="divisor"):
        spread_chunk(1009)  # a prime
    with pytest.raises(ValueError, match="max_chunk"):
        spread_chunk(64, 1)


@pytest.mark.parametrize("equalizer", ["zf", "mmse"])
def test_despread_state_predicts_each_symbols_bias_and_noise(equalizer: str) -> None:
    # a fade every 4 symbols: each 64-symbol chunk (stride n/64) sees 64 different fades
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 1024, dtype=torch.complex64, generator=g)
    c = spread_chunk(1024)
    y, st_tx = Rayleigh(coherence=4, equalizer=equalizer)(spread(x, c), 5.0, generator=g)
    d, st = despread(y, c), despread_state(st_tx, c)
    n0 = st.n0

    def normalised(g2: torch.Tensor) -> tuple[float, float]:
        beta = torch.ones_like(g2) if equalizer == "zf" else g2 / (g2 + n0)
        var = n0 / g2 if equalizer == "zf" else beta * (1 - beta)
        r = d - beta * x
        gain = (d.conj() * x).real.mean() / (beta * x.abs().square()).mean()
        return float((r.abs().square() / var).mean()), float(gain)

    power, gain = normalised(st.h_est.abs().square())
    assert power == pytest.approx(1.0, rel=0.05) and gain == pytest.approx(1.0, rel=0.03)
    power_tx, _ = normalised(st_tx.h_est.abs().square())
    assert abs(power_tx - 1.0) > 0.2                                   # the undespread state mispredicts
    # one flat gain per chunk: the 64 symbols j, j + 16, ... of chunk j share it
    h = st.h_est.reshape(64, c, 1024 // c)
    assert torch.equal(h, h[:, :1].expand_as(h))


def test_shipped_softcast_gains_from_spreading_over_fast_fading() -> None:
    # measured on the 7 shipped photos, 3 draws, coherence 16: +1.5 / +0.8 / +0.1 dB at 0 / 10 / 20 dB
    x = shipped_photos()[:4]
    plain = pretrained("softcast-cbr1_6")
    spread_codec = Precoded.around(plain)  # it knows it is a "softcast"
    ch = Rayleigh(coherence=16)
    out = {}
    with torch.no_grad():
        for name, codec in (("plain", plain), ("spread", spread_codec)):
            g = torch.Generator().manual_seed(2)
            out[name] = float(psnr(codec(x, ch, 0.0, generator=g)["x_hat"], x).mean())
    assert out["spread"] > out["plain"] + 0.7, out


def test_precoded_saves_loads_and_refuses_bad_specs(tmp_path) -> None:
    torch.manual_seed(0)
    inner = build("codec", "adjscc", cbr=1 / 12, width=8).eval()
    p = Precoded.around(inner, "adjscc", max_chunk=32)
    assert p.inner is inner and p.config["max_chunk"] == 32
    save_weights(p, "spread", tmp_path / "p.safetensors")
    again = load_weights(tmp_path / "p.safetensors")
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(again.encode(x, 5.0), p.encode(x, 5.0))
    with pytest.raises(ValueError, match="name the registry entry"):
        Precoded.around(inner)
    with pytest.raises(ValueError, match="not what codec"):
        Precoded.around(inner, "softcast")
    with pytest.raises(ValueError, match="inner must be"):
        build("codec", "spread", inner="adjscc")
    with pytest.raises(ValueError, match="spreading twice"):
        build("codec", "spread", inner={"codec": "spread", "config": {}})
