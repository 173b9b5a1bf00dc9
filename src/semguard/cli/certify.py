"""``semguard certify``: a certificate for a shipped codec, by randomized smoothing or bound propagation.

``--method vote`` (default; a task codec's decision, Cohen et al.'s CERTIFY): ``--psr-db`` the symbol
domain over AWGN (the channel's noise, plus ``--extra-n0`` of the receiver's own draws, smooths;
certified against any jammer under that PSR), ``--radius`` the input (an l2 radius on images in [0, 1],
``--sigma`` the smoothing noise).  ``--method median`` (a reconstruction codec, Chiang et al.'s median
smoothing): certified lower bounds on the PSNR of the receiver's median-smoothed output, and on the
``--percentile`` of one noisy decode's PSNR, at each ``--psr-db``, on the first ``--images`` shipped
photos (``--crop`` a centre crop).  Writes the certificate JSON (``--out``), signs it with
``--sign-key`` (Ed25519 PEM; passphrase from ``SEMGUARD_KEY_PASSPHRASE``) and, with ``--kb``, publishes it
into the knowledge base beside the codec's weights.  ``--check FILE`` verifies a certificate against the
codec instead (``--trust`` a public key in hex to require its signature).  ``--method crown|alpha-crown|ibp``
(a task codec, with one ``--psr-db``) verifies the receiver deterministically instead of smoothing: per image one
channel-noise draw, and the decision at that received block certified iff bound propagation through the
decoder proves no perturbation under the PSR flips it (no draws, confidence 1).  With ``--channel
rayleigh`` the bound methods verify over flat block fading with perfect CSI (the realised draw's equaliser
folded into the decoder), the PSR measured against the received ``h x`` or, with ``--psr-reference
transmitted``, against the transmitted ``x``, and ``--csi estimated`` certifies with the receiver's
pilot estimate against jammers on the data symbols only; the certificate records all three.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from semguard.channels import AWGN, Rayleigh
from semguard.cli.common import finite_float, int_at_least, non_negative_float, positive_float
from semguard.link import Link

if TYPE_CHECKING:
    from semguard.defenses.certificate import Certificate
    from semguard.defenses.psnr_certificate import PsnrBoundCertificate

__all__ = ["add_parser", "run"]

PSR_RANGE = (-60.0, 20.0)
RADIUS_MAX = 28.0  # the l2 diameter of a 28x28 image in [0, 1]
METHODS = ("vote", "median", "crown", "alpha-crown", "ibp")
BOUND_METHODS = ("crown", "alpha-crown", "ibp")
CHANNELS = ("awgn", "rayleigh")
PSR_REFERENCES = ("received", "transmitted")
SIGMA, VOTE_N0, VOTE_IMAGES, MEDIAN_EXTRA_N0 = 0.12, 100, 50, 1.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("certify", help="certificate of a codec: smoothing (accuracy, or PSNR bound) or CROWN (PSR)")
    p.add_argument("--codec", default="task-fmnist", help="a shipped codec (default: task-fmnist)")
    p.add_argument("--method", choices=METHODS, default="vote",
                   help="vote: a task codec's certified accuracy (Cohen et al.); median: a reconstruction "
                        "codec's certified PSNR lower bound (Chiang et al.); crown / alpha-crown / ibp: bound "
                        "propagation of a task receiver (--psr-db only; deterministic per received block) "
                        "(default: vote)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--psr-db", type=finite_float, nargs="+",
                   help=f"certify against jammers under this PSR (dB, {PSR_RANGE}; several with --method median)")
    g.add_argument("--radius", type=positive_float, help="certify against input perturbations of this l2 norm")
    g.add_argument("--check", help="verify this certificate file against --codec instead")
    p.add_argument("--trust", action="append", default=None, help="trusted public key (hex) for --check")
    p.add_argument("--snr-db", type=finite_float, default=10.0, help="Bob's SNR (default: 10)")
    p.add_argument("--channel", choices=CHANNELS, default="awgn",
                   help="awgn, or rayleigh: flat block fading with perfect CSI (--method crown / alpha-crown / "
                        "ibp only) (default: awgn)")
    p.add_argument("--psr-reference", choices=PSR_REFERENCES, default=None,
                   help="--channel rayleigh: the PSR measured against the received h x or the transmitted x "
                        "(default: received)")
    p.add_argument("--csi", choices=("perfect", "estimated"), default=None,
                   help="--channel rayleigh: the receiver's CSI; estimated (least-squares from one pilot per "
                        "block) certifies against jammers on the data symbols only, the pilots untouched "
                        "(default: perfect)")
    p.add_argument("--sigma", type=positive_float, default=None,
                   help=f"input smoothing sigma (--radius) (default: {SIGMA})")
    p.add_argument("--extra-n0", type=non_negative_float, default=None,
                   help="receiver's extra noise power (--psr-db; vote: 0 is channel noise alone, median: > 0) "
                        f"(default: vote 0, median {MEDIAN_EXTRA_N0:g})")
    p.add_argument("--images", type=int_at_least(1), default=None,
                   help=f"first shipped Fashion-MNIST test images (vote) or photos (median) "
                        f"(default: vote {VOTE_IMAGES}, median 1)")
    p.add_argument("--crop", type=int_at_least(8), default=None,
                   help="--method median: centre crop side of the 256x256 photos (default: whole photo)")
    p.add_argument("--percentile", type=finite_float, default=None,
                   help="--method median: the percentile of one noisy decode's PSNR bounded, in (0, 1) "
                        "(default: 0.5)")
    p.add_argument("--n0", type=int_at_least(1), default=None,
                   help=f"--method vote: selection draws per image (default: {VOTE_N0})")
    p.add_argument("--n", type=int_at_least(1), default=1000,
                   help="estimation (vote) or receiver (median) draws per image (default: 1000)")
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
    for psr in a.psr_db or ():
        if not PSR_RANGE[0] <= psr <= PSR_RANGE[1]:
            raise ValueError(f"--psr-db must be in [{PSR_RANGE[0]:g}, {PSR_RANGE[1]:g}] dB, got {psr:g}")
    if a.radius is not None and not 0.0 < a.radius <= RADIUS_MAX:
        raise ValueError(f"--radius must be in (0, {RADIUS_MAX:g}] (l2 on images in [0, 1]), got {a.radius:g}")
    if not -10.0 <= a.snr_db <= 40.0:
        raise ValueError(f"--snr-db must be in [-10, 40] dB, got {a.snr_db:g}")
    if not 0.0 < a.alpha < 0.5:
        raise ValueError(f"--alpha must be in (0, 0.5), got {a.alpha:g}")
    if a.kb and not (a.sign_key and a.kb_name):
        raise ValueError("--kb publishes a signed certificate: give --sign-key and --kb-name too")
    if a.method == "median":
        for flag, value, why in (("--radius", a.radius, "an input l2 ball; median smoothing certifies a PSR ball "
                                  "(--psr-db)"),
                                 ("--sigma", a.sigma, "the input smoothing noise; median smoothing's is --extra-n0"),
                                 ("--n0", a.n0, "CERTIFY's selection draws; median smoothing has none")):
            if value is not None:
                raise ValueError(f"{flag} is for --method vote ({why})")
        if a.extra_n0 is not None and a.extra_n0 <= 0:
            raise ValueError(f"--extra-n0 must be > 0 with --method median (the receiver's own noise is the "
                             f"smoothing), got {a.extra_n0:g}")
        if a.percentile is not None and not 0.0 < a.percentile < 1.0:
            raise ValueError(f"--percentile must be in (0, 1), got {a.percentile:g}")
    else:
        for flag, value in (("--percentile", a.percentile), ("--crop", a.crop)):
            if value is not None:
                raise ValueError(f"{flag} is for --method median (a reconstruction codec's PSNR bound)")
        if a.psr_db is not None and len(a.psr_db) != 1:
            raise ValueError(f"--psr-db: --method {a.method} certifies one budget per certificate, "
                             f"got {len(a.psr_db)}")
    if a.channel != "awgn" and a.method not in BOUND_METHODS and a.check is None:
        raise ValueError(f"--channel {a.channel} is for --method crown / alpha-crown / ibp (the {a.method} "
                         f"method smooths with the AWGN channel's noise)")
    if a.csi is not None and a.channel == "awgn":
        raise ValueError("--csi is for --channel rayleigh (AWGN has no channel to estimate)")
    if a.psr_reference is not None and a.channel == "awgn":
        raise ValueError("--psr-reference is for --channel rayleigh (over AWGN the received and transmitted "
                         "signals are the same)")
    if a.method in BOUND_METHODS:
        if a.radius is not None:
            raise ValueError(f"--method {a.method} verifies the receiver against a PSR (--psr-db); the input "
                             "path goes through the encoder's power normalisation, which it does not bound")
        for flag, value in (("--sigma", a.sigma), ("--n0", a.n0), ("--extra-n0", a.extra_n0)):
            if value is not None:
                raise ValueError(f"{flag} is for --method vote ({a.method} is deterministic: no draws, no noise)")


def _passphrase() -> bytes | None:
    env = os.environ.get("SEMGUARD_KEY_PASSPHRASE")
    return env.encode() if env else None


def _load_check(a: argparse.Namespace, codec: torch.nn.Module) -> int:
    from semguard.defenses.certificate import load_certificate
    from semguard.defenses.psnr_certificate import PsnrBoundCertificate
    try:
        trusted = [bytes.fromhex(k) for k in a.trust] if a.trust else None
    except ValueError as e:
        raise ValueError("--trust takes a raw Ed25519 public key as 64 hex digits") from e
    if trusted and any(len(k) != 32 for k in trusted):
        raise ValueError("--trust takes a raw Ed25519 public key as 64 hex digits")
    cert = load_certificate(a.check, codec, trusted_keys=trusted)
    if isinstance(cert, PsnrBoundCertificate):
        what = cert.summary()
    else:
        what = (f"certified accuracy {cert.certified_accuracy:.3f} at {cert.budget_kind} {cert.budget:g} "
                f"by {cert.method} over {cert.channel}")
    print(f"{a.check}: valid for {a.codec} ({cert.weights_sha256[:16]}...): {what}, confidence {cert.confidence}"
          + ("" if trusted else " (signature not checked: no --trust)"))
    return 0


def _vote(a: argparse.Namespace, codec: torch.nn.Module) -> tuple[Certificate, str]:
    from semguard.data.shipped import shipped_fashion_mnist
    from semguard.defenses.certificate import issue
    from semguard.defenses.smoothing import SmoothedClassifier
    n0 = VOTE_N0 if a.n0 is None else a.n0
    images = VOTE_IMAGES if a.images is None else a.images
    extra_n0 = 0.0 if a.extra_n0 is None else a.extra_n0
    sigma = SIGMA if a.sigma is None else a.sigma
    need = math.floor(math.log(a.alpha) / math.log(0.5)) + 1  # all n draws agreeing: alpha^(1/n) > 1/2
    if a.n < need:
        raise ValueError(f"--n {a.n} draws cannot certify at confidence {1 - a.alpha:g}: CERTIFY needs at "
                         f"least {need} (alpha^(1/n) > 1/2)")
    x, y = shipped_fashion_mnist(images)
    link = Link(codec, AWGN())
    if a.psr_db is not None:
        budget = a.psr_db[0]
        sm, surface = SmoothedClassifier(link, surface="symbols", extra_n0=extra_n0), "symbols"
    else:
        sm, surface, budget = SmoothedClassifier(link, surface="input", sigma=sigma), "input", a.radius
    res = sm.certify(x, a.snr_db, n0=n0, n=a.n, alpha=a.alpha, seed=a.seed)
    acc = res.certified_accuracy(y, budget)
    clean = float((res.prediction == y).float().mean())
    cert = issue(codec, a.codec, surface=surface, channel="awgn", snr_db=a.snr_db, budget=budget,
                 certified_accuracy=acc, abstain_rate=res.abstain_rate, alpha=a.alpha, sigma=res.sigma,
                 n0=n0, n=a.n, samples=images, seed=a.seed,
                 extra={"smoothed_accuracy": clean, "extra_n0": extra_n0 if surface == "symbols" else None,
                        "data": "shipped Fashion-MNIST test images, first N"})
    unit = "dB PSR" if surface == "symbols" else "l2"
    return cert, (f"{a.codec} over AWGN at {a.snr_db:g} dB, sigma {res.sigma:.4f}: certified accuracy {acc:.3f} at "
                  f"{budget:g} {unit} (smoothed accuracy {clean:.3f}, abstain {res.abstain_rate:.3f}, "
                  f"confidence {1 - a.alpha}, {images} images x {a.n} draws)")


def _bounds(a: argparse.Namespace, codec: torch.nn.Module) -> tuple[Certificate, str]:
    """``--method crown|alpha-crown|ibp``: verify the receiver at every image's received block (one noise draw each)."""
    from semguard.data.shipped import shipped_fashion_mnist
    from semguard.defenses.certificate import issue
    from semguard.defenses.verified import VerifiedReceiver
    images = VOTE_IMAGES if a.images is None else a.images
    x, y = shipped_fashion_mnist(images)
    psr = a.psr_db[0]
    fading = a.channel == "rayleigh"
    reference = a.psr_reference or "received"
    csi = a.csi or "perfect"
    channel = Rayleigh(csi=csi) if fading else AWGN()
    res = VerifiedReceiver(Link(codec, channel), method=a.method, psr_reference=reference,
                           data_only=csi == "estimated").certify(x, a.snr_db, [psr], seed=a.seed)
    acc = res.certified_accuracy(y, psr)
    clean = float((res.prediction == y).float().mean())
    extra = {"accuracy": clean, "noise": "one channel-noise draw per image (seed), fixed; certified "
             "per received block against any perturbation under the PSR",
             "data": "shipped Fashion-MNIST test images, first N"}
    if fading:
        extra.update(fading="flat block Rayleigh, one draw per image (seed), fixed", csi=csi,
                     equalizer=channel.equalizer, psr_reference=reference)
        if csi == "estimated":
            extra.update(pilots=channel.pilots, jammer="on the data symbols only: the pilots, and so the "
                         "receiver's estimate, untouched")
    cert = issue(codec, a.codec, surface="symbols", channel=a.channel, snr_db=a.snr_db, budget=psr,
                 certified_accuracy=acc, abstain_rate=0.0, alpha=0.0, sigma=0.0, n0=0, n=0, samples=images,
                 seed=a.seed, method=a.method, extra=extra)
    where = (f"Rayleigh ({csi} CSI{', jammer on data symbols only' if csi == 'estimated' else ''}, PSR against "
             f"the {reference} signal)" if fading else "AWGN")
    draws = "one fading and noise draw each" if fading else "one noise draw each"
    return cert, (f"{a.codec} over {where} at {a.snr_db:g} dB, {a.method}: certified accuracy {acc:.3f} at "
                  f"{psr:g} dB PSR (accuracy {clean:.3f}; {images} images, {draws}, deterministic)")


