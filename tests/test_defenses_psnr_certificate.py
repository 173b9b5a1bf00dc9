"""``semguard certify --method median``: a reconstruction codec's certified PSNR bounds as a certificate.
The bound written equals what ``MedianSmoothedReceiver`` computes for the same seed; the certificate
round-trips signed, through the knowledge base, and is refused tampered with or for other weights; bad
input gets one line naming the field."""

import json
import math

import pytest
import torch

from semguard.channels.awgn import AWGN
from semguard.cli.main import main
from semguard.codecs.zoo import pretrained
from semguard.data.images import center_crop
from semguard.data.photos import shipped_photos
from semguard.defenses.certificate import CertificateError, fetch_certificate, load_certificate
from semguard.defenses.median_smoothing import MedianSmoothedReceiver, min_draws, order_statistic_bounds
from semguard.defenses.psnr_certificate import PSNR_FORMAT, PsnrBoundCertificate
from semguard.knowledge.codec_io import save_codec
from semguard.knowledge.keys import generate_key, public_bytes, save_private_key
from semguard.knowledge.store import KnowledgeBase
from semguard.link import Link

CODEC = "softcast-cbr1_6"
PSRS = [-45.0, -35.0, -25.0]
ARGS = ["--codec", CODEC, "--method", "median", "--psr-db", *map(str, PSRS), "--crop", "16", "--images", "2",
        "--n", "100", "--extra-n0", "0.5", "--percentile", "0.4", "--seed", "3"]


@pytest.fixture(scope="module")
def issued(tmp_path_factory):
    """One signed run of the command, published beside the codec's weights."""
    tmp = tmp_path_factory.mktemp("psnr_cert")
    key = generate_key()
    save_private_key(key, tmp / "k.pem")
    kb = KnowledgeBase.init(tmp / "kb.db", key)
    save_codec(kb, key, "img", pretrained(CODEC))
    out = tmp / "cert.json"
    assert main(["certify", *ARGS, "--out", str(out), "--sign-key", str(tmp / "k.pem"), "--kb", str(kb.path),
                 "--kb-name", "img"]) == 0
    return out, key, kb.path


def test_bound_equals_median_smoothing_for_the_seed(issued):
    out, _, _ = issued
    d = json.loads(out.read_text())
    x = torch.stack([center_crop(i, 16) for i in shipped_photos()[:2]]).contiguous()
    rec = MedianSmoothedReceiver(Link(pretrained(CODEC), AWGN()), extra_n0=0.5, draws=100, batch=100)
    certs = rec.certify_grid(x, 10.0, PSRS, alpha=0.001, p=0.4, seed=3)
    assert d["format"] == PSNR_FORMAT and d["psr_db"] == PSRS and d["samples"] == 2 and d["n"] == 100
    assert d["percentile"] == 0.4 and d["seed"] == 3 and d["confidence"] == pytest.approx(0.999)
    assert d["sigma"] == pytest.approx(0.5, rel=1e-12) and d["channel"] == "awgn" and d["snr_db"] == 10.0
    assert d["median_psnr"] == certs[0].median_psnr.tolist()
    for j, c in enumerate(certs):
        assert d["median_bound"][j] == c.median_bound.tolist()
        assert d["percentile_bound"][j] == [v if math.isfinite(v) else None for v in c.percentile_bound.tolist()]
        assert d["median_bound_mean"][j] == pytest.approx(float(c.median_bound.mean()), abs=1e-12)
        assert d["eps_over_sigma"][j] == c.eps_over_sigma
    # a 16x16 crop at cbr 1/6 is 128 symbols: eps/sigma = sqrt(2 10^(psr/10) 128 / extra_n0)
    assert d["eps_over_sigma"][0] == pytest.approx(math.sqrt(2 * 10 ** -4.5 * 128 / 0.5), rel=1e-3)
    # not collapsed at -45 dB, and a larger ball certifies less
    assert all(b > 10.0 for b in d["median_bound"][0])
    assert d["median_bound_mean"][2] < d["median_bound_mean"][0] < sum(d["median_psnr"]) / 2


def test_signed_roundtrip_kb_and_check(issued, capsys):
    out, key, kb = issued
    codec = pretrained(CODEC)
    cert = load_certificate(out, codec, trusted_keys=[public_bytes(key)])
    assert isinstance(cert, PsnrBoundCertificate) and cert.signature is not None
    assert cert.to_json() == out.read_text()
    assert fetch_certificate(KnowledgeBase(kb), "img", codec, trusted_keys=[public_bytes(key)]) == cert
    assert main(["certify", "--codec", CODEC, "--check", str(out), "--trust", public_bytes(key).hex()]) == 0
    said = capsys.readouterr().out
    assert "valid for softcast-cbr1_6" in said and f"{cert.median_bound_mean[0]:.2f} dB at PSR -45" in said


