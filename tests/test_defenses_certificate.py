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
