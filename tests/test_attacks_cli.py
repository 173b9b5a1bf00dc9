"""``semguard attack``: table, JSON with every record's threat model, plot, resume, bad flags."""

from __future__ import annotations

import json

import pytest

from semguard.cli.main import main


def test_attack_command_writes_records_and_resumes(tmp_path, capsys) -> None:
    args = ["attack", "--codec", "softcast-cbr1_6", "--attack", "gaussian", "pgd", "--psr-db", "-20", "-10",
            "--images", "1", "--steps", "2", "--out", str(tmp_path), "--threads", "1"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "gaussian" in text and "pgd" in text and "psr_db" in text
    doc = json.loads((tmp_path / "attack.json").read_text())
    recs = doc["records"]
    assert len(recs) == 4 and (tmp_path / "attack.png").stat().st_size > 0
    for r in recs:
        assert r["threat_model"]["unit"] == "psr_db" and r["threat_model"]["budget"] == r["budget"]
        assert abs(r["measured_budget"] - r["budget"]) < 1e-3 and r["config"]["attack"] == r["attack"]
    pgd = {r["budget"]: r["attacked"] for r in recs if r["attack"] == "pgd"}
    noise = {r["budget"]: r["attacked"] for r in recs if r["attack"] == "gaussian"}
    assert pgd[-10.0] < noise[-10.0] and pgd[-10.0] < pgd[-20.0]
    assert main(args) == 0  # resumes: nothing is recomputed
    assert "[1/4]" not in capsys.readouterr().out


@pytest.mark.parametrize("flags, message", [
    (["--psr-db", "nan"], "argument --psr-db: expected a finite number"),
    (["--eps=-0.1"], "argument --eps: expected a number >= 0"),
    (["--codec", "nope"], "--codec 'nope' is not shipped"),
    (["--attack", "universal", "--eps", "0.1"], "with --eps only gaussian, pgd, fgsm, apgd, square, autoattack"),
    (["--attack", "square", "--psr-db", "-10"], "--attack square: it attacks the input only"),
    (["--attack", "apgd", "--psr-db", "-10"], "--attack apgd: on the air it attacks the symbols"),
    (["--queries", "0"], "argument --queries: expected"),
])
def test_bad_flags_get_one_line(tmp_path, capsys, flags, message) -> None:
    try:
        rc = main(["attack", "--codec", "softcast-cbr1_6", "--images", "1", "--steps", "1",
                   "--out", str(tmp_path), *flags])
    except SystemExit as e:          # a flag refused at parse time (argparse exits with 2)
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("semguard attack: error:")


def test_attack_command_runs_the_new_input_attacks(tmp_path) -> None:
    # APGD, Square and the ensemble from the command line on the task codec, inside eps, below clean
    args = ["attack", "--codec", "task-fmnist", "--attack", "apgd", "square", "autoattack", "--eps", "0.05",
            "--images", "8", "--steps", "3", "--queries", "10", "--out", str(tmp_path)]
    assert main(args) == 0
    recs = json.loads((tmp_path / "attack.json").read_text())["records"]
    assert [r["attack"] for r in recs] == ["apgd", "square", "autoattack"]
    for r in recs:
        assert r["measured_budget"] <= 0.05 + 1e-6 and r["attacked"] <= r["clean"]
    assert recs[1]["threat_model"]["knowledge"] == "query"
