"""DP-SGD through Opacus: wrapped once, epsilon as the RDP accountant says, noise calibrated to a target."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("opacus")

from semguard.federated.client import LocalConfig  # noqa: E402
from semguard.federated.engine import FLConfig, Federation, run_inprocess  # noqa: E402
from semguard.federated.privacy import DPTrainer, dp_epsilon, noise_for_epsilon  # noqa: E402

torch.set_num_threads(1)


def test_epsilon_monotone_in_steps():
    z, rates, delta = 1.0, [0.1, 0.2], 1e-3
    assert 0 < dp_epsilon(z, rates, 10, delta) < dp_epsilon(z, rates, 30, delta) < dp_epsilon(z, rates, 50, delta)
    assert dp_epsilon(2.0, rates, 50, delta) < dp_epsilon(1.0, rates, 50, delta)
    assert dp_epsilon(1.0, [0.1, 0.2], 50, delta) == dp_epsilon(1.0, [0.2], 50, delta)  # the worst client


@pytest.mark.slow
def test_epsilon_calibration():
    rates, steps, delta = [0.1, 0.2], 50, 1e-3
    for target in (1.0, 4.0, 8.0):
        z = noise_for_epsilon(target, rates, steps, delta)
        assert abs(dp_epsilon(z, rates, steps, delta) - target) < 0.05 * target
    z = noise_for_epsilon(4.0, rates, steps, delta)
    assert dp_epsilon(z, rates, 10, delta) < dp_epsilon(z, rates, 30, delta) < dp_epsilon(z, rates, 50, delta)
    assert noise_for_epsilon(1.0, rates, steps, delta) > noise_for_epsilon(8.0, rates, steps, delta)


@pytest.mark.slow
def test_dp_run_wraps_once_and_reports_epsilon():
    cfg = FLConfig(clients=3, rounds=2, width=8, n_symbols=8, local=LocalConfig(steps=2, batch=16), test_size=200,
                   root_size=50, dp_epsilon=4.0)
    fed = Federation(cfg)
    trainer = fed.trainer()
    assert isinstance(trainer, DPTrainer)
    rec = run_inprocess(cfg, fed=fed)
    eps = [r["epsilon"] for r in rec["rounds"]]
    assert all(r["replies"] == 3 for r in rec["rounds"])  # no client failed under Opacus
    assert eps[0] < eps[1] and abs(eps[1] - 4.0) < 0.2
    # the trainer used by the run wrapped its private model once over every client and round
    t = DPTrainer(noise_multiplier=1.0, max_grad_norm=1.0, delta=1e-3)
    x, y = fed.client_data(0)
    for s in range(3):
        t(fed.codec, x, y, cfg.local, seed=s)
    assert t.wraps == 1
    hooks = sum(len(m._forward_hooks) for m in t._gsm.modules())
    t(fed.codec, x, y, cfg.local, seed=9)
    assert sum(len(m._forward_hooks) for m in t._gsm.modules()) == hooks  # no hooks stacked per round


def test_epsilon_matches_opacus_privacy_engine():
    """Our accounting of a client's steps is what Opacus' own PrivacyEngine reports after the same steps."""
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(100, 4, generator=gen), torch.randint(0, 2, (100,), generator=gen))
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    engine = PrivacyEngine(accountant="rdp")
    model, opt, loader = engine.make_private(module=model, optimizer=opt, data_loader=DataLoader(data, batch_size=20),
                                             noise_multiplier=1.3, max_grad_norm=1.0)
    steps = 0
    for _ in range(3):
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            steps += 1
    assert steps == 15
    assert dp_epsilon(1.3, [20 / 100], steps, 1e-3) == pytest.approx(engine.get_epsilon(1e-3), rel=1e-9)


def test_run_epsilon_grows_with_rounds():
    cfg = FLConfig(clients=5, rounds=4, local=LocalConfig(steps=3, batch=16), dp_noise=1.2)
    fed = Federation(cfg)
    eps = [fed.epsilon_at(r) for r in range(1, 5)]
    assert all(a < b for a, b in zip(eps, eps[1:]))
    q = max(fed.sample_rates)
    assert eps[-1] == pytest.approx(dp_epsilon(1.2, [q], 12, 1e-3))  # 4 rounds x 3 local steps, worst client
