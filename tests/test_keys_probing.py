"""Probing through the channels and the quantiser against theory (Jakes J0 autocorrelation in time
and space, noise at the stated SNR, Gray code)."""

import numpy as np
import pytest
import torch
from scipy.special import j0

from semguard.channels.functional import snr_db_to_n0
from semguard.channels.jakes import jakes_realisation, spatial_correlation
from semguard.keys.probing import ProbeConfig, probe_generator, simulate_probes
from semguard.keys.quantize import decorrelation_step, gray_bits, gray_code, quantize, standardize


def jakes_process(n, dt, fd, rng, *, offsets_s=(0.0,), n_processes=1):
    """The torch Jakes realisation in seconds (as the probing uses it), NumPy complex128."""
    h = jakes_realisation(n_processes, n, fd * dt, tuple(o / dt for o in offsets_s), generator=probe_generator(rng))
    return h.to(torch.complex128).numpy()


def test_jakes_autocorrelation_matches_j0():
    rng = np.random.default_rng(0)
    fd, dt = 50.0, 1e-3
    h = jakes_process(200, dt, fd, rng, n_processes=400)[:, 0]
    assert np.mean(np.abs(h) ** 2) == pytest.approx(1.0, abs=0.02)
    for lag in (1, 5, 10, 20):
        emp = np.mean(h[:, lag:] * np.conj(h[:, :-lag])).real
        assert emp == pytest.approx(j0(2 * np.pi * fd * lag * dt), abs=0.03)


def test_static_channel_is_constant():
    h = jakes_process(50, 1e-3, 0.0, np.random.default_rng(1), offsets_s=(0.0, 0.1))
    assert h.shape == (1, 2, 50) and np.allclose(h, h[:, :1, :1])


def test_jakes_offsets_sample_one_realisation_and_aliasing_keeps_the_correlation():
    rng = np.random.default_rng(7)
    fd, dt, tau = 40.0, 1e-3, 3e-3
    h = jakes_process(300, dt, fd, rng, offsets_s=(0.0, tau), n_processes=300)
    # offset tau = 3 samples: the second grid is the first shifted by 3 (same realisation)
    assert np.allclose(h[:, 1, :-3], h[:, 0, 3:], atol=2e-5)          # float32 FFT
    cross = np.mean(h[:, 1] * np.conj(h[:, 0])).real
    assert cross == pytest.approx(j0(2 * np.pi * fd * tau), abs=0.03)
    # Doppler 3x the sampling rate (fd dt = 3): samples alias but keep J0 at multiples of dt
    fast = jakes_process(400, 1e-3, 3000.0, rng, n_processes=300, offsets_s=(0.0, 1e-4))
    assert np.mean(np.abs(fast) ** 2) == pytest.approx(1.0, abs=0.03)
    assert np.mean(fast[:, 0, 1:] * np.conj(fast[:, 0, :-1])).real == pytest.approx(j0(2 * np.pi * 3.0), abs=0.03)
    assert np.mean(fast[:, 1] * np.conj(fast[:, 0])).real == pytest.approx(j0(2 * np.pi * 0.3), abs=0.03)


def _kolmogorov_szego(fd_dt: float, grid: int = 200_000) -> float:
    """One-step prediction error / variance of the sampled Jakes process (Kolmogorov-Szego:
    exp of the mean log of the folded spectrum over one period)."""
    f = (np.arange(grid) + 0.5) / grid - 0.5
    spec = np.zeros(grid)
    for alias in range(-int(fd_dt) - 2, int(fd_dt) + 3):
        g = (f + alias) / fd_dt
        inside = np.abs(g) < 1
        spec[inside] += 1 / (np.pi * np.sqrt(1 - g[inside] ** 2)) / fd_dt
    return float(np.exp(np.mean(np.log(np.maximum(spec, 1e-300)))))


@pytest.mark.parametrize("fd_dt", [0.6, 1.2])
def test_jakes_realisation_is_as_unpredictable_as_its_spectrum_says(fd_dt):
    # one long realisation, best linear predictor of order 32: its error must sit at the
    # Kolmogorov-Szego bound of the Jakes spectrum (a sum of 64 fixed sinusoids gives ~0.26 at 0.8)
    errs = []
    for seed in range(3):
        x = jakes_process(8192, 1e-3, fd_dt * 1e3, np.random.default_rng(seed))[0, 0].real
        win = np.lib.stride_tricks.sliding_window_view(x, 32)[:-1]
        coef, *_ = np.linalg.lstsq(win, x[32:], rcond=None)
        errs.append(np.var(x[32:] - win @ coef) / np.var(x))
    assert np.mean(errs) == pytest.approx(_kolmogorov_szego(fd_dt), rel=0.05)


def _corr(a, b):
    return np.mean(a * np.conj(b)).real / np.sqrt(np.mean(abs(a) ** 2) * np.mean(abs(b) ** 2))


def test_spatial_correlation_of_eve():
    assert spatial_correlation(0.0) == pytest.approx(1.0)
    assert spatial_correlation(0.5) == pytest.approx(j0(np.pi))
    cfg = ProbeConfig(n_probes=20000, snr_db=60.0, eve_distance=0.2, probe_rate_hz=1000.0, doppler_hz=400.0)
    tr = simulate_probes(cfg, np.random.default_rng(2))
    assert tr.rho == pytest.approx(j0(2 * np.pi * 0.2))
    assert _corr(tr.bob, tr.eve) == pytest.approx(j0(2 * np.pi * 0.2), abs=0.05)


