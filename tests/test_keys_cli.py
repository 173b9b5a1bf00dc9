"""``semguard keygen``: JSON metrics are written and the key material never is."""

import argparse
import json
import logging

import numpy as np
import pytest

from semguard.cli import keygen
from semguard.cli.main import main
from semguard.keys.sessions import keygen_rows


def test_keygen_writes_metrics_without_key_material(tmp_path, capsys, caplog):
    parser = argparse.ArgumentParser()
    keygen.add_parser(parser.add_subparsers())
    out = tmp_path / "kg.json"
    args = parser.parse_args(["keygen", "--snr-db", "30", "--probes", "2048", "--probe-rate", "100",
                              "--nist", "--out", str(out)])
    with caplog.at_level(logging.DEBUG):
        assert keygen.run(args) == 0
    text = out.read_text()
    row = json.loads(text)["results"][0]
    assert row["success_rate"] == 1.0 and row["kdr_reconciled"] == 0.0 and row["key_bits"] > 0
    # the same seed reproduces the session's key: it must appear nowhere
    _, keys = keygen_rows([30.0], probes=2048, eve_distance=1.0, mode="mobile", doppler_hz=100.0,
                                 probe_rate=100.0, baseline=False, sessions=1, seed=0)
    key = np.packbits(keys[0]).tobytes()
    shown = text + capsys.readouterr().out + caplog.text
    assert len(key) * 8 == row["key_bits"]
    for form in (key.hex(), key.hex().upper(), str(list(key))[1:40], "".join(map(str, keys[0][:64]))):
        assert form not in shown


@pytest.mark.parametrize("flag, value", [("--snr-db", "nan"), ("--snr-db", "-1e6"), ("--snr-db", "-500"),
                                         ("--sessions", "0"), ("--probes", "10000000"), ("--probe-rate", "0")])
def test_keygen_refuses_bad_values_before_work(flag, value, tmp_path, capsys):
    out = tmp_path / "kg.json"
    with pytest.raises(SystemExit) as exc:
        main(["keygen", f"{flag}={value}", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exc.value.code == 2 and err.startswith("semguard keygen: error: argument " + flag)
    assert ("finite" in err or "accepted range" in err) and not out.exists()


def test_keygen_no_key_row_says_why_and_json_is_strict(tmp_path, capsys):
    out = tmp_path / "kg.json"
    assert main(["keygen", "--snr-db", "-10", "--probes", "1024", "--out", str(out)]) == 0
    screen = capsys.readouterr().out
    assert "no key: KDR too high to reconcile" in screen and "key secret against: passive Eve" in screen
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    row = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))["results"][0]
    assert row["kdr_reconciled"] is None and row["reasons"] == ["KDR too high to reconcile"]


def test_keygen_help_has_no_markup(capsys):
    with pytest.raises(SystemExit):
        main(["keygen", "--help"])
    assert "``" not in capsys.readouterr().out
