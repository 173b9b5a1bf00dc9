"""The main job and the CLI around it: records, resume, plot, one-line errors."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from semguard.cli.main import main
from semguard.codecs import zoo
from semguard.evaluation.run import RunConfig, run_main_job

TINY = RunConfig(snr_db=(10.0,), images=1, fading_realizations=1, task_images=200,
                 baselines=("jpeg_capacity",), channels=("awgn",), text_sentences=20)
# the same grid as a scenario file for the command line (its [quick] section is what --quick runs)
TINY_TOML = """
[images]
baselines = ["jpeg_capacity"]
link_baseline = "jpeg_capacity"
limit_baselines = ["jpeg_capacity"]
[channels]
names = ["awgn"]
snr_db = [10, 20]
[task]
images = 200
[text]
codec = ""
[quick]
snr_db = [10]
images = 1
fading_draws = 1
"""


def _tiny_scenario(tmp_path: Path) -> str:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    return str(path)


def test_main_job_records_and_resumes(tmp_path: Path) -> None:
    store = run_main_job(tmp_path, TINY)
    by = {(r.codec, r.metric): r.value for r in store.records}
    assert set(by) >= {("adjscc-cbr1_6", "psnr"), ("adjscc-cbr1_6", "ms_ssim"), ("softcast-cbr1_6", "psnr"),
                       ("jpeg_capacity", "psnr"),
                       ("jpeg_capacity", "delivered"), ("task-fmnist", "accuracy"), ("deepsc", "bleu1"),
                       ("text_digital", "bleu1"), ("deepsc", "channel_uses_per_sentence")}
    assert 10 < by[("adjscc-cbr1_6", "psnr")] < 60 and 0.5 < by[("task-fmnist", "accuracy")] <= 1
    assert 25 < by[("softcast-cbr1_6", "psnr")] < 35  # the linear analog scheme at 10 dB: ~30 dB
    assert 0.8 < by[("deepsc", "bleu1")] <= 1  # 10 dB AWGN: far above the 0.9 target region's edge
    assert by[("deepsc", "channel_uses_per_sentence")] == by[("text_digital", "channel_uses_per_sentence")]
    rec = next(r for r in store.records if r.codec == "adjscc-cbr1_6")
    # every image record carries the per-image values behind its mean, for paired comparisons
    assert rec.samples is not None and len(rec.samples) == 1
    assert rec.value == pytest.approx(rec.samples[0], abs=1e-4)
    assert rec.config["n_symbols"] == 8 * 64 * 64 and rec.config["cbr"] == pytest.approx(1 / 6)
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    again = run_main_job(tmp_path, TINY)  # everything is done: nothing re-measured or re-appended
    assert (tmp_path / "records.jsonl").read_text().splitlines() == lines
    assert len(again.records) == len(store.records)
    assert {r.snr_db for r in again.current()} == {10.0}
    other = run_main_job(tmp_path, replace(TINY, snr_db=(20.0,), text_codec=None))
    # the earlier 10 dB records stay on disk but are not part of this run's report
    assert {r.snr_db for r in other.records} == {10.0, 20.0}
    assert {r.snr_db for r in other.current()} == {20.0}


def test_reference_codecs_must_share_the_bandwidth(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="same cbr"):
        run_main_job(tmp_path, replace(TINY, reference_codecs=("adjscc-cbr1_12",)))


def test_cli_run_writes_results_and_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", _tiny_scenario(tmp_path), "--quick", "--executor", "serial", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["meta"]["scenario"]["run"]["snr_db"] == [10.0]
    assert {"codec", "channel", "snr_db", "metric", "value", "config"} <= set(res["records"][0])
    assert (tmp_path / "fidelity.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "adjscc-cbr1_6 / awgn" in out and "ideal-code limit" in out
    # the gap to the ideal-code limit is derived from the records: ours minus jpeg (the only limit run)
    psnr = {r["codec"]: r["value"] for r in res["records"] if r["metric"] == "psnr"}
    gap, = (g for g in res["gaps"] if "ideal-code limit" in g["comparison"])
    assert gap["channel"] == "awgn" and gap["snr_db"] == 10.0 and gap["n"] == 1 and gap["half_width"] is None
    assert gap["mean"] == pytest.approx(psnr["switched-cbr1_6"] - psnr["jpeg_capacity"], abs=1e-3)
    # JPEG at capacity fills most of, and never exceeds, n log2(1 + SNR) bits
    size, = (r for r in res["records"] if r["metric"] == "file_bytes")
    budget = size["config"]["n_symbols"] * math.log2(1 + 10.0) / 8
    assert 0.7 * budget < size["value"] <= budget


def test_corrupt_weight_file_is_refused_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    src = Path(str(zoo.resources.files("semguard.codecs") / "weights" / zoo.ZOO["task-fmnist"].file))
    bad = tmp_path / "weights"
    bad.mkdir()
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    (bad / zoo.ZOO["task-fmnist"].file).write_bytes(bytes(data))
    with pytest.raises(zoo.WeightsError, match="sha256 .* does not match"):
        zoo.load_weights(bad / zoo.ZOO["task-fmnist"].file, sha256=zoo.ZOO["task-fmnist"].sha256)
    # through the CLI: one line on stderr, exit status 2
    monkeypatch.setattr(zoo, "pretrained", lambda *a, **k: zoo.load_weights(
        bad / zoo.ZOO["task-fmnist"].file, sha256=zoo.ZOO["task-fmnist"].sha256))
    assert main(["run", _tiny_scenario(tmp_path), "--quick", "--executor", "serial",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not match" in err[0] and "reinstall" in err[0]


def test_weights_file_that_is_not_safetensors(tmp_path: Path) -> None:
    p = tmp_path / "w.safetensors"
    p.write_bytes(b"\x00" * 64)
    with pytest.raises(zoo.WeightsError, match="not a readable safetensors"):
        zoo.load_weights(p)
    with pytest.raises(zoo.WeightsError, match="no pretrained weights named"):
        zoo.pretrained("nope")


def test_cli_wrong_image_shape_and_missing_data_are_one_line(capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path) -> None:
    assert main(["train", "adjscc", "--data", str(tmp_path / "none"), "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "neither a dataset name" in err[0]


def test_shipped_weights_match_their_checksums() -> None:
    for name, entry in zoo.ZOO.items():
        if isinstance(entry, zoo.SwitchEntry):  # two other entries: its threshold was chosen for them
            assert (zoo.ZOO[entry.low].sha256, zoo.ZOO[entry.high].sha256) == entry.chosen_for, name
            continue
        path = Path(str(zoo.resources.files("semguard.codecs") / "weights" / entry.file))
        assert zoo.sha256_file(path) == entry.sha256, name
        assert path.stat().st_size < 8 * 2**20
    shipped = {p.name for p in zoo.resources.files("semguard.codecs").joinpath("weights").iterdir()
               if p.name.endswith(".safetensors")}
    listed = {e.file for e in zoo.ZOO.values() if isinstance(e, zoo.ZooEntry)} | {"deepsc.safetensors"}
    assert shipped == listed                                                  # no unlisted (stale) weight files


def test_switched_zoo_entry_is_its_parts_and_refuses_a_stale_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    sw = zoo.pretrained("switched-cbr1_12")
    entry = zoo.ZOO["switched-cbr1_12"]
    low, high = zoo.pretrained(entry.low), zoo.pretrained(entry.high)
    assert sw.threshold_db == entry.threshold_db and sw.config["low"]["config"] == low.config
    for mine, theirs in ((sw.low, low), (sw.high, high)):
        for (k, a), b in zip(mine.state_dict().items(), theirs.state_dict().values()):
            assert torch.equal(a, b), k
    stale = replace(entry, chosen_for=("0" * 64, entry.chosen_for[1]))
    monkeypatch.setitem(zoo.ZOO, "switched-cbr1_12", stale)
    with pytest.raises(zoo.WeightsError, match="re-run scripts/make_switch.py"):
        zoo.pretrained("switched-cbr1_12")


def test_every_cli_command_dispatches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from semguard.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"run", "list", "train", "keygen", "kb"} <= set(sub.choices)
    assert all(callable(p.get_default("func")) for p in sub.choices.values())
    assert main(["list", "codec"]) == 0
    assert "adjscc" in capsys.readouterr().out
    assert main(["kb", "init", str(tmp_path / "kb.sqlite"), "--key", str(tmp_path / "owner.pem")]) == 0
    assert main(["kb", "verify", str(tmp_path / "kb.sqlite")]) == 0


def test_train_image_codec_resumes_and_exports(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from semguard.training.checkpoint import load_checkpoint

    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    args = ["train", "adjscc", "--data", str(photos), "--cbr", str(1 / 12), "--width", "4", "--crop", "32",
            "--batch", "2", "--val-every", "2", "--ckpt-every", "2", "--out", str(tmp_path / "ck"), "--no-progress",
            "--threads", "1"]
    assert main(args + ["--steps", "2"]) == 0
    first = load_checkpoint(tmp_path / "ck" / "last.pt")
    assert first["step"] == 2 and len(first["history"]) == 1
    assert main(args + ["--steps", "4", "--export", str(tmp_path / "w.safetensors")]) == 0
    second = load_checkpoint(tmp_path / "ck" / "last.pt")
    assert second["step"] == 4 and [h["step"] for h in second["history"]] == [2, 4]  # resumed, not restarted
    codec = zoo.load_weights(tmp_path / "w.safetensors")
    assert codec.config["width"] == 4 and codec.n_symbols((3, 32, 32)) == 4 * 64
