"""Training options: learning-rate warm-up, bfloat16 autocast, starting from exported weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from semguard import build
from semguard.cli.main import main
from semguard.codecs import zoo
from semguard.data.images import CropSampler, list_images, load_image
from semguard.training.loop import TrainConfig, train
from semguard.training.tasks import ImageTask


def test_warmup_then_cosine_by_hand() -> None:
    cfg = TrainConfig(steps=100, lr=1e-3, lr_min=1e-5, warmup=10)
    assert cfg.lr_at(0) == pytest.approx(1e-4)
    assert cfg.lr_at(4) == pytest.approx(5e-4)
    assert cfg.lr_at(9) == pytest.approx(1e-3)
    # after warm-up the cosine runs on the global step: at step 50 it is half way down
    assert cfg.lr_at(50) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi / 2)))
    assert cfg.lr_at(100) == pytest.approx(1e-5)
    assert TrainConfig(steps=100, lr=1e-3).lr_at(0) == pytest.approx(1e-3)  # no warm-up by default


def test_channel_physics_stay_float32_under_bf16_autocast() -> None:
    codec, awgn = build("codec", "adjscc", cbr=1 / 6, width=8), build("channel", "awgn")
    x = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        sym = codec.encode(x, 10.0)
        y, _ = awgn(sym, 10.0, generator=torch.Generator().manual_seed(1))
    assert sym.dtype == y.dtype == torch.complex64
    assert float(sym.abs().square().mean(1).min()) == pytest.approx(1.0, rel=1e-4)  # unit power per block
    assert float((y - sym).abs().square().mean()) == pytest.approx(0.1, rel=0.03)  # N0 at 10 dB, 8192 samples


def _photos(root: Path) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir()
    # smooth images (a ramp plus a little noise) so a few steps measurably lower the loss
    yy, xx = np.mgrid[0:48, 0:64]
    for i in range(3):
        base = np.stack([xx * 2, yy * 3, (xx + yy) * 1.5], -1) + 30 * i
        img = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"{i}.png")
    return root


def test_bf16_training_keeps_float32_weights_and_learns_like_float32(tmp_path: Path) -> None:
    imgs = [load_image(p) for p in list_images(_photos(tmp_path / "p"))]
    task = ImageTask(CropSampler(imgs, crop=32, short_sides=(48,)), [imgs[0][:, :32, :32].float() / 255])
    awgn = build("channel", "awgn")
    g = torch.Generator().manual_seed(1234)
    torch.manual_seed(0)
    untrained = task.validate(build("codec", "adjscc", cbr=1 / 12, width=8), awgn, 20.0, torch.device("cpu"), g)
    final = {}
    for bf16 in (False, True):
        torch.manual_seed(0)
        codec = build("codec", "adjscc", cbr=1 / 12, width=8)
        cfg = TrainConfig(steps=60, batch=8, lr=5e-3, bf16=bf16, val_every=60, ckpt_every=60, val_snr_db=(20.0,))
        out = train(codec, task, [("awgn", awgn)], cfg, tmp_path / f"ck{bf16}", progress=False)
        assert all(p.dtype == torch.float32 for p in codec.parameters())
        final[bf16] = out["history"][-1]["awgn@20dB"]
    assert final[False] > untrained + 3.0
    assert final[True] > untrained + 3.0
    assert abs(final[True] - final[False]) < 0.5  # same seed, same batches: bf16 only rounds the forward pass


def test_init_from_exported_weights_and_config_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = _photos(tmp_path / "p")
    base = ["train", "adjscc", "--data", str(photos), "--cbr", str(1 / 12), "--crop", "32", "--batch", "2",
            "--val-every", "1", "--ckpt-every", "1", "--no-progress", "--threads", "1", "--steps", "1"]
    w = tmp_path / "w.safetensors"
    assert main(base + ["--width", "4", "--out", str(tmp_path / "a"), "--export", str(w)]) == 0
    trained = zoo.load_weights(w)
    with safe_open(str(w), framework="pt") as f:
        meta = f.metadata()
    # the weights say how they were made: steps, data, channels and the whole training config
    assert meta["trained_steps"] == "1" and meta["channels"] == "awgn,rayleigh"
    assert json.loads(meta["train_config"])["bf16"] is False and json.loads(meta["train_config"])["steps"] == 1
    # a fine-tuning run starts from exactly those weights (lr 0 keeps them)
    w2 = tmp_path / "w2.safetensors"
    assert main(base + ["--width", "4", "--out", str(tmp_path / "b"), "--init", str(w), "--lr", "0",
                        "--export", str(w2)]) == 0
    again = zoo.load_weights(w2)
    for k, v in trained.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    # a different width is refused with one line naming both configs
    assert main(base + ["--width", "8", "--out", str(tmp_path / "c"), "--init", str(w)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--init" in err[0] and '"width": 4' in err[0] and '"width": 8' in err[0]


def test_init_from_a_zoo_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = _photos(tmp_path / "p")
    w = tmp_path / "w.safetensors"
    args = ["train", "adjscc", "--data", str(photos), "--cbr", str(1 / 12), "--width", "64", "--residual", "--crop", "32",
            "--steps", "0", "--no-progress", "--threads", "1", "--out", str(tmp_path / "a")]
    assert main(args + ["--init", "adjscc-cbr1_12", "--export", str(w)]) == 0
    shipped = zoo.pretrained("adjscc-cbr1_12").state_dict()
    for k, v in zoo.load_weights(w).state_dict().items():
        assert torch.equal(v, shipped[k]), k
    capsys.readouterr()
    assert main(args + ["--init", "no-such-weights", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-weights" in err[0]


def test_residual_flag_reaches_the_exported_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = _photos(tmp_path / "p")
    w = tmp_path / "w.safetensors"
    args = ["train", "adjscc", "--data", str(photos), "--cbr", str(1 / 12), "--width", "4", "--crop", "32",
            "--steps", "2", "--batch", "2", "--no-progress", "--threads", "1", "--out", str(tmp_path / "a")]
    assert main(args + ["--residual", "--export", str(w)]) == 0
    assert zoo.load_weights(w).config["residual"] is True
    assert main(args + ["--downsample", "16", "--export", str(w), "--out", str(tmp_path / "d")]) == 0
    assert zoo.load_weights(w).config["downsample"] == 16
    capsys.readouterr()
    for flag in (["--residual"], ["--downsample", "8"]):
        bad = ["train", "task", "--data", "fashion-mnist", *flag, "--steps", "0", "--out", str(tmp_path / "t")]
        assert main(bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and flag[0] in err[0] and "task" in err[0]


def test_softcast_is_fitted_with_zero_steps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = _photos(tmp_path / "p")
    w = tmp_path / "s.safetensors"
    args = ["train", "softcast", "--data", str(photos), "--cbr", str(1 / 6), "--crop", "32", "--no-progress",
            "--threads", "1", "--out", str(tmp_path / "a"), "--export", str(w)]
    assert main(args + ["--steps", "0"]) == 0
    fitted = zoo.load_weights(w)
    assert fitted.config["block"] == 16 and float(fitted.log_rho0) != 0  # the PCA fit ran
    capsys.readouterr()
    assert main(args + ["--steps", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no trainable parameters" in err[0]


def test_psnr_objective_is_minus_the_mean_per_crop_psnr() -> None:
    from semguard.metrics.image import psnr
    from semguard.training.tasks import ImageTask, mse_loss, neg_psnr_loss

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 16, 16, generator=gen)
    noise = torch.randn(4, 3, 16, 16, generator=gen) * torch.tensor([0.3, 0.1, 0.03, 0.01]).view(4, 1, 1, 1)
    out = {"x_hat": (x + noise).clamp(0, 1)}
    torch.testing.assert_close(neg_psnr_loss(out, x), -psnr(out["x_hat"], x).mean())
    # the batch MSE is ruled by the noisiest crop; the PSNR objective weighs all four alike
    per = (out["x_hat"] - x).square().flatten(1).mean(1)
    assert float(mse_loss(out, x)) == pytest.approx(float(per.mean()), rel=1e-5)
    assert per[0] / per.sum() > 0.8
    with pytest.raises(ValueError, match="objective"):
        ImageTask(None, [], objective="l1")  # type: ignore[arg-type]


def test_analog_grows_deeper_from_shallower_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = _photos(tmp_path / "p")
    base = ["train", "analog", "--data", str(photos), "--cbr", str(1 / 6), "--width", "8", "--crop", "32",
            "--batch", "2", "--no-progress", "--threads", "1"]
    small, big = tmp_path / "d2.safetensors", tmp_path / "d4.safetensors"
    assert main(base + ["--depth", "2", "--steps", "2", "--out", str(tmp_path / "a"), "--export", str(small)]) == 0
    assert main(base + ["--depth", "4", "--steps", "0", "--init", str(small), "--out", str(tmp_path / "b"),
                        "--export", str(big)]) == 0
    printed = capsys.readouterr().out
    assert "grown from" in printed and '"depth": 2' in printed
    a, b = zoo.load_weights(small).eval(), zoo.load_weights(big).eval()
    assert b.config["depth"] == 4 and len(b.refiner.convs) == 4
    x = torch.rand(2, 3, 32, 32)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    with torch.no_grad():
        torch.testing.assert_close(b(x, build("channel", "awgn"), 5.0, generator=g2)["x_hat"],
                                   a(x, build("channel", "awgn"), 5.0, generator=g1)["x_hat"])  # new stages: identity
    out = b.train()(x, build("channel", "awgn"), 5.0)["x_hat"]
    out.square().mean().backward()
    assert b.refiner.convs[3].weight.grad.abs().sum() > 0                  # and they learn
    with pytest.raises(ValueError, match="can only grow the refinement"):
        build("codec", "analog", cbr=1 / 6, width=16, depth=4).grow_from(a)
    with pytest.raises(ValueError, match="can only grow the refinement"):
        build("codec", "analog", cbr=1 / 6, width=8, depth=1).grow_from(a)             # shallower
    # an encoder adapter added to the 2-stage codec: it sends the same symbols until it trains
    enc = tmp_path / "enc.safetensors"
    assert main(base + ["--depth", "2", "--enc-width", "8", "--steps", "0", "--init", str(small),
                        "--out", str(tmp_path / "e"), "--export", str(enc)]) == 0
    c = zoo.load_weights(enc).eval()
    assert c.config["enc_width"] == 8 and c.adapter is not None and a.adapter is None
    with torch.no_grad():
        torch.testing.assert_close(c.encode(x, 5.0), a.encode(x, 5.0))
    c.train()(x, build("channel", "awgn"), 5.0)["x_hat"].square().mean().backward()
    assert c.adapter.out.weight.grad.abs().sum() > 0                         # the channel passes gradients back
    with pytest.raises(ValueError, match="can only grow"):
        a.grow_from(c)                                                        # removing it is not growing
    assert main(["train", "adjscc", "--data", str(photos), "--depth", "8", "--steps", "0",
                 "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--depth" in err[0] and "adjscc" in err[0]


def test_noise_sigma_augments_training_and_validation_batches() -> None:
    from semguard.training.tasks import ClassifyTask

    x = torch.full((50, 1, 28, 28), 0.5)
    y = torch.zeros(50, dtype=torch.long)
    task = ClassifyTask(x, y, x, y, noise_sigma=0.25)
    xb, _ = task.batch(40, torch.Generator().manual_seed(0))
    noise = (xb - 0.5).flatten()
    # 31360 draws of N(0, 0.25^2), unclipped: the std within 2 %, values outside [0, 1] kept
    assert float(noise.std()) == pytest.approx(0.25, rel=0.02) and float(xb.min()) < 0.0
    assert torch.equal(ClassifyTask(x, y, x, y).batch(4, torch.Generator().manual_seed(0))[0], x[:4])
    with pytest.raises(ValueError, match="noise_sigma"):
        ClassifyTask(x, y, x, y, noise_sigma=-0.1)


def test_noise_sigma_is_refused_where_it_does_not_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad, want in ((["analog", "--data", "photos"], "applies to the task codec"),
                      (["task", "--data", "fashion-mnist", "--adv", "input", "--adv-eps", "0.1"], "one input-side")):
        assert main(["train", *bad, "--noise-sigma", "0.25", "--steps", "1", "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--noise-sigma" in err[0] and want in err[0], err
    assert not (tmp_path / "o").exists()
