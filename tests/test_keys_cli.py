"""``semguard keygen``: JSON metrics are written and the key material never is."""

import argparse
import json
import logging

import numpy as np

from semguard.cli import keygen
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