def _median(a: argparse.Namespace, codec: torch.nn.Module) -> tuple[PsnrBoundCertificate, str]:
    from semguard.data.images import center_crop
    from semguard.data.photos import shipped_photos
    from semguard.defenses.median_smoothing import MedianSmoothedReceiver, required_draws
    from semguard.defenses.psnr_certificate import issue_psnr
    p = 0.5 if a.percentile is None else a.percentile
    extra_n0 = MEDIAN_EXTRA_N0 if a.extra_n0 is None else a.extra_n0
    images = 1 if a.images is None else a.images
    photos = shipped_photos()
    if images > photos.shape[0]:
        raise ValueError(f"--images: {photos.shape[0]} photos are shipped, got {images}")
    x = photos[:images]
    side = x.shape[-1]
    if a.crop is not None:
        if a.crop > min(x.shape[-2:]):
            raise ValueError(f"--crop {a.crop} is larger than the {x.shape[-2]}x{x.shape[-1]} shipped photos")
        x, side = torch.stack([center_crop(i, a.crop) for i in x]).contiguous(), a.crop
    pixels = x[0].numel()
    need = required_draws(pixels, p, a.alpha)
    if a.n < need:
        raise ValueError(f"--n {a.n} draws cannot certify at confidence {1 - a.alpha:g}: the median output's box "
                         f"(alpha / {pixels} pixels) and the {p:g} percentile need at least {need}")
    link = Link(codec, AWGN())
    rec = MedianSmoothedReceiver(link, extra_n0=extra_n0, draws=a.n, batch=min(a.n, 100))
    certs = rec.certify_grid(x, a.snr_db, a.psr_db, alpha=a.alpha, p=p, seed=a.seed)
    with torch.no_grad():
        out = link(x, a.snr_db, generator=torch.Generator().manual_seed(a.seed))["output"].clamp(0, 1)
    plain = (-10 * torch.log10((out - x).double().square().flatten(1).mean(1))).tolist()
    cert = issue_psnr(codec, a.codec, certs, snr_db=a.snr_db, extra_n0=extra_n0, n=a.n, alpha=a.alpha,
                      seed=a.seed, extra={"data": f"shipped photos, first N, centre crop {side}x{side}",
                                          "crop": side, "alpha": a.alpha, "plain_psnr": plain,
                                          "mean_confidence": max(0.0, 1.0 - images * a.alpha)})
    rows = "; ".join(f"PSR {c.psr_db:g}: eps/sigma {c.eps_over_sigma:.2f}, median output >= {b:.2f} dB, "
                     f"p{round(100 * p)} of one decode >= " + ("none" if q is None else f"{q:.2f} dB")
                     for c, b, q in zip(certs, cert.median_bound_mean, cert.percentile_bound_mean))
    return cert, (f"{a.codec} over AWGN at {a.snr_db:g} dB, {images} photo(s) {side}x{side}, extra_n0 {extra_n0:g} "
                  f"(sigma {cert.sigma:.4f}), {a.n} draws, confidence {1 - a.alpha} per bound: median output "
                  f"{sum(cert.median_psnr) / images:.2f} dB unjammed (plain {sum(plain) / images:.2f}); {rows}")


