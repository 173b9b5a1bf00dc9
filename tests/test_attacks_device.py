"""The attack library draws on the source's device: its own generator, the replayed channel draw and the
evaluation generators follow the tensors, and a generator on another device is a one-line error.
The CUDA cases run only where CUDA is present (semguard's CI machines have none; untested there)."""

from __future__ import annotations

import pytest
import torch

from semguard.attacks.base import attacker_generator, check_generator
from semguard.attacks.evaluate import robust_fidelity
from semguard.channels import Rayleigh
from semguard.link import Link
from semguard.registry import build

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (untested without it)")


def test_attacker_generator_is_one_stream_per_seed_on_the_device_asked() -> None:
    a, b = attacker_generator(3), attacker_generator(3, "cpu")
    assert a.device == torch.device("cpu") == b.device
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))
    # not the channel generator's stream for the same seed: the attack never replays Bob's noise
    assert not torch.equal(torch.rand(5, generator=attacker_generator(3)),
                           torch.rand(5, generator=torch.Generator().manual_seed(3)))
    g = torch.Generator()
    assert check_generator(g, torch.zeros(2)) is g and check_generator(None, torch.zeros(2)) is None


@cuda
def test_generator_on_another_device_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match=r"generator: it draws on cpu, the source is on cuda"):
        check_generator(torch.Generator(), torch.zeros(2, device="cuda"))


@cuda
@pytest.mark.parametrize("name,kw", [("pgd", {"surface": "channel", "psr_db": -10.0, "steps": 3}),
                                     ("pilot", {"psr_db": -5.0, "steps": 3}),
                                     ("gaussian", {"surface": "symbols", "psr_db": -10.0}),
                                     ("apgd", {"surface": "input", "eps": 0.05, "steps": 3})])
def test_attacks_run_on_cuda_and_spend_their_budget(name: str, kw: dict) -> None:
    torch.manual_seed(0)
    codec = build("codec", "task", n_symbols=8, width=4).eval().cuda()
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)).cuda()
    y = torch.randint(0, 10, (4,), generator=torch.Generator().manual_seed(1)).cuda()
    link = Link(codec, Rayleigh(csi="estimated"))
    atk = build("attack", name, **kw)
    r = robust_fidelity(link, x, atk, 10.0, metric=lambda o, t: (o.argmax(1) == t).float(), labels=y)
    assert r["measured_budget"] <= atk.budget + 1e-4
    if name != "apgd":
        assert r["measured_budget"] == pytest.approx(atk.budget, abs=1e-3)


@cuda
def test_universal_fits_on_cuda() -> None:
    torch.manual_seed(0)
    codec = build("codec", "task", n_symbols=8, width=4).eval().cuda()
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(0)).cuda()
    y = torch.randint(0, 10, (6,), generator=torch.Generator().manual_seed(1)).cuda()
    link = Link(codec, Rayleigh(csi="estimated"))
    u = build("attack", "universal", surface="channel", psr_db=-10.0, steps=3, batch=2).fit(link, x, 10.0, labels=y)
    assert u.delta.device.type == "cuda"
    r = u(link, x, 10.0, labels=y)
    assert torch.allclose(r.measured, torch.full_like(r.measured, -10.0), atol=1e-3)
