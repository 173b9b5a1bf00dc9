"""``semguard certify``: writes, signs, publishes and checks a certificate; one-line errors on bad input."""

import json

import pytest

from semguard.cli.main import main
from semguard.knowledge.codec_io import save_codec
from semguard.knowledge.keys import generate_key, public_bytes, save_private_key
from semguard.knowledge.store import KnowledgeBase
from semguard.codecs.zoo import pretrained


def test_certify_sign_publish_check(tmp_path, capsys):
    key = generate_key()
    save_private_key(key, tmp_path / "k.pem")
    kb = KnowledgeBase.init(tmp_path / "kb.db", key)
    save_codec(kb, key, "task", pretrained("task-fmnist"))
    out = tmp_path / "cert.json"
    rc = main(["certify", "--psr-db", "-20", "--images", "4", "--n0", "16", "--n", "200", "--out", str(out),
               "--sign-key", str(tmp_path / "k.pem"), "--kb", str(kb.path), "--kb-name", "task"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["surface"] == "symbols" and d["budget"] == -20.0 and d["confidence"] == pytest.approx(0.999)
    assert d["samples"] == 4 and d["n"] == 200 and d["seed"] == 0 and d["signature"]["key_id"]
    assert 0.0 <= d["certified_accuracy"] <= 1.0
    assert KnowledgeBase(kb.path).get("task/certificate") == out.read_bytes()
    assert main(["certify", "--check", str(out), "--trust", public_bytes(key).hex()]) == 0
    assert "valid for task-fmnist" in capsys.readouterr().out
    # the same file is refused for other weights
    assert main(["certify", "--check", str(out), "--codec", "task-fmnist-noiseless"]) == 2
    assert "but the codec runs weights" in capsys.readouterr().err


@pytest.mark.parametrize("argv, msg", [
    (["--psr-db", "35"], "--psr-db must be in [-60, 20] dB"),
    (["--radius", "0"], "argument --radius: expected a number > 0"),
    ([], "give a budget"),
    (["--psr-db", "-10", "--codec", "softcast-cbr1_6"], "certifies a task codec's decision"),
    (["--psr-db", "-10", "--codec", "nope"], "is not shipped"),
    (["--psr-db", "-10", "--kb", "x.db"], "--sign-key and --kb-name"),
    (["--check", "c.json", "--trust", "zz"], "--trust takes a raw Ed25519 public key"),
])
def test_bad_input_one_line(argv, msg, capsys):
    try:
        rc = main(["certify", *argv])
    except SystemExit as e:          # refused at parse time
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1 and err.startswith("semguard certify: error:")


def test_malformed_certificate_file(tmp_path, capsys):
    p = tmp_path / "c.json"
    p.write_text('{"codec": 3')
    assert main(["certify", "--check", str(p)]) == 2
    assert "not a JSON certificate" in capsys.readouterr().err
