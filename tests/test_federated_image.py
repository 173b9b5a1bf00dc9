"""The image federation: DeepJSCC on photo crops through the same clients, engine and Flower apps."""

from __future__ import annotations

import pytest
import torch

from semguard.federated.client import LocalConfig, local_train
from semguard.federated.engine import Federation, FLConfig, evaluate, run_inprocess
from semguard.federated.image import TEST_PHOTOS, TRAIN_PHOTOS
from semguard.federated.model import get_vector, set_vector
from semguard.registry import build

torch.set_num_threads(1)
TINY = dict(codec="deepjscc", clients=3, rounds=2, width=4, crop=16, train_crops=24, test_size=16, root_size=10,
            local=LocalConfig(steps=2, batch=8))


def _mse(codec, x, seed=5):
    codec.eval()
    with torch.no_grad():
        out = codec(x, build("channel", "awgn"), 10.0, generator=torch.Generator().manual_seed(seed))["x_hat"]
    return float((out - x).square().mean())


def _skew(fed):
    """Mean total-variation distance between a client's photo mix and the pool's."""
    pool = torch.bincount(fed.labels, minlength=len(TRAIN_PHOTOS)).double()
    pool = pool / pool.sum()
    tv = [0.5 * (torch.bincount(fed.labels[p], minlength=len(TRAIN_PHOTOS)) / len(p) - pool).abs().sum()
          for p in fed.parts]
    return float(torch.stack(tv).mean())


def test_split_is_by_photo_and_disjoint_from_the_test_photos():
    fed = Federation(FLConfig(**TINY, alpha=0.1))
    assert not set(TRAIN_PHOTOS) & set(TEST_PHOTOS)
    assert sum(len(p) for p in fed.parts) == len(TRAIN_PHOTOS) * 24
    x, y = fed.client_data(0)
    assert torch.equal(x, y) and x.shape[1:] == (3, 16, 16)  # the target is the crop itself
    assert _skew(fed) > 0.3 > _skew(Federation(FLConfig(**TINY, alpha=100.0)))  # non-IID by photo


def test_local_update_lowers_the_local_loss():
    fed = Federation(FLConfig(**TINY))
    x, y = fed.client_data(1)
    before = _mse(fed.codec, x)
    local_train(fed.codec, x, y, LocalConfig(steps=30, batch=8, lr=3e-3), seed=0)
    after = _mse(fed.codec, x)
    assert after < 0.9 * before, (before, after)


def test_run_reports_psnr_per_round_and_matches_flower():
    pytest.importorskip("flwr")
    from semguard.federated.flower_app import run_flower_local

    cfg = FLConfig(**TINY, malicious=1, attack="sign_flip", strategy="median")
    a, b = run_inprocess(cfg), run_flower_local(cfg)
    assert set(a["final"]) == {"psnr"} and all(5.0 < r["psnr"] < 40.0 for r in a["rounds"])
    assert torch.equal(a["final_vector"], b["final_vector"])
    fed = Federation(cfg)
    assert evaluate(fed, a["final_vector"])["psnr"] == pytest.approx(a["final"]["psnr"])
    set_vector(fed.codec, fed.initial)
    assert torch.equal(get_vector(fed.codec), fed.initial)


@pytest.mark.parametrize("kw,field", [(dict(malicious=1, attack="label_flip"), "--attack"),
                                      (dict(malicious=1, attack="scaling"), "--attack"),
                                      (dict(cbr=0.3), "--cbr"), (dict(crop=30), "--crop"),
                                      (dict(codec="gpt"), "--codec")])
def test_bad_image_configs_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        FLConfig(**{**TINY, **kw})
