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


def test_emergency_with_the_built_lexicon(tmp_path, capsys):
    """``--lexicon train``: the lexicon from the WordNet training split (15 bits), its OOV count in
    the JSON, the ldpc and codebook rows beside uniform at uniform's energy; bad values are one line."""
    import pytest
    out = tmp_path / "e.json"
    assert main(["net", "emergency", "--sentences", "3", "--snr-db", "30", "--budgets", "1.0", "--lexicon", "train",
                 "--oov-modes", "deepsc", "--codebook-boost-db", "1", "--ldpc-boost-db", "1", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["lexicon"]["kind"] == "train" and doc["lexicon"]["index_bits"] == 15 and doc["lexicon"]["words"] > 20000
    rows = {r["scheme"]: r for r in doc["text"]}
    assert {"uniform", "codebook+1dB/deepsc", "ldpc+1dB/deepsc"} <= set(rows)
    assert rows["ldpc+1dB/deepsc"]["critical_recall"] == 1.0
    assert abs(rows["ldpc+1dB/deepsc"]["energy_ratio"] - 1) < 1e-6
    assert "lexicon train, index 15 bits" in capsys.readouterr().out
    assert main(["net", "emergency", "--lexicon", "train", "--index-bits", "5", "--sentences", "3"]) == 2
    err = capsys.readouterr().err
    assert "--index-bits 5" in err and "no row for words" in err and err.count("\n") == 1
    assert main(["net", "emergency", "--ldpc-max-rate", "1.5", "--ldpc-boost-db", "1"]) == 2
    err = capsys.readouterr().err
    assert "--ldpc-max-rate must be in (0, 1)" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as e:
        main(["net", "emergency", "--lexicon", "wordnet"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--lexicon" in err and "invalid choice" in err and err.count("\n") == 1


def test_fusion_commit_reveal_protocol(tmp_path, capsys):
    """``--protocol commit-reveal``: the attack is played against the prediction (``predictive``); with ``--late``
    the attackers reply to the seen round and every changed block fails its opening; plain stays the default."""
    import pytest

    out = tmp_path / "c.json"
    base = ["net", "--agents", "7", "--byzantine", "2", "--objects", "50", "--steps", "2", "--fusion", "median"]
    assert main(base + ["--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["protocol"] == "plain" and "cost" not in doc["runs"]["median"]
    assert main(base + ["--protocol", "commit-reveal", "--out", str(out)]) == 0
    run = json.loads(out.read_text())["runs"]["median"]
    assert run["config"]["threat"]["attack"] == "predictive" and run["config"]["threat"]["base"] == "crafted"
    assert all(r["failed_openings"] == [] for r in run["rounds"])
    assert main(base + ["--protocol", "commit-reveal", "--late", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "rushing (base crafted)" in text and "extra round trip" in text
    run = json.loads(out.read_text())["runs"]["median"]
    assert run["cost"]["up_bytes"] == 7 * (32 + 32 + 8 * 25 * 16)
    assert all(r["failed_openings"] == r["changed"] == run["byzantine_agents"] for r in run["rounds"])
    assert main(base + ["--late"]) == 2
    assert "--late needs --protocol commit-reveal" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(base + ["--protocol", "sealed"])
