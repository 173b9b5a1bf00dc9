"""``semguard certify``: a certificate for a shipped task codec, by randomized smoothing or bound propagation.

``--psr-db``: the symbol domain over AWGN (the channel's noise, plus ``--extra-n0`` of the receiver's own
draws, smooths; certified against any jammer under that PSR).  ``--radius``: the input (an l2 radius on
images in [0, 1], ``--sigma`` the smoothing noise).  Writes the certificate JSON (``--out``), signs it with
``--sign-key`` (Ed25519 PEM; passphrase from ``SEMGUARD_KEY_PASSPHRASE``) and, with ``--kb``, publishes it
into the knowledge base beside the codec's weights.  ``--check FILE`` verifies a certificate against the
codec instead (``--trust`` a public key in hex to require its signature).  ``--method crown|alpha-crown|ibp`` (with
``--psr-db``) verifies the receiver deterministically instead of smoothing: per image one channel-noise draw,
and the decision at that received block certified iff bound propagation through the decoder proves no
perturbation under the PSR flips it (no draws, confidence 1).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from semguard.channels import AWGN
from semguard.cli.common import finite_float, int_at_least, non_negative_float, positive_float
from semguard.link import Link

if TYPE_CHECKING:
    from semguard.defenses.certificate import Certificate

__all__ = ["add_parser", "run"]

PSR_RANGE = (-60.0, 20.0)
RADIUS_MAX = 28.0  # the l2 diameter of a 28x28 image in [0, 1]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("certify", help="certificate of a task codec: randomized smoothing (input l2 or PSR) or CROWN (PSR)")
    p.add_argument("--codec", default="task-fmnist", help="a shipped task codec (default: task-fmnist)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--psr-db", type=finite_float, help=f"certify against jammers under this PSR (dB, {PSR_RANGE})")
    g.add_argument("--radius", type=positive_float, help="certify against input perturbations of this l2 norm")
    g.add_argument("--check", help="verify this certificate file against --codec instead")
    p.add_argument("--method", choices=("smoothing", "crown", "alpha-crown", "ibp"), default="smoothing",
                   help="smoothing (CERTIFY, sampled) or bound propagation of the receiver, crown / alpha-crown / ibp "
                        "(--psr-db only; deterministic per received block) (default: smoothing)")
    p.add_argument("--trust", action="append", default=None, help="trusted public key (hex) for --check")
    p.add_argument("--snr-db", type=finite_float, default=10.0, help="Bob's SNR over AWGN (default: 10)")
    p.add_argument("--sigma", type=positive_float, default=0.12, help="input smoothing sigma (--radius) (default: 0.12)")
    p.add_argument("--extra-n0", type=non_negative_float, default=0.0,
                   help="receiver's extra noise power (--psr-db; 0: channel noise alone) (default: 0)")
    p.add_argument("--images", type=int_at_least(1), default=50, help="shipped Fashion-MNIST test images (default: 50)")
    p.add_argument("--n0", type=int_at_least(1), default=100, help="selection draws per image (default: 100)")
    p.add_argument("--n", type=int_at_least(1), default=1000, help="estimation draws per image (default: 1000)")
    p.add_argument("--alpha", type=positive_float, default=0.001, help="1 - confidence per image (default: 0.001)")
    p.add_argument("--out", default="certificate.json", help="certificate file (default: certificate.json)")
    p.add_argument("--sign-key", help="Ed25519 private key (PEM) that signs the certificate")
    p.add_argument("--kb", help="knowledge base to publish into (needs --sign-key and --kb-name)")
    p.add_argument("--kb-name", help="the codec's entry name in --kb (its <name>/weights)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="the one seed of the run (default: 0)")
    p.add_argument("--threads", type=int_at_least(1), default=1, help="torch CPU threads (default: 1)")
    p.set_defaults(func=run)


def _check_args(a: argparse.Namespace) -> None:
    if a.check is None and a.psr_db is None and a.radius is None:
        raise ValueError("give a budget: --psr-db (symbol domain) or --radius (input l2), or --check FILE")
    if a.psr_db is not None and not PSR_RANGE[0] <= a.psr_db <= PSR_RANGE[1]:
        raise ValueError(f"--psr-db must be in [{PSR_RANGE[0]:g}, {PSR_RANGE[1]:g}] dB, got {a.psr_db:g}")
    if a.radius is not None and not 0.0 < a.radius <= RADIUS_MAX:
        raise ValueError(f"--radius must be in (0, {RADIUS_MAX:g}] (l2 on images in [0, 1]), got {a.radius:g}")
    if not -10.0 <= a.snr_db <= 40.0:
        raise ValueError(f"--snr-db must be in [-10, 40] dB, got {a.snr_db:g}")
    if a.images < 1 or a.n0 < 1 or a.n < 1:
        raise ValueError("--images, --n0 and --n must be >= 1")
    if not 0.0 < a.alpha < 0.5:
        raise ValueError(f"--alpha must be in (0, 0.5), got {a.alpha:g}")
    if a.method != "smoothing" and a.radius is not None:
        raise ValueError(f"--method {a.method} verifies the receiver against a PSR (--psr-db); the input "
                         "path goes through the encoder's power normalisation, which it does not bound")
    if a.kb and not (a.sign_key and a.kb_name):
        raise ValueError("--kb publishes a signed certificate: give --sign-key and --kb-name too")


def _passphrase() -> bytes | None:
    env = os.environ.get("SEMGUARD_KEY_PASSPHRASE")
    return env.encode() if env else None


def run(a: argparse.Namespace) -> int:
    _check_args(a)
    torch.set_num_threads(max(1, a.threads))
    from semguard.cli.attack import load_codec
    from semguard.defenses.certificate import issue, load_certificate
    codec = load_codec(a.codec)
    if a.check is not None:
        try:
            trusted = [bytes.fromhex(k) for k in a.trust] if a.trust else None
        except ValueError as e:
            raise ValueError("--trust takes a raw Ed25519 public key as 64 hex digits") from e
        if trusted and any(len(k) != 32 for k in trusted):
            raise ValueError("--trust takes a raw Ed25519 public key as 64 hex digits")
        cert = load_certificate(a.check, codec, trusted_keys=trusted)
        print(f"{a.check}: valid for {a.codec} ({cert.weights_sha256[:16]}...): certified accuracy "
              f"{cert.certified_accuracy:.3f} at {cert.budget_kind} {cert.budget:g} by {cert.method}, "
              f"confidence {cert.confidence}"
              + ("" if trusted else " (signature not checked: no --trust)"))
        return 0
    if codec.output_key != "logits":
        raise ValueError(f"--codec {a.codec!r} reconstructs ({codec.output_key}); randomized smoothing here "
                         "certifies a task codec's decision (task-fmnist)")
    from semguard.data.shipped import shipped_fashion_mnist
    from semguard.defenses.smoothing import SmoothedClassifier
    x, y = shipped_fashion_mnist(a.images)
    link = Link(codec, AWGN())
    if a.method != "smoothing":
        return _run_bounds(a, codec, link, x, y)
    if a.psr_db is not None:
        sm, surface, budget = SmoothedClassifier(link, surface="symbols", extra_n0=a.extra_n0), "symbols", a.psr_db
    else:
        sm, surface, budget = SmoothedClassifier(link, surface="input", sigma=a.sigma), "input", a.radius
    res = sm.certify(x, a.snr_db, n0=a.n0, n=a.n, alpha=a.alpha, seed=a.seed)
    acc = res.certified_accuracy(y, budget)
    clean = float((res.prediction == y).float().mean())
    cert = issue(codec, a.codec, surface=surface, channel="awgn", snr_db=a.snr_db, budget=budget,
                 certified_accuracy=acc, abstain_rate=res.abstain_rate, alpha=a.alpha, sigma=res.sigma,
                 n0=a.n0, n=a.n, samples=a.images, seed=a.seed,
                 extra={"smoothed_accuracy": clean, "extra_n0": a.extra_n0 if surface == "symbols" else None,
                        "data": "shipped Fashion-MNIST test images, first N"})
    cert, key = _write(a, codec, cert)
    unit = "dB PSR" if surface == "symbols" else "l2"
    print(f"{a.codec} over AWGN at {a.snr_db:g} dB, sigma {res.sigma:.4f}: certified accuracy {acc:.3f} at "
          f"{budget:g} {unit} (smoothed accuracy {clean:.3f}, abstain {res.abstain_rate:.3f}, "
          f"confidence {1 - a.alpha}, {a.images} images x {a.n} draws) -> {a.out}")
    _publish(a, cert, key)
    return 0


def _write(a: argparse.Namespace, codec: torch.nn.Module, cert: Certificate) -> tuple[Certificate, Any]:
    """Sign (``--sign-key``), write to ``--out`` and re-check ``cert``; returns it with the key."""
    from semguard.defenses.certificate import check_certificate, sign_certificate
    key = None
    if a.sign_key:
        from semguard.knowledge.keys import load_private_key
        key = load_private_key(a.sign_key, _passphrase())
        cert = sign_certificate(cert, key)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(cert.to_json())
    check_certificate(cert, codec)
    return cert, key


def _publish(a: argparse.Namespace, cert: Certificate, key: Any) -> None:
    if a.kb:
        from semguard.defenses.certificate import publish_certificate
        from semguard.knowledge.store import KnowledgeBase
        v = publish_certificate(KnowledgeBase(a.kb), key, a.kb_name, cert)
        print(f"published {a.kb_name}/certificate as version {v} of {a.kb}")


def _run_bounds(a: argparse.Namespace, codec: torch.nn.Module, link: Link, x: torch.Tensor,
                y: torch.Tensor) -> int:
    """``--method crown|alpha-crown|ibp``: verify the receiver at every image's received block (one noise draw each)."""
    from semguard.defenses.certificate import issue
    from semguard.defenses.verified import VerifiedReceiver
    res = VerifiedReceiver(link, method=a.method).certify(x, a.snr_db, [a.psr_db], seed=a.seed)
    acc = res.certified_accuracy(y, a.psr_db)
    clean = float((res.prediction == y).float().mean())
    cert = issue(codec, a.codec, surface="symbols", channel="awgn", snr_db=a.snr_db, budget=a.psr_db,
                 certified_accuracy=acc, abstain_rate=0.0, alpha=0.0, sigma=0.0, n0=0, n=0, samples=a.images,
                 seed=a.seed, method=a.method,
                 extra={"accuracy": clean, "noise": "one channel-noise draw per image (seed), fixed; certified "
                        "per received block against any perturbation under the PSR",
                        "data": "shipped Fashion-MNIST test images, first N"})
    cert, key = _write(a, codec, cert)
    print(f"{a.codec} over AWGN at {a.snr_db:g} dB, {a.method}: certified accuracy {acc:.3f} at {a.psr_db:g} dB "
          f"PSR (accuracy {clean:.3f}; {a.images} images, one noise draw each, deterministic) -> {a.out}")
    _publish(a, cert, key)
    return 0
