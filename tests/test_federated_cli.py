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
