"""Contract over every registered attack x every codec family (tiny variants): it runs through the
Link, spends exactly its budget (or within it), gives finite outputs of the clean shape, records its
threat model, restores the codec's mode and weights (input attacks: inside the eps ball and the [0, 1] box; on
token ids, and the classifier-only ensemble on the other codecs, a one-line error); universal and transfer attacks do their job on
a shipped codec."""

from __future__ import annotations

import pytest
import torch

from semguard.attacks import AttackResult
from semguard.attacks.sources import attacker_photos
from semguard.channels import AWGN, Rayleigh
from semguard.codecs.zoo import pretrained
from semguard.data.photos import shipped_photos
from semguard.metrics.image import psnr
from semguard.link import Link
from semguard.registry import available, build

CODECS = {
    "adjscc": ({"cbr": 1 / 12, "width": 8}, (2, 3, 32, 32)),
    "softcast": ({"cbr": 1 / 12, "block": 8, "meta": 4}, (2, 3, 32, 32)),
    "analog": ({"cbr": 1 / 12, "block": 8, "meta": 4, "width": 8}, (2, 3, 32, 32)),
    "task": ({"n_symbols": 8, "width": 4}, (2, 1, 28, 28)),
    "deepsc": ({"vocab_size": 40, "d_model": 16, "heads": 2, "layers": 1, "ff": 32}, (2, 6)),
}
AIR = {"surface": "channel", "psr_db": -10.0}
ATTACKS = {  # name -> constructor arguments (tiny)
    "gaussian": AIR,
    "pgd": {**AIR, "steps": 2},
    "pgd-continuation": {**AIR, "steps": 2, "from_db": -15.0},
    "pgd-ladder": {**AIR, "steps": 1, "from_db": -20.0, "continuation_from_db": -15.0},
    "fgsm": {"surface": "symbols", "psr_db": -10.0},
    "pilot": {"psr_db": -5.0, "steps": 2},
    "universal": {**AIR, "steps": 2, "batch": 2},
    "transfer": {**AIR, "steps": 2},
    "apgd": {"surface": "symbols", "psr_db": -10.0, "steps": 3},
    "square": {"surface": "input", "eps": 0.05, "queries": 3},
    "autoattack": {"surface": "input", "eps": 0.05, "steps": 2, "targets": 1, "queries": 2},
}


def test_every_attack_has_a_tiny_case_here() -> None:
    assert set(available("attack")) <= set(ATTACKS) | {"word-substitution"}  # text-only: own tests


def _codec(name: str, seed: int = 0):
    kw, shape = CODECS[name]
    torch.manual_seed(seed)
    codec = build("codec", name, **kw).eval()
    if name == "deepsc":
        src = torch.randint(2, kw["vocab_size"], shape, generator=torch.Generator().manual_seed(seed))
    else:
        src = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    return codec, src


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("codec_name", sorted(CODECS))
def test_attack_contract(attack: str, codec_name: str) -> None:
    codec, src = _codec(codec_name)
    codec.train()  # the attack puts it in eval mode and back
    link = Link(codec, Rayleigh(csi="estimated", pilots=2))
    labels = torch.tensor([1, 3]) if codec_name == "task" else None
    kw = dict(ATTACKS[attack])
    if attack in ("transfer", "pgd-ladder"):
        kw["surrogate"] = _codec(codec_name, seed=1)[0]
    atk = build("attack", attack, **kw)
    if atk.surface == "input" and codec_name == "deepsc":  # token ids: the word-substitution attack's surface
        with pytest.raises(ValueError, match="surface: the input surface perturbs float images"):
            atk(link, src, 10.0)
        return
    if attack == "autoattack" and codec_name != "task":
        with pytest.raises(ValueError, match="objective: autoattack breaks classifiers"):
            atk(link, src, 10.0, labels=labels)
        return
    if attack == "universal":
        atk.fit(link, src, 10.0, labels=labels)
    before = {k: v.clone() for k, v in codec.state_dict().items()}
    r = atk(link, src, 10.0, labels=labels, generator=torch.Generator().manual_seed(0))
    assert isinstance(r, AttackResult) and codec.training
    assert all(torch.equal(before[k], v) for k, v in codec.state_dict().items())
    clean = link(src, 10.0, generator=torch.Generator().manual_seed(0))["output"]
    assert r.output.shape == clean.shape and torch.isfinite(r.output).all()
    tm = r.threat_model
    if atk.surface == "input":  # inside the linf ball and the [0, 1] box
        assert tm.budget == kw["eps"] and tm.unit == "eps" and tm.surface == "input"
        assert (r.measured <= kw["eps"] + 1e-6).all() and ((src + r.perturbation - 0.5).abs() <= 0.5).all()
        return
    assert tm.budget == kw["psr_db"] and tm.unit == "psr_db" and tm.surface == atk.surface
    assert tm.objective == {"task": "task", "deepsc": "semantic"}.get(codec_name, "reconstruction")
    assert (r.measured <= kw["psr_db"] + 1e-3).all()
    if attack != "fgsm":  # random starts and jammers spend the full budget (FGSM: zero where the gradient is)
        torch.testing.assert_close(r.measured, torch.full((2,), kw["psr_db"]), atol=1e-3, rtol=0)


def test_input_attacks_need_float_images() -> None:
    codec, src = _codec("deepsc")
    with pytest.raises(ValueError, match="surface: the input surface perturbs float images"):
        build("attack", "pgd", surface="input", eps=0.1, steps=1)(Link(codec, AWGN()), src, 10.0)


@pytest.fixture(scope="module")
def softcast_case():
    codec = pretrained("softcast-cbr1_6")
    return codec, shipped_photos()[:3], attacker_photos(6, seed=0, include_sklearn=False)


def test_universal_learned_elsewhere_beats_jamming_on_held_out_photos(softcast_case) -> None:
    codec, x, train = softcast_case
    link = Link(codec, AWGN())
    u = build("attack", "universal", surface="channel", psr_db=-10, steps=15, batch=3).fit(link, train, 10.0)
    assert u.fit_seconds is not None and u.delta.shape == (link.n_symbols((3, 256, 256)),)
    g = lambda: torch.Generator().manual_seed(2)
    uni = psnr(u(link, x, 10.0, generator=g()).output, x)
    jam = psnr(build("attack", "gaussian", surface="channel", psr_db=-10)(link, x, 10.0, generator=g()).output, x)
    assert (uni < jam - 3.0).all()
    with pytest.raises(RuntimeError, match="fit"):
        build("attack", "universal", surface="channel", psr_db=-10)(link, x, 10.0)


def test_transfer_from_the_attackers_own_fit_and_whitebox_bound(softcast_case) -> None:
    codec, x, train = softcast_case
    link = Link(codec, AWGN())
    sur = build("codec", "softcast", cbr=1 / 6)
    sur.init_from_images(train)  # fitted on the attacker's photos, not the shipped codec's
    g = lambda: torch.Generator().manual_seed(2)
    tr = psnr(build("attack", "transfer", surrogate=sur, surface="channel", psr_db=-15, steps=5)(
        link, x, 10.0, generator=g()).output, x)
    wb = psnr(build("attack", "pgd", surface="channel", psr_db=-15, steps=5)(link, x, 10.0, generator=g()).output, x)
    jam = psnr(build("attack", "gaussian", surface="channel", psr_db=-15)(link, x, 10.0, generator=g()).output, x)
    assert (tr < jam - 3.0).all()
    assert wb.mean() < tr.mean()  # the white-box attack bounds the transfer attack
