"""Adversarial training of the image family (``semguard train analog ... --adv symbols``): on a tiny
analog codec fitted to crops of the shipped photos that are not evaluated, symbol-domain adversarial
training from the same start, seed and step count as a clean run leaves more PSNR under white-box
symbol PGD on crops of the held-out photos, and the attack takes less off; the crafted perturbation
spends its budget exactly on the analog codec's symbols.  The gain is small on purpose of the codec:
the attack spends most of its budget on the scale symbols, which the frozen linear path decodes by
formula (docs/defenses.md, "The default image codec")."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as nnf

from semguard.attacks.evaluate import robust_fidelity
from semguard.channels import AWGN
from semguard.channels import functional as F
from semguard.data.images import CropSampler
from semguard.data.photos import shipped_photos
from semguard.link import Link
from semguard.metrics import psnr
from semguard.registry import build
from semguard.training.adversarial import AdvSpec, craft
from semguard.training.loop import TrainConfig, train
from semguard.training.tasks import ImageTask


@pytest.fixture(scope="module")
def photos() -> tuple[ImageTask, torch.Tensor]:
    ph = nnf.avg_pool2d(shipped_photos(), 4)  # 64 x 64: a test-sized image task
    # held out: the four 32 x 32 quarters of the first two photos (bench/_photos.split_photos's evaluated ones)
    held = torch.cat([ph[:2, :, :32, :32], ph[:2, :, 32:, 32:], ph[:2, :, :32, 32:], ph[:2, :, 32:, :32]])
    sampler = CropSampler([(p * 255).round().to(torch.uint8) for p in ph[2:]], crop=32, short_sides=(64,))
    return ImageTask(sampler, list(ph[2:4]), objective="psnr"), held


def _cfg(steps: int, lr: float, adv: AdvSpec | None = None) -> TrainConfig:
    return TrainConfig(steps=steps, batch=16, lr=lr, snr_min_db=10, snr_max_db=10, seed=0, val_every=10**6,
                       ckpt_every=10**6, val_snr_db=(10.0,), adv=adv)


@pytest.mark.slow
def test_symbol_adversarial_training_lowers_the_attacks_effect_on_held_out_photos(photos, tmp_path) -> None:
    task, held = photos
    torch.manual_seed(0)
    base = build("codec", "analog", cbr=1 / 6, block=8, width=8, depth=1, meta=4)
    base.init_from_images(task.sampler.sample(256, torch.Generator().manual_seed(1)))
    train(base, task, [("awgn", AWGN())], _cfg(100, 3e-3), tmp_path / "base", resume=False, progress=False)
    attack = build("attack", "pgd", surface="symbols", psr_db=-10.0, steps=10)
    got = {}
    for name, adv in (("clean", None), ("adv", AdvSpec("symbols", psr_db=-10.0, steps=2, weight=0.5))):
        codec = copy.deepcopy(base)  # the same start for both
        train(codec, task, [("awgn", AWGN())], _cfg(100, 1e-3, adv), tmp_path / name, resume=False, progress=False)
        r = robust_fidelity(Link(codec.eval(), AWGN()), held, attack, 10.0, metric=psnr, batch=8)
        got[name] = (r["clean"], r["attacked"])
    # measured (dB, clean -> attacked): clean-trained 24.10 -> 12.16, adversarially trained 22.55 -> 12.84
    assert got["adv"][1] > got["clean"][1] + 0.3, got
    assert got["adv"][0] - got["adv"][1] < got["clean"][0] - got["clean"][1] - 1.0, got
    assert got["adv"][0] > got["clean"][0] - 3.0, got  # half clean loss bounds the clean cost


def test_crafted_symbol_perturbation_spends_the_budget_on_an_analog_codec(photos) -> None:
    task, held = photos
    x = held[:4]
    torch.manual_seed(0)
    codec = build("codec", "analog", cbr=1 / 6, block=8, width=8, depth=1, meta=4)
    codec.init_from_images(task.sampler.sample(64, torch.Generator().manual_seed(1)))
    codec.train()
    snr = torch.full((4,), 10.0)
    src, delta = craft(Link(codec, AWGN()), x, x, snr, AdvSpec("symbols", psr_db=-10.0, steps=2),
                       channel_state=torch.Generator().manual_seed(3).get_state(), seed=0)
    assert codec.training and src is x and delta is not None
    with torch.no_grad():
        sym = codec.eval().encode(x, snr)
    assert delta.shape == sym.shape and torch.is_complex(delta)
    assert torch.allclose(F.psr_db(delta, sym), torch.full((4,), -10.0), atol=1e-3)
    # the attack moves the decoded image: PSNR with the perturbation below PSNR without it (same draw)
    link = Link(codec, AWGN())
    with torch.no_grad():
        clean = link(x, snr, generator=torch.Generator().manual_seed(3))["output"]
        hit = link(x, snr, generator=torch.Generator().manual_seed(3), symbols=sym + delta)["output"]
    assert float(psnr(hit, x).mean()) < float(psnr(clean, x).mean()) - 1.0
