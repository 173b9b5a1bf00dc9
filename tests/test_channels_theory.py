"""The channel conventions checked against theory (ARCHITECTURE.md, 'Units')."""

from __future__ import annotations

import math

import pytest
import torch
from sionna.phy.mapping import Demapper, Mapper

from semguard.channels import AWGN, Rayleigh, Rician
from semguard.channels import functional as F


def _gen(seed: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 20.0])
def test_awgn_noise_power_matches_n0(snr_db: float) -> None:
    x = F.normalize_power(F.complex_normal((64, 4096), generator=_gen(1)))
    state = AWGN().sample_state(64, 4096, snr_db)
    y = AWGN().apply(x, state, generator=_gen(2))
    n0 = 10 ** (-snr_db / 10)
    w = y - x
    assert abs(w.abs().square().mean().item() / n0 - 1) < 0.02
    # CN(0, N0): N0/2 per real dimension, uncorrelated parts
    assert abs(w.real.var().item() / (n0 / 2) - 1) < 0.02
    assert abs(w.imag.var().item() / (n0 / 2) - 1) < 0.02
    assert abs((w.real * w.imag).mean().item()) / (n0 / 2) < 0.02


def test_power_normalisation_per_block() -> None:
    z = torch.randn(8, 100, dtype=torch.complex64) * torch.arange(1, 9).unsqueeze(1)
    p = F.normalize_power(z).abs().square().mean(dim=1)
    torch.testing.assert_close(p, torch.ones(8), rtol=1e-5, atol=1e-5)


