"""``semguard net``: tables, JSON and figures; bad input is one clear error line (exit 2)."""

import json

from semguard.cli.main import main


def test_fusion_run_writes_json_and_plot(tmp_path, capsys):
    out = tmp_path / "f.json"
    assert main(["net", "--agents", "5", "--byzantine", "1", "--objects", "25", "--steps", "3",
                 "--fusion", "mean", "trimmed-mean", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert [r["fusion"] for r in doc["rows"]] == ["mean", "trimmed-mean"]
    assert doc["runs"]["mean"]["config"]["threat"]["attack"] == "crafted"
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "trimmed-mean" in capsys.readouterr().out


def test_gossip_and_offload_modes(tmp_path, capsys):
    out = tmp_path / "g.json"
    assert main(["net", "--agents", "7", "--byzantine", "1", "--gossip", "complete", "--objects", "25",
                 "--rounds", "5", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["robustness"] == 4 and {r["rule"] for r in doc["rows"]} == {"average", "wmsr"}
    out = tmp_path / "o.json"
    assert main(["net", "offload", "--scenarios", "2", "--episodes", "50", "--devices", "8", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert {r["mechanism"] for r in rows} >= {"stable-matching", "nash-bargaining", "rl-policy", "greedy"}


def test_bad_input_is_one_error_line(capsys):
    assert main(["net", "--agents", "6", "--byzantine", "3", "--fusion", "median"]) == 2
    assert "f < N/2" in capsys.readouterr().err
    assert main(["net", "--agents", "6", "--gossip", "geometric", "--radius", "0.05", "--objects", "25"]) == 2
    assert "not connected" in capsys.readouterr().err
    assert main(["net", "--objects", "5000"]) == 2
    assert "--objects" in capsys.readouterr().err
    assert main(["net", "offload", "--untrusted", "9"]) == 2
    assert "untrusted" in capsys.readouterr().err