def test_refused_tampered_or_for_other_weights(issued, tmp_path, capsys):
    out, key, _ = issued
    codec = pretrained(CODEC)
    trusted = [public_bytes(key)]
    d = json.loads(out.read_text())
    # a bound raised after signing, kept consistent with its mean and below the unjammed PSNR
    d["median_bound"][1][0] += 0.5
    d["median_bound_mean"][1] = sum(d["median_bound"][1]) / 2
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(d))
    PsnrBoundCertificate(**d)  # still a well-formed certificate: only the signature catches it
    with pytest.raises(CertificateError, match="does not verify"):
        load_certificate(bad, codec, trusted_keys=trusted)
    # other weights: another codec, and the same codec with one weight nudged by one ulp
    with pytest.raises(CertificateError, match="but the codec runs weights"):
        load_certificate(out, pretrained("analog-cbr1_6"), trusted_keys=trusted)
    nudged = pretrained(CODEC)
    with torch.no_grad():
        p = next(t for t in nudged.state_dict().values() if t.is_floating_point() and t.numel())
        p.view(-1)[0] = torch.nextafter(p.view(-1)[0], torch.tensor(1e9, dtype=p.dtype))
    with pytest.raises(CertificateError, match="but the codec runs weights"):
        load_certificate(out, nudged)
    assert main(["certify", "--codec", "analog-cbr1_6", "--check", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "but the codec runs weights" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["median_bound"][0].__setitem__(0, d["median_psnr"][0] + 1.0), "above that image's unjammed PSNR"),
    (lambda d: d["median_bound_mean"].__setitem__(0, 99.0), "median_bound_mean"),
    (lambda d: d.__setitem__("psr_db", [float("nan"), -35.0, -25.0]), "psr_db"),
    (lambda d: d.__setitem__("percentile", 1.5), "percentile"),
    (lambda d: d.__setitem__("sigma", 0.3), "sigma"),
    (lambda d: d.__setitem__("psr_db", [-25.0, -35.0, -45.0]), "a larger ball never does"),
    (lambda d: d["percentile_bound"].pop(), "percentile_bound"),
])
def test_malformed_fields_refused_unsigned(issued, tmp_path, edit, match):
    out, _, _ = issued
    d = json.loads(out.read_text())
    d["signature"] = None
    edit(d)
    p = tmp_path / "c.json"
    p.write_text(json.dumps(d))
    with pytest.raises(CertificateError, match=match) as e:
        load_certificate(p, pretrained(CODEC))
    assert len(str(e.value).splitlines()) == 1


def test_min_draws_by_hand():
    # 0.5^10 = 0.000977 <= 0.001 < 0.5^9; a 16x16 RGB box: 0.5^20 <= 0.001 / 768 < 0.5^19
    assert min_draws(0.5, 0.001) == 10 and min_draws(0.5, 0.001 / 768) == 20
    assert min_draws(0.9, 0.001) == 3  # 0.1^3 = 0.001
    for p, alpha in ((0.5, 0.001), (0.3, 0.01), (0.8, 1e-6)):
        n = min_draws(p, alpha)
        assert order_statistic_bounds(n, p, p, alpha)[0] == 1
        assert order_statistic_bounds(n - 1, p, p, alpha)[0] is None


MED = ["--codec", CODEC, "--method", "median", "--crop", "16"]


@pytest.mark.parametrize("argv, msg", [
    ([*MED, "--psr-db", "nan"], "argument --psr-db: expected a finite number"),
    ([*MED, "--psr-db", "-30", "inf"], "argument --psr-db: expected a finite number"),
    ([*MED, "--psr-db", "-30", "--percentile", "1.5"], "--percentile must be in (0, 1), got 1.5"),
    ([*MED, "--psr-db", "-30", "--percentile", "0"], "--percentile must be in (0, 1)"),
    ([*MED, "--psr-db", "-30", "--n", "19"], "--n 19 draws cannot certify at confidence 0.999"),
    ([*MED, "--psr-db", "-30", "--percentile", "0.1", "--n", "40"], "need at least 66"),
    ([*MED, "--psr-db", "-30", "--extra-n0", "0"], "--extra-n0 must be > 0 with --method median"),
    ([*MED, "--radius", "0.5"], "--radius is for --method vote"),
    ([*MED, "--psr-db", "-30", "--n0", "10"], "--n0 is for --method vote"),
    ([*MED, "--psr-db", "-30", "--images", "99"], "--images: 7 photos are shipped"),
    ([*MED[:4], "--psr-db", "-30", "--crop", "300"], "--crop 300 is larger than the 256x256"),
    ([*MED[:4], "--psr-db", "-90"], "--psr-db must be in [-60, 20] dB"),
    (["--codec", "task-fmnist", "--method", "median", "--psr-db", "-20"], "--method median bounds a reconstructed"),
    (["--codec", "task-fmnist", "--psr-db", "-20", "--percentile", "0.5"], "--percentile is for --method median"),
    (["--codec", "task-fmnist", "--psr-db", "-20", "-15"], "--method vote certifies one budget per certificate"),
    (["--codec", "task-fmnist", "--psr-db", "-20", "--n", "9"], "CERTIFY needs at least 10"),
])
def test_bad_input_one_line(argv, msg, tmp_path, capsys):
    try:
        rc = main(["certify", *argv, "--out", str(tmp_path / "c.json")])
    except SystemExit as e:  # refused at parse time
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1 and err.startswith("semguard certify: error:"), err
    assert not (tmp_path / "c.json").exists()
