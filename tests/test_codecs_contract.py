"""Contract tests over every registered codec (tiny variants): shapes, unit power, gradients,
determinism, clear errors at the public boundary."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from semguard.channels import AWGN, Rayleigh
from semguard.registry import available, build

TINY = {
    "deepjscc": ({"cbr": 1 / 12, "width": 8}, (2, 3, 32, 48)),
    "adjscc": ({"cbr": 1 / 12, "width": 8}, (2, 3, 32, 48)),
    "task": ({"n_symbols": 8, "width": 4}, (2, 1, 28, 28)),
    "softcast": ({"cbr": 1 / 12, "block": 8, "meta": 4}, (2, 3, 32, 48)),
    "analog": ({"cbr": 1 / 12, "block": 8, "meta": 4, "width": 8}, (2, 3, 32, 48)),
    "switched": ({"low": {"codec": "adjscc", "config": {"cbr": 1 / 12, "width": 8}},
                  "high": {"codec": "analog", "config": {"cbr": 1 / 12, "block": 8, "meta": 4, "width": 8}},
                  "threshold_db": 5.0}, (2, 3, 32, 48)),
    "spread": ({"inner": {"codec": "analog", "config": {"cbr": 1 / 12, "block": 8, "meta": 4, "width": 8}}},
               (2, 3, 32, 48)),
}


def test_every_codec_has_a_tiny_variant_here() -> None:
    assert set(available("codec")) <= set(TINY) | {"deepsc"}  # deepsc has its own tests


def _codec_and_source(name: str) -> tuple[torch.nn.Module, torch.Tensor]:
    kw, shape = TINY[name]
    torch.manual_seed(0)
    return build("codec", name, **kw), torch.rand(shape)


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("channel", [AWGN(), Rayleigh(csi="estimated")], ids=["awgn", "rayleigh"])
def test_forward_contract(name: str, channel: torch.nn.Module) -> None:
    codec, x = _codec_and_source(name)
    out = codec(x, channel, torch.tensor([0.0, 15.0]))
    n = codec.n_symbols(tuple(x.shape[1:]))
    assert set(out) == {codec.output_key, "symbols", "received", "state"}
    assert out["symbols"].shape == (2, n) and out["symbols"].dtype == torch.complex64
    torch.testing.assert_close(out["symbols"].abs().square().mean(1), torch.ones(2), rtol=1e-4, atol=1e-4)
    assert out["received"].shape == (2, n)
    y = out[codec.output_key]
    assert torch.isfinite(y).all()
    if codec.output_key == "x_hat":
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    else:
        assert y.shape == (2, 10)
    if not any(p.requires_grad for p in codec.parameters()):
        assert name == "softcast"  # fitted, not trained: the only codec with nothing to learn
        return
    loss = y.square().mean()
    loss.backward()
    grads = [p.grad for p in codec.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", sorted(TINY))
def test_encode_decode_compose_like_forward(name: str) -> None:
    codec, x = _codec_and_source(name)
    codec.eval()
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    ref = codec(x, AWGN(), 5.0, generator=g1)[codec.output_key]
    sym = codec.encode(x, 5.0)
    y, state = AWGN()(sym, 5.0, generator=g2)
    out = codec.decode(y, state, **codec.decode_kwargs(x))
    torch.testing.assert_close(out, ref)


def test_cbr_sets_channel_uses() -> None:
    for cbr, c in ((1 / 6, 8), (1 / 12, 4), (1 / 24, 2)):
        codec = build("codec", "deepjscc", cbr=cbr, width=4)
        n = codec.n_symbols((3, 256, 256))
        assert n == c * 64 * 64
        assert n / (3 * 256 * 256) == pytest.approx(cbr)


def test_snr_adaptive_decoder_uses_its_csi() -> None:
    codec, x = _codec_and_source("adjscc")
    codec.eval()
    sym = codec.encode(x, 10.0)
    y, state = Rayleigh()(sym, 10.0, generator=torch.Generator().manual_seed(0))
    a = codec.decode(y, state, size=(32, 48))
    faded = type(state)(h=state.h, h_est=state.h_est * 0.1, snr_db=state.snr_db, n0=state.n0)
    b = codec.decode(y, faded, size=(32, 48))
    assert not torch.allclose(a, b)  # the attention modules react to the block's effective SNR


@pytest.mark.parametrize("bad,match", [
    (torch.rand(2, 1, 32, 32), "RGB"),
    (torch.rand(2, 3, 30, 32), "multiples of 4"),
    (torch.rand(3, 32, 32), "RGB"),
])
def test_image_codec_rejects_wrong_shapes(bad: torch.Tensor, match: str) -> None:
    codec, _ = _codec_and_source("deepjscc")
    with pytest.raises(ValueError, match=match):
        codec(bad, AWGN(), 10.0)


def test_task_codec_rejects_wrong_shape_and_cbr_is_validated() -> None:
    codec, _ = _codec_and_source("task")
    with pytest.raises(ValueError, match=r"\[batch, 1, 28, 28\]"):
        codec(torch.rand(2, 3, 28, 28), AWGN(), 10.0)
    with pytest.raises(ValueError, match="cbr"):
        build("codec", "deepjscc", cbr=0.1)
    with pytest.raises(ValueError, match="symbols"):
        c, x = _codec_and_source("deepjscc")
        c.decode(torch.zeros(2, 7, dtype=torch.complex64), AWGN().sample_state(2, 7, 1.0), size=(32, 48))


def test_registry_errors_list_choices() -> None:
    with pytest.raises(KeyError, match="available: .*adjscc"):
        build("codec", "nope")
    with pytest.raises(KeyError, match="families"):
        available("nope")


@pytest.mark.parametrize("name", ["deepjscc", "adjscc"])
def test_residual_stages_add_their_input(name: str) -> None:
    torch.manual_seed(0)
    plain = build("codec", name, cbr=1 / 12, width=8)
    res = build("codec", name, cbr=1 / 12, width=8, residual=True)
    assert "residual" not in plain.config and res.config["residual"] is True  # old files keep their config
    z = torch.randn(2, 8, 6, 6)
    snr = torch.tensor([0.0, 15.0])
    for codec in (plain, res):
        for stage in (codec.enc[2], codec.enc[3], codec.dec[1], codec.dec[2]):
            torch.nn.init.zeros_(stage.conv.weight)
            torch.nn.init.zeros_(stage.conv.bias)
    # a zeroed branch gives 0 (conv -> GDN -> PReLU -> attention); the shortcut passes z through
    for stage in (res.enc[2], res.enc[3], res.dec[1], res.dec[2]):
        torch.testing.assert_close(stage(z, snr), z, rtol=0, atol=0)
    for stage in (plain.enc[2], plain.dec[1]):
        assert stage(z, snr).abs().max() == 0
    # the strided and channel-changing stages never get a shortcut
    assert not res.enc[0].residual and not res.enc[1].residual and not res.dec[0].residual and not res.dec[3].residual


def _trains_and_round_trips(codec: torch.nn.Module, tmp_path: Path) -> dict:
    """An adjscc variant on [2, 3, 32, 48] over estimated-CSI Rayleigh: shapes, finite gradients
    everywhere, and a weight file that rebuilds the same codec; returns the forward output."""
    from semguard.codecs.zoo import load_weights, save_weights

    x = torch.rand(2, 3, 32, 48)
    out = codec(x, Rayleigh(csi="estimated"), torch.tensor([0.0, 15.0]))
    assert out["x_hat"].shape == x.shape
    out["x_hat"].square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in codec.parameters())
    save_weights(codec, "adjscc", tmp_path / "w.safetensors")
    again = load_weights(tmp_path / "w.safetensors")
    assert again.config == codec.config
    codec.eval()
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    torch.testing.assert_close(again(x, AWGN(), 5.0, generator=g1)["x_hat"],
                               codec(x, AWGN(), 5.0, generator=g2)["x_hat"])
    return out


def test_residual_codec_forward_gradients_and_weights_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    codec = build("codec", "adjscc", cbr=1 / 12, width=8, residual=True)
    _trains_and_round_trips(codec, tmp_path)


@pytest.mark.parametrize("downsample", [8, 16])
def test_deep_layouts_keep_the_bandwidth_ratio_and_round_trip(downsample: int, tmp_path: Path) -> None:
    from semguard.codecs.deepjscc import level_widths

    torch.manual_seed(0)
    codec = build("codec", "adjscc", cbr=1 / 12, width=8, residual=True, downsample=downsample)
    assert codec.config["downsample"] == downsample
    assert "downsample" not in build("codec", "adjscc", cbr=1 / 12, width=8).config  # old files keep theirs
    assert level_widths(8, downsample) == [8, 8, 16, 16][: downsample.bit_length() - 1]
    out = _trains_and_round_trips(codec, tmp_path)
    assert out["symbols"].shape == (2, 32 * 48 * 3 // 12)  # cbr = n / (3HW) exactly
    assert codec.c == 3 * downsample ** 2 // 12
    # shortcuts sit on the stride-1 stages only (one after each stride-2 level, in both halves)
    assert [s.residual for s in codec.enc] == [False, True] * (downsample.bit_length() - 1)
    assert sum(s.residual for s in codec.dec) == downsample.bit_length() - 1


def test_deep_layouts_reject_what_they_cannot_code() -> None:
    codec = build("codec", "adjscc", cbr=1 / 12, width=8, downsample=16)
    with pytest.raises(ValueError, match="multiples of 16"):
        codec.encode(torch.rand(1, 3, 40, 48), 10.0)
    with pytest.raises(ValueError, match="downsample must be one of"):
        build("codec", "adjscc", cbr=1 / 12, width=8, downsample=6)
    with pytest.raises(ValueError, match="k/192"):
        build("codec", "adjscc", cbr=1 / 500, width=8, downsample=8)