def _qpsk_ber(channel: torch.nn.Module, ebno_db: float, n_bits: int, seed: int,
              coherence_one: bool = False) -> float:
    """Uncoded Gray QPSK through ``channel`` with perfect CSI, hard decisions; Sionna maps."""
    mapper, demapper = Mapper("qam", 2), Demapper("app", "qam", 2, hard_out=True)
    g = _gen(seed)
    errors = total = 0
    es_n0_db = ebno_db + 10 * math.log10(2)  # 2 bits per symbol, Es = 1
    for _ in range(max(1, n_bits // 2_000_000)):
        bits = torch.randint(0, 2, (100, 20_000), generator=g).float()
        x = mapper(bits)
        y, state = channel(x, es_n0_db, generator=g)
        n0_eff = state.n0 / state.h.abs().square() if channel.fading else state.n0
        hat = demapper(y, n0_eff)
        errors += int((hat != bits).sum())
        total += bits.numel()
    return errors / total


@pytest.mark.parametrize("ebno_db", [0.0, 2.0, 4.0, 6.0, 8.0])
def test_qpsk_ber_awgn_matches_q_function(ebno_db: float) -> None:
    n_bits = 2_000_000 if ebno_db < 6 else 10_000_000
    ber = _qpsk_ber(AWGN(), ebno_db, n_bits, seed=int(ebno_db))
    theory = float(F.ber_qpsk_awgn(ebno_db))
    assert abs(ber / theory - 1) < 0.05, (ber, theory)


@pytest.mark.parametrize("ebno_db", [0.0, 5.0, 10.0, 20.0])
def test_bpsk_ber_rayleigh_matches_closed_form(ebno_db: float) -> None:
    # Gray QPSK = two BPSK streams at the same Eb/N0; coherence 1 symbol (independent fades),
    # zero-forcing equalisation with perfect CSI -> closed form 0.5 (1 - sqrt(g / (1 + g)))
    ch = Rayleigh(coherence=1, equalizer="zf")
    ber = _qpsk_ber(ch, ebno_db, 4_000_000, seed=10 + int(ebno_db))
    theory = float(F.ber_bpsk_rayleigh(ebno_db))
    assert abs(ber / theory - 1) < 0.05, (ber, theory)


def test_fading_has_unit_mean_power() -> None:
    for ch in (Rayleigh(coherence=1), Rician(k_factor=5.0, coherence=1),
               Rician(k_factor=5.0, los_phase="random", coherence=1)):
        s = ch.sample_state(200, 1000, 10.0, generator=_gen(3))
        assert abs(s.h.abs().square().mean().item() - 1) < 0.01


def test_rician_k_factor_is_los_over_scattered_power() -> None:
    k = 4.0
    s = Rician(k_factor=k, coherence=1).sample_state(100, 2000, 10.0, generator=_gen(4))
    los = s.h.mean()  # LoS term with phase 0
    scattered = (s.h - los).abs().square().mean()
    assert abs(los.abs().square().item() / scattered.item() / k - 1) < 0.03


@pytest.mark.parametrize("ebno_db", [4.0, 8.0])
def test_rician_tends_to_awgn_as_k_grows(ebno_db: float) -> None:
    awgn = float(F.ber_qpsk_awgn(ebno_db))
    gaps = []
    for k in (0.0, 1.0, 10.0, 100.0, 1000.0):
        theory = F.ber_bpsk_rician(ebno_db, k)
        sim = _qpsk_ber(Rician(k_factor=k, coherence=1, equalizer="zf"), ebno_db, 4_000_000, seed=int(k))
        assert abs(sim / theory - 1) < 0.05, (k, sim, theory)
        gaps.append(theory / awgn)
    assert gaps == sorted(gaps, reverse=True)  # monotone towards AWGN
    assert gaps[-1] < 1.06 and gaps[0] > 2  # K=1000 within 6% of AWGN; K=0 (Rayleigh) far off
    assert abs(F.ber_bpsk_rician(ebno_db, 0.0) / float(F.ber_bpsk_rayleigh(ebno_db)) - 1) < 1e-3


def test_estimated_csi_error_variance_is_n0_over_pilots() -> None:
    snr_db, pilots = 5.0, 4
    ch = Rayleigh(csi="estimated", pilots=pilots, coherence=10)
    s = ch.sample_state(400, 1000, snr_db, generator=_gen(5))
    err = (s.h_est - s.h)[:, ::10]  # one estimate per coherence block
    assert abs(err.abs().square().mean().item() / (10 ** (-snr_db / 10) / pilots) - 1) < 0.03


def test_block_fading_is_constant_within_coherence() -> None:
    s = Rayleigh(coherence=16).sample_state(3, 64, 10.0, generator=_gen(6))
    blocks = s.h.reshape(3, 4, 16)
    assert torch.equal(blocks, blocks[..., :1].expand_as(blocks))
    assert not torch.equal(blocks[:, 0, 0], blocks[:, 1, 0])


def test_mmse_equalizer_is_the_linear_mmse_estimate() -> None:
    # for x ~ CN(0,1): E[x | y] = conj(h) y / (|h|^2 + N0); its error is N0 / (|h|^2 + N0)
    ch = Rayleigh(coherence=1, equalizer="mmse")
    g = _gen(7)
    x = F.complex_normal((200, 5000), generator=g)
    y, s = ch(x, 0.0, generator=g)
    mse = (y - x).abs().square().mean()
    theory = (s.n0 / (s.h.abs().square() + s.n0)).mean()
    assert abs(mse.item() / theory.item() - 1) < 0.03


def test_channels_are_differentiable() -> None:
    z = torch.randn(4, 32, dtype=torch.complex64, requires_grad=True)
    for ch in (AWGN(), Rayleigh(), Rician(k_factor=2.0, csi="estimated")):
        y, _ = ch(F.normalize_power(z), 10.0, generator=_gen(8))
        (y.abs().square().sum()).backward()
        assert z.grad is not None and torch.isfinite(z.grad).all()
        z.grad = None


def test_same_seed_same_channel() -> None:
    x = F.normalize_power(torch.randn(2, 16, dtype=torch.complex64))
    y1, _ = Rayleigh()(x, 3.0, generator=_gen(9))
    y2, _ = Rayleigh()(x, 3.0, generator=_gen(9))
    assert torch.equal(y1, y2)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="complex symbols"):
        AWGN()(torch.randn(4, 8), 10.0)
    with pytest.raises(ValueError, match="snr_db"):
        AWGN()(torch.randn(4, 8, dtype=torch.complex64), torch.zeros(3))
    with pytest.raises(ValueError, match="k_factor"):
        Rician(k_factor=-1.0)
    with pytest.raises(ValueError, match="equalizer"):
        Rayleigh(equalizer="ml")
