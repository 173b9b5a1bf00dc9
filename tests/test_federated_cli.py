"""``semguard fl``: JSON and plot written, one-line errors for bad arguments."""

from __future__ import annotations

import pytest

import json

from semguard.cli.main import main


def test_fl_cli_writes_record(tmp_path, capsys):
    out, png = tmp_path / "fl.json", tmp_path / "fl.png"
    rc = main(["fl", "--clients", "4", "--malicious", "1", "--attack", "free_noise", "--strategy", "reputation",
               "--rounds", "2", "--local-steps", "2", "--width", "8", "--out", str(out), "--plot", str(png)])
    assert rc == 0 and png.stat().st_size > 1000
    rec = json.loads(out.read_text())
    assert len(rec["rounds"]) == 2 and rec["config"]["attack"] == "free_noise"
    assert rec["free_riders_detected"] == rec["malicious_ids"]
    assert "free riders" in capsys.readouterr().out


def test_fl_cli_bad_arguments(capsys):
    assert main(["fl", "--clients", "3", "--malicious", "3", "--attack", "alie"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--malicious" in err[0]
    with pytest.raises(SystemExit) as exc:                  # refused when the arguments are parsed
        main(["fl", "--alpha=-1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --alpha: expected a number > 0" in err[0]


@pytest.mark.parametrize("argv,flag", [
    (["--codec", "deepjscc", "--malicious", "1", "--attack", "label_flip"], "--attack"),
    (["--codec", "deepjscc", "--cbr", "0.3"], "--cbr"),
    (["--codec", "deepjscc", "--crop", "30"], "--crop"),
    (["--codec", "deepjscc", "--n-symbols", "8"], "--n-symbols"),
    (["--cbr", "0.25"], "--cbr"),                      # an image-codec flag with the task codec
    (["--layers", "2"], "--layers"),                   # a text-codec flag with the task codec
    (["--codec", "deepjscc", "--train-sentences", "100"], "--train-sentences"),
    (["--codec", "deepsc", "--crop", "16"], "--crop"),
    (["--codec", "deepsc", "--n-symbols", "8"], "--n-symbols"),
    (["--codec", "deepsc", "--width", "10"], "--width"),
    (["--optimizer", "sgd", "--momentum", "1.5"], "--momentum"),
])
def test_fl_cli_bad_codec_arguments(argv, flag, capsys):
    assert main(["fl", "--clients", "3", "--rounds", "1", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0], err


def test_fl_cli_unknown_codec_is_refused_when_parsed(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fl", "--codec", "gpt"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--codec" in err[0]


def test_fl_cli_image_codec_prints_psnr(tmp_path, capsys):
    out = tmp_path / "fl.json"
    rc = main(["fl", "--codec", "deepjscc", "--clients", "3", "--rounds", "1", "--local-steps", "1", "--width", "4",
               "--crop", "16", "--train-crops", "12", "--out", str(out)])
    assert rc == 0
    rec = json.loads(out.read_text())
    assert rec["config"]["codec"] == "deepjscc" and set(rec["final"]) == {"psnr"}
    assert "psnr dB" in capsys.readouterr().out


@pytest.mark.slow
def test_fl_cli_text_codec_prints_bleu(tmp_path, capsys):
    out = tmp_path / "fl.json"
    rc = main(["fl", "--codec", "deepsc", "--clients", "2", "--rounds", "1", "--local-steps", "1", "--width", "8",
               "--train-sentences", "40", "--out", str(out)])
    assert rc == 0
    rec = json.loads(out.read_text())
    assert rec["config"]["codec"] == "deepsc" and set(rec["final"]) == {"bleu1", "token_accuracy"}
    assert "bleu1" in capsys.readouterr().out


@pytest.mark.slow
def test_fl_cli_text_codec_takes_dp(tmp_path, capsys):
    """``--codec deepsc --dp-epsilon`` runs (per-example gradients by microbatches) and reports epsilon."""
    out = tmp_path / "fl.json"
    rc = main(["fl", "--codec", "deepsc", "--clients", "2", "--rounds", "1", "--local-steps", "1", "--width", "8",
               "--train-sentences", "40", "--dp-epsilon", "8", "--optimizer", "sgd", "--lr", "0.5",
               "--out", str(out)])
    assert rc == 0
    rec = json.loads(out.read_text())
    assert rec["dp_noise"] > 0 and rec["rounds"][0]["epsilon"] == pytest.approx(8.0, rel=0.05)