def run(a: argparse.Namespace) -> int:
    _check_args(a)
    torch.set_num_threads(max(1, a.threads))
    from semguard.cli.attack import load_codec
    from semguard.defenses.certificate import check_certificate, publish_certificate, sign_certificate
    codec = load_codec(a.codec)
    if a.check is not None:
        return _load_check(a, codec)
    if a.method != "median" and codec.output_key != "logits":
        raise ValueError(f"--method {a.method} certifies a task codec's decision; --codec {a.codec!r} reconstructs "
                         f"({codec.output_key}): use --method median")
    if a.method == "median" and codec.output_key != "x_hat":
        raise ValueError(f"--method median bounds a reconstructed image's PSNR; --codec {a.codec!r} outputs "
                         f"{codec.output_key}: use --method vote or crown")
    cert: Certificate | PsnrBoundCertificate
    cert, line = {"median": _median, "vote": _vote}.get(a.method, _bounds)(a, codec)
    if a.sign_key:
        from semguard.knowledge.keys import load_private_key
        key = load_private_key(a.sign_key, _passphrase())
        cert = sign_certificate(cert, key)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(cert.to_json())
    check_certificate(cert, codec)
    print(f"{line} -> {out}")
    if a.kb:
        from semguard.knowledge.store import KnowledgeBase
        v = publish_certificate(KnowledgeBase(a.kb), key, a.kb_name, cert)
        print(f"published {a.kb_name}/certificate as version {v} of {a.kb}")
    return 0
