"""The time-correlated Jakes channel: unit power, J0 autocorrelation in time and space, block-wise
coefficients, one realisation on several time grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semguard.channels.base import correlated_state
from semguard.channels.jakes import (Jakes, jakes_autocorrelation, jakes_coefficients, jakes_realisation,
                                    spatial_correlation)
from semguard.registry import build


def test_jakes_autocorrelation_matches_j0() -> None:
    h = jakes_coefficients(400, 512, 0.02, generator=torch.Generator().manual_seed(0)).numpy()
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, abs=0.03)
    for lag in (0, 5, 10, 20, 40):
        r = np.mean(h[:, lag:] * np.conj(h[:, : h.shape[1] - lag])).real
        assert r == pytest.approx(float(jakes_autocorrelation(0.02 * lag)), abs=0.04), lag


def test_offset_grids_sample_one_realisation() -> None:
    g = torch.Generator().manual_seed(1)
    h = jakes_realisation(300, 256, 0.05, (0.0, 2.0, 0.5), generator=g).numpy()
    assert h.shape == (300, 3, 256)
    assert np.allclose(h[:, 1, :-2], h[:, 0, 2:], atol=2e-5)               # an integer offset is a shift
    cross = np.mean(h[:, 2] * np.conj(h[:, 0])).real                        # half a sample apart
    assert cross == pytest.approx(float(jakes_autocorrelation(0.05 * 0.5)), abs=0.03)
    # offset 0 alone draws exactly what jakes_coefficients (and so the channel) draws
    a = jakes_coefficients(4, 64, 0.05, generator=torch.Generator().manual_seed(2))
    b = jakes_realisation(4, 64, 0.05, (0.0, 3.0), generator=torch.Generator().manual_seed(2))[:, 0]
    assert torch.equal(a, b)


def test_sample_states_and_eavesdropper_state() -> None:
    ch = Jakes(doppler=0.1)
    g = torch.Generator().manual_seed(3)
    sa, sb = ch.sample_states(200, 256, 10.0, offsets=(0.0, 1.0), generator=g)
    assert torch.equal(sa.n0, sb.n0) and torch.allclose(sb.h[:, :-1], sa.h[:, 1:], atol=2e-5)
    se = ch.eavesdropper_state(sb, 0.0, distance=0.3, generator=g)
    assert se.n0[0, 0].item() == pytest.approx(1.0)                         # her own SNR, 0 dB
    r = (se.h * sb.h.conj()).mean().real.item()
    assert r == pytest.approx(float(spatial_correlation(0.3)), abs=0.04)
    assert se.h.abs().square().mean().item() == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="exactly one"):
        ch.eavesdropper_state(sb, 0.0, generator=g)
    with pytest.raises(ValueError, match="rho"):
        correlated_state(sb, se, 1.5)


def test_jakes_channel_state() -> None:
    ch = build("channel", "jakes", doppler=0.05, coherence=4, csi="estimated")
    assert isinstance(ch, Jakes)
    x = torch.ones(2, 64, dtype=torch.complex64)
    y, st = ch(x, 20.0, generator=torch.Generator().manual_seed(0))
    assert y.shape == (2, 64) and st.h.shape == (2, 64)
    assert torch.equal(st.h[:, 0:4], st.h[:, :1].expand(2, 4))            # constant within a coherence block
    assert not torch.allclose(st.h[:, 0], st.h[:, 60])                      # varies across blocks
    assert ch.pilot_blocks(64) == 16
    still = build("channel", "jakes", doppler=0.0)(x, 20.0)[1].h
    assert torch.equal(still, still[:, :1].expand(2, 64))
    with pytest.raises(ValueError, match="doppler"):
        Jakes(doppler=float("nan"))


def test_ris_channel_power_and_configurations() -> None:
    ch = build("channel", "ris", elements=16, direct_power=0.3, coherence=2)
    g = torch.Generator().manual_seed(4)
    st = ch.sample_state(2000, 8, 20.0, generator=g)
    assert st.h.abs().square().mean().item() == pytest.approx(1.0, abs=0.05)
    assert torch.equal(st.h[:, 0], st.h[:, 1]) and not torch.equal(st.h[:, 1], st.h[:, 2])  # a configuration per block
    # the direct path is static: across blocks the coefficients share p_d of their power
    c = (st.h[:, 2:] * st.h[:, :-2].conj()).mean().real.item()
    assert c == pytest.approx(0.3, abs=0.05)
    link, eve = ch.sample_with_eavesdropper(2000, 8, 20.0, 5.0, rho=0.6, generator=g)
    assert (eve.h * link.h.conj()).mean().real.item() == pytest.approx(0.6, abs=0.05)
    assert eve.snr_db[0].item() == 5.0
