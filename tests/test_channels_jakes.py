"""The time-correlated Jakes channel: unit power, J0 autocorrelation, block-wise coefficients,
and the same spectrum as the probing simulator's NumPy process."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semguard.channels.jakes import Jakes, jakes_autocorrelation, jakes_coefficients, jakes_process
from semguard.registry import build


def test_jakes_autocorrelation_matches_j0() -> None:
    h = jakes_coefficients(400, 512, 0.02, generator=torch.Generator().manual_seed(0)).numpy()
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, abs=0.03)
    for lag in (0, 5, 10, 20, 40):
        r = np.mean(h[:, lag:] * np.conj(h[:, : h.shape[1] - lag])).real
        assert r == pytest.approx(float(jakes_autocorrelation(0.02 * lag)), abs=0.04), lag


def test_torch_and_numpy_processes_share_one_spectrum() -> None:
    a = jakes_coefficients(300, 256, 0.05, generator=torch.Generator().manual_seed(1)).numpy()
    b = jakes_process(256, 1.0, 0.05, np.random.default_rng(1), n_processes=300)[:, 0]
    for lag in (3, 8, 15):
        ra = np.mean(a[:, lag:] * np.conj(a[:, :-lag])).real
        rb = np.mean(b[:, lag:] * np.conj(b[:, :-lag])).real
        assert ra == pytest.approx(rb, abs=0.05)


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