@pytest.mark.parametrize("distance", [0.1, 0.3, 0.5, 1.0])
def test_eve_probes_her_own_channel_with_correlation_j0_of_her_distance(distance):
    # fast fading (f_d T = 0.4): the 8192 probes of one session hold many independent samples
    cfg = ProbeConfig(n_probes=8192, snr_db=50.0, eve_distance=distance, probe_rate_hz=250.0, doppler_hz=100.0)
    r = [_corr(tr.bob, tr.eve) for tr in (simulate_probes(cfg, np.random.default_rng([s, 9])) for s in range(4))]
    assert np.mean(r) == pytest.approx(j0(2 * np.pi * distance), abs=0.04)


def test_alice_and_bob_probe_one_realisation_j0_apart_in_time():
    # Bob measures delay_s after Alice: E[h_B h_A*] = J0(2 pi f_d delay); lag k probes: J0(2 pi f_d k / rate)
    fd, rate, delay = 100.0, 250.0, 1.5e-3                                 # J0(2 pi 0.15) = 0.786
    cfg = ProbeConfig(n_probes=8192, snr_db=50.0, probe_rate_hz=rate, doppler_hz=fd, delay_s=delay)
    traces = [simulate_probes(cfg, np.random.default_rng([s, 5])) for s in range(4)]
    assert np.mean([_corr(t.bob, t.alice) for t in traces]) == pytest.approx(j0(2 * np.pi * fd * delay), abs=0.03)
    for lag in (1, 2):
        emp = np.mean([_corr(t.alice[lag:], t.alice[:-lag]) for t in traces])
        assert emp == pytest.approx(j0(2 * np.pi * fd * lag / rate), abs=0.04), lag


def test_probing_is_reproducible_and_takes_a_torch_generator():
    cfg = ProbeConfig(n_probes=64, mode="induced")
    a = simulate_probes(cfg, np.random.default_rng(1))
    b = simulate_probes(cfg, np.random.default_rng(1))
    c = simulate_probes(cfg, torch.Generator().manual_seed(3))
    assert np.array_equal(a.eve, b.eve) and not np.array_equal(a.eve, c.eve)


def test_ris_eve_shares_the_surface_configuration():
    # rho = 1 (Eve at Bob's place): her channel is Bob's, only the noise differs
    cfg = ProbeConfig(n_probes=4096, snr_db=60.0, eve_distance=0.0, mode="ris")
    tr = simulate_probes(cfg, np.random.default_rng(4))
    assert np.mean(abs(tr.eve - tr.bob) ** 2) == pytest.approx(2 * float(snr_db_to_n0(60.0)), rel=0.1)
    assert np.mean(abs(tr.bob) ** 2) == pytest.approx(1.0, abs=0.25)    # one static draw of h_d and c


def test_probe_noise_power_matches_snr():
    cfg = ProbeConfig(n_probes=40000, snr_db=10.0, delay_s=0.0, mode="mobile")
    tr = simulate_probes(cfg, np.random.default_rng(3))
    # alice - bob = n_a - n_b when delay is 0: power 2 N0
    assert np.mean(np.abs(tr.alice - tr.bob) ** 2) == pytest.approx(2 * float(snr_db_to_n0(10.0)), rel=0.03)
    eve = simulate_probes(ProbeConfig(n_probes=40000, snr_db=10.0, eve_snr_db=0.0, eve_distance=0.0, delay_s=0.0),
                          np.random.default_rng(3))
    # Eve at Bob's place, her own SNR: eve - bob = n_e - n_b, power N0(0 dB) + N0(10 dB)
    assert np.mean(np.abs(eve.eve - eve.bob) ** 2) == pytest.approx(1.0 + float(snr_db_to_n0(10.0)), rel=0.03)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="mode"):
        ProbeConfig(mode="underwater")


def test_gray_code_adjacent_levels_differ_in_one_bit():
    assert gray_code(np.arange(8)).tolist() == [0, 1, 3, 2, 6, 7, 5, 4]
    b = gray_bits(np.arange(8), 3)
    assert (np.abs(np.diff(b.astype(int), axis=0)).sum(1) == 1).all()


def test_quantile_levels_equiprobable_and_guard_drops_near_thresholds():
    x = standardize(np.random.default_rng(4).standard_normal(8000) + 1j * np.random.default_rng(5).standard_normal(8000))
    q = quantize(x, 2)
    for d in range(2):
        assert np.bincount(q.levels[:, d], minlength=4) / len(x) == pytest.approx([0.25] * 4, abs=0.01)
    g = quantize(x, 1, guard=0.1, kind="mean")
    # fraction of components kept: farther than 0.1 sd from the mean, 1 - 2*0.0398 (each part on its own)
    assert g.keep.shape == (8000, 2)
    assert g.keep.mean() == pytest.approx(1 - 2 * 0.0398, abs=0.01)
    assert (np.abs(x[g.keep]) >= 0.1 - 1e-9).all() and (np.abs(x[~g.keep]) < 0.1).all()
    p = quantize(x, 2, guard=0.02, guard_unit="prob")
    for d in range(2):
        counts = np.bincount(p.levels[p.keep[:, d], d], minlength=4)
        expected = np.array([0.23, 0.21, 0.21, 0.23]) / 0.88             # each threshold removes 2 * 0.02
        assert counts / counts.sum() == pytest.approx(expected, abs=0.01)


def test_decorrelation_step_for_white_and_slow_sequences():
    rng = np.random.default_rng(6)
    white = rng.standard_normal(4000) + 1j * rng.standard_normal(4000)
    assert decorrelation_step(white) == 1
    slow = jakes_process(4000, 1e-3, 20.0, rng)[0, 0]          # J0 first drops below 0.3 near lag 14
    assert 8 <= decorrelation_step(slow) <= 20
