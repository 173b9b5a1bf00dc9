"""Signed certificates: issued for one set of weights, refused when tampered with, for other weights,
malformed, or unsigned where a signature is required; published into and fetched from a knowledge base."""

import json

import pytest
import torch

from semguard.codecs.zoo import pretrained
from semguard.defenses.certificate import (CertificateError, check_certificate, fetch_certificate, issue,
                                           load_certificate, publish_certificate, sign_certificate,
                                           weights_fingerprint)
from semguard.knowledge.codec_io import save_codec
from semguard.knowledge.keys import generate_key, public_bytes
from semguard.knowledge.store import KnowledgeBase


@pytest.fixture(scope="module")
def codec():
    return pretrained("task-fmnist")


def _cert(codec):
    return issue(codec, "task-fmnist", surface="symbols", channel="awgn", snr_db=10.0, budget=-20.0,
                 certified_accuracy=0.8, abstain_rate=0.05, alpha=0.001, sigma=0.3, n0=100, n=1000,
                 samples=50, seed=0)


def test_signed_roundtrip_and_tamper(codec, tmp_path):
    key = generate_key()
    cert = sign_certificate(_cert(codec), key)
    path = tmp_path / "cert.json"
    path.write_text(cert.to_json())
    assert load_certificate(path, codec, trusted_keys=[public_bytes(key)]) == cert
    # one figure changed after signing
    d = json.loads(path.read_text())
    d["certified_accuracy"] = 0.95
    path.write_text(json.dumps(d))
    with pytest.raises(CertificateError, match="does not verify"):
        load_certificate(path, codec, trusted_keys=[public_bytes(key)])
    # a valid signature by a key the receiver does not trust
    path.write_text(sign_certificate(_cert(codec), generate_key()).to_json())
    with pytest.raises(CertificateError, match="not trusted"):
        load_certificate(path, codec, trusted_keys=[public_bytes(key)])
    # unsigned, but a signature is required
    path.write_text(_cert(codec).to_json())
    with pytest.raises(CertificateError, match="unsigned"):
        load_certificate(path, codec, trusted_keys=[public_bytes(key)])


def test_refused_for_other_weights(codec):
    cert = _cert(codec)
    other = pretrained("task-fmnist-noiseless")
    assert weights_fingerprint(other) != cert.weights_sha256
    with pytest.raises(CertificateError, match="but the codec runs weights"):
        check_certificate(cert, other)
    # one weight nudged by one float32 ulp is other weights
    nudged = pretrained("task-fmnist")
    with torch.no_grad():
        p = next(nudged.parameters())
        p.view(-1)[0] = torch.nextafter(p.view(-1)[0], torch.tensor(1e9))
    with pytest.raises(CertificateError, match="but the codec runs weights"):
        check_certificate(cert, nudged)


@pytest.mark.parametrize("text, match", [
    ("{not json", "not a JSON certificate"),
    ("[1, 2]", "JSON object"),
    ('{"codec": "x"}', "missing fields"),
])
def test_malformed_files(codec, tmp_path, text, match):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(CertificateError, match=match):
        load_certificate(path, codec)


def test_bad_fields(codec, tmp_path):
    d = json.loads(_cert(codec).to_json())
    for field, value, match in [("certified_accuracy", 1.5, "certified_accuracy"), ("weights_sha256", "ab", "hex"),
                                ("budget_kind", "l2", "budget_kind"), ("n", 0, "n:"), ("confidence", 0.4, "confidence")]:
        path = tmp_path / "c.json"
        path.write_text(json.dumps({**d, field: value}))
        with pytest.raises(CertificateError, match=match):
            load_certificate(path, codec)
    with pytest.raises(FileNotFoundError, match="certificate file not found"):
        load_certificate(tmp_path / "none.json", codec)


def test_published_beside_the_weights(codec, tmp_path):
    key = generate_key()
    kb = KnowledgeBase.init(tmp_path / "kb.db", key)
    save_codec(kb, key, "task", codec)
    cert = sign_certificate(_cert(codec), key)
    publish_certificate(kb, key, "task", cert)
    reader = KnowledgeBase(kb.path)
    assert fetch_certificate(reader, "task", codec, trusted_keys=[public_bytes(key)]) == cert
    with pytest.raises(CertificateError, match="but the codec runs weights"):
        fetch_certificate(reader, "task", pretrained("task-fmnist-noiseless"), trusted_keys=[public_bytes(key)])
    # a certificate cannot be published beside weights it does not certify
    other = sign_certificate(issue(pretrained("task-fmnist-noiseless"), "x", surface="input", channel="awgn",
                                   snr_db=10.0, budget=0.1, certified_accuracy=0.5, abstain_rate=0.1,
                                   alpha=0.001, sigma=0.1, n0=10, n=100, samples=5, seed=0), key)
    with pytest.raises(CertificateError, match="other weights"):
        publish_certificate(kb, key, "task", other)


def test_method_field_keeps_older_signatures_and_signs_deterministic_ones(codec, tmp_path):
    key = generate_key()
    old = sign_certificate(_cert(codec), key)
    assert b"method" not in old.body()  # a smoothing certificate's signed bytes are as before the field
    d = json.loads(old.to_json())
    d.pop("method")  # as written before the field existed
    path = tmp_path / "old.json"
    path.write_text(json.dumps(d))
    assert load_certificate(path, codec, trusted_keys=[public_bytes(key)]).method == "smoothing"
    crown = sign_certificate(issue(codec, "task-fmnist", surface="symbols", channel="awgn", snr_db=10.0,
                                   budget=-15.0, certified_accuracy=0.81, abstain_rate=0.0, alpha=0.0, sigma=0.0,
                                   n0=0, n=0, samples=200, seed=0, method="crown"), key)
    path.write_text(crown.to_json())
    assert load_certificate(path, codec, trusted_keys=[public_bytes(key)]) == crown
    d = json.loads(path.read_text())
    d["method"] = "ibp"  # the method is signed
    path.write_text(json.dumps(d))
    with pytest.raises(CertificateError, match="does not verify"):
        load_certificate(path, codec, trusted_keys=[public_bytes(key)])
    d["method"] = "smoothing"  # a deterministic certificate passed off as smoothing is malformed
    path.write_text(json.dumps(d))
    with pytest.raises(CertificateError, match="confidence: expected 1 - alpha in"):
        load_certificate(path, codec)
    d["method"] = "guess"
    path.write_text(json.dumps(d))
    with pytest.raises(CertificateError, match="method: expected one of smoothing, crown"):
        load_certificate(path, codec)
