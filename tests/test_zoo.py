"""One zoo for every shipped file: sha256-checked entries and assets, a content digest that catches
a weight file corrupted after export, and shapes checked against the codec's config."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from semguard.cli.main import main
from semguard.codecs import zoo
from semguard.registry import build


def _export(tmp_path):
    torch.manual_seed(0)
    codec = build("codec", "adjscc", cbr=1 / 12, width=8)
    path = tmp_path / "w.safetensors"
    zoo.save_weights(codec, "adjscc", path)
    return codec, path


def test_exported_file_loads_with_its_digest_and_sha256(tmp_path) -> None:
    codec, path = _export(tmp_path)
    back = zoo.load_weights(path)
    assert back.weights_sha256 == zoo.sha256_file(path) and back.registry_name == "adjscc"
    for k, v in codec.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)


def test_flipped_tensor_bytes_are_refused(tmp_path) -> None:
    _, path = _export(tmp_path)
    raw = bytearray(path.read_bytes())
    header = int.from_bytes(raw[:8], "little") + 8
    for i in range(header + 100, header + 211):                     # 111 data bytes, header intact
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(zoo.WeightsError, match="tensors_sha256"):
        zoo.load_weights(path)


def test_tensors_that_do_not_fit_the_config_are_refused(tmp_path) -> None:
    _, path = _export(tmp_path)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    tensors = load_file(str(path))
    k = next(k for k in tensors if k.endswith("weight") and tensors[k].dim() == 4)
    tensors[k] = tensors[k][:, :1].contiguous()
    meta["tensors_sha256"] = zoo.tensors_digest(tensors)
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(zoo.WeightsError, match="do not fit codec 'adjscc'"):
        zoo.load_weights(path)
    meta["config"] = json.dumps({"cbr": 0.3})
    save_file(load_file(str(path)), str(path), metadata=meta)
    with pytest.raises(zoo.WeightsError, match="config does not build"):
        zoo.load_weights(path)


def test_every_zoo_entry_is_listed_and_deepsc_is_one_of_them(capsys) -> None:
    assert "deepsc-wordnet" in zoo.ZOO and zoo.ZOO["deepsc-wordnet"].assets
    assert main(["list", "pretrained"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}:" in out for name in zoo.ZOO)
    with pytest.raises(zoo.WeightsError, match="ships no asset"):
        zoo.asset_path("adjscc-cbr1_6", "deepsc-tokenizer.json")


def test_deepsc_adv_is_a_fine_tune_of_deepsc_with_the_same_tokenizer() -> None:
    from safetensors import safe_open

    adv, base = zoo.pretrained("deepsc-adv"), zoo.pretrained("deepsc-wordnet")
    assert adv.config == base.config and adv.tokenizer.to_str() == base.tokenizer.to_str()
    with safe_open(str(zoo.shipped_path(zoo.ZOO["deepsc-adv"].file)), framework="pt") as f:
        meta = f.metadata()
    assert meta["init_sha256"] == zoo.ZOO["deepsc-wordnet"].sha256  # started from the shipped weights
    assert json.loads(meta["train_config"])["adv"] == {"mode": "symbols", "eps": None, "psr_db": -10.0, "steps": 3,
                                                       "weight": 0.5}
    changed = [k for k, v in adv.state_dict().items() if not torch.equal(v, base.state_dict()[k])]
    assert changed  # the weights did move


def test_deepsc_magmaw_is_a_fewer_symbol_deepsc_with_the_shipped_tokenizer() -> None:
    """The Magmaw-calibrated victim (docs/attacks.md, session 15): the shipped DeepSC re-trained with
    fewer channel uses per token (``grow_from``) over AWGN at 5-10 dB; the shipped file is left as it was."""
    from safetensors import safe_open

    calib, base = zoo.pretrained("deepsc-magmaw"), zoo.pretrained("deepsc-wordnet")
    assert calib.tokenizer.to_str() == base.tokenizer.to_str()
    assert calib.S < base.S == 8
    assert {k: v for k, v in calib.config.items() if k != "symbols_per_token"} == \
        {k: v for k, v in base.config.items() if k != "symbols_per_token"}
    with safe_open(str(zoo.shipped_path(zoo.ZOO["deepsc-magmaw"].file)), framework="pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["train_config"])
    assert meta["init_sha256"] == zoo.ZOO["deepsc-wordnet"].sha256 and meta["channels"] == "awgn"
    assert (cfg["snr_min_db"], cfg["snr_max_db"], cfg["adv"]) == (5.0, 10.0, None)
    ids = calib.tokenize(["the dog barked at the moon ."])
    assert int(calib.channel_uses(ids)) == calib.S * ids.shape[1]
