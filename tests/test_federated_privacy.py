"""DP-SGD through Opacus: wrapped once, epsilon as the RDP accountant says, noise calibrated to a target."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("opacus")

from semguard.data.text import WORDNET_ROOT  # noqa: E402
from semguard.federated.client import LocalConfig  # noqa: E402
from semguard.federated.engine import FLConfig, Federation, run_inprocess  # noqa: E402
from semguard.federated.privacy import (  # noqa: E402
    DPTrainer,
    MicrobatchDPTrainer,
    dp_epsilon,
    microbatch_step,
    noise_for_epsilon,
    per_example_grads,
)

torch.set_num_threads(1)


# the DeepSC federations read the WordNet sentences (Debian's wordnet-base); without them those tests skip
needs_wordnet = pytest.mark.skipif(not (WORDNET_ROOT / "data.noun").is_file(), reason="Debian wordnet-base missing")


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


def _deepsc_fed(**kw):
    base = dict(codec="deepsc", clients=2, rounds=1, width=16, layers=1, train_sentences=40, test_size=8,
                root_size=4, local=LocalConfig(steps=1, batch=4, optimizer="sgd", lr=0.5))
    base.update(kw)
    return Federation(FLConfig(**base))


def test_per_example_grads_match_opacus_grad_sample():
    """Microbatches of one give each example's gradient exactly as Opacus' hooks do (sum reduction), on a
    model Opacus can hook: the task codec through the AWGN channel with the noise drawn per example."""
    from opacus import GradSampleModule

    from semguard.registry import build

    fed = Federation(FLConfig(clients=2, rounds=1, width=8, n_symbols=8, test_size=20, root_size=10))
    x, y = fed.client_data(0)
    x, y = x[:5], y[:5]
    snr = torch.tensor([0.0, 5.0, 10.0, 15.0, 20.0])
    channel = build("channel", "awgn")

    def ce(out, target):
        return torch.nn.functional.cross_entropy(out["logits"], target)

    mine, losses = per_example_grads(fed.codec, ce, x, y, channel, snr, generator=torch.Generator().manual_seed(3))
    gsm = GradSampleModule(fed.codec, loss_reduction="sum")
    params = [p for p in fed.codec.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(3)  # the same noise, drawn example by example
    ref: list[list[torch.Tensor]] = [[] for _ in params]
    total = 0.0
    for i in range(5):  # Opacus' hook formulas (not autograd) give each example's gradient
        loss = torch.nn.functional.cross_entropy(gsm(x[i:i + 1], channel, snr[i:i + 1], generator=gen)["logits"],
                                                 y[i:i + 1], reduction="sum")
        loss.backward()
        total += float(loss)
        for r, p in zip(ref, params):
            r.append(p.grad_sample.detach().clone())
        gsm.zero_grad(set_to_none=True)
    assert len(mine) == len(params)
    for g, r, p in zip(mine, ref, params):
        assert g.shape == (5, *p.shape)
        assert torch.allclose(g, torch.cat(r), atol=1e-5)
    assert losses.sum().item() == pytest.approx(total, abs=1e-5)
    gsm._close()


@needs_wordnet
def test_per_example_grads_refuses_mismatched_batch():
    fed = _deepsc_fed()
    x, _ = fed.client_data(0)
    with pytest.raises(ValueError, match="share the batch size"):
        per_example_grads(fed.codec, lambda o, t: o["logits"].sum(), x[:3], x[:3], fed.channel, torch.zeros(2))


@needs_wordnet
def test_deepsc_dp_step_is_clipped_and_noised():
    """A DeepSC federation with DP picks the microbatch trainer.  With no noise its SGD step moves the
    weights by at most lr x clip (each example clipped, then averaged); the same step without DP moves
    them far more; with noise two seeds give different steps."""
    from opacus.optimizers import DPOptimizer

    from semguard.federated.model import get_vector, set_vector
    from semguard.training.tasks import TextTask

    fed = _deepsc_fed(dp_noise=1.0, dp_clip=0.01)
    assert isinstance(fed.trainer(), MicrobatchDPTrainer)
    x, _ = fed.client_data(0)
    x = x[:4, :int((x[:4] != 0).sum(1).max())]
    task = TextTask(x, x[:1])
    start = get_vector(fed.codec).clone()
    snr = torch.full((4,), 10.0)
    lr, clip = 0.5, 0.01

    def moved(noise: float, seed: int, dp: bool = True) -> float:
        set_vector(fed.codec, start)
        params = [p for p in fed.codec.parameters() if p.requires_grad]
        sgd = torch.optim.SGD(params, lr=lr)
        fed.codec.train()
        if dp:
            opt = DPOptimizer(sgd, noise_multiplier=noise, max_grad_norm=clip, expected_batch_size=4,
                              generator=torch.Generator().manual_seed(seed))
            microbatch_step(fed.codec, task.loss, opt, x, x, fed.channel, snr, generator=torch.Generator().manual_seed(1))
        else:
            from semguard.training.loop import train_step

            train_step(fed.codec, task.loss, sgd, x, x, fed.channel, snr, generator=torch.Generator().manual_seed(1))
        return get_vector(fed.codec) - start

    clipped = moved(0.0, 0)
    assert 0 < float(clipped.norm()) <= lr * clip * (1 + 1e-4)
    assert float(moved(0.0, 0, dp=False).norm()) > 20 * float(clipped.norm())
    a, b = moved(1.0, 0), moved(1.0, 1)
    assert not torch.allclose(a, b) and float((a - clipped).norm()) > 0  # the noise is there, seeded
    assert float(a.norm()) > float(clipped.norm())


@pytest.mark.slow
@needs_wordnet
def test_deepsc_dp_run_reports_epsilon():
    cfg = FLConfig(codec="deepsc", clients=3, rounds=2, width=16, layers=1, train_sentences=60, test_size=8,
                   root_size=4, local=LocalConfig(steps=2, batch=4, optimizer="sgd", lr=0.5), dp_epsilon=4.0)
    rec = run_inprocess(cfg)
    eps = [r["epsilon"] for r in rec["rounds"]]
    assert all(r["replies"] == 3 for r in rec["rounds"])
    assert eps[0] < eps[1] and abs(eps[1] - 4.0) < 0.2
    assert 0 <= rec["rounds"][-1]["bleu1"] <= 1
