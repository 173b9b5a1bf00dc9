"""Deployment-time certificate of a reconstruction codec: the certified lower bounds on the PSNR of its
median-smoothed receiver inside PSR balls (:mod:`semguard.defenses.median_smoothing`), per PSR and per
image with their mean, for one set of weights.

It goes through the same path as the task codec's :class:`~semguard.defenses.certificate.Certificate`
(:func:`~semguard.defenses.certificate.sign_certificate`, ``publish_certificate``, ``load_certificate``,
``fetch_certificate``), told apart by its ``format``.  A bound that collapsed to no rank (the PSNR
percentile's ``-inf``) is written as ``null``: "nothing certified".
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from semguard.defenses.certificate import CertificateError, weights_fingerprint
from semguard.defenses.median_smoothing import PsnrCertificate

__all__ = ["PSNR_FORMAT", "PsnrBoundCertificate", "issue_psnr"]

PSNR_FORMAT = "semguard-psnr-certificate/1"
METHODS = ("median",)
_TOL = 1e-9  # dB: the means are recomputed from the per-image bounds


@dataclass(frozen=True)
class PsnrBoundCertificate:
    """Certified PSNR lower bounds of one reconstruction codec's median-smoothed receiver.

    Attributes:
        codec: the codec's name (zoo or knowledge-base entry).
        weights_sha256: :func:`~semguard.defenses.certificate.weights_fingerprint` of the certified weights.
        method: ``median`` (Chiang et al. 2020).
        channel: the channel name (``awgn``); snr_db: Bob's SNR.
        psr_db: the certified PSR bounds (dB), one per row of the bound lists.
        eps_over_sigma: per PSR, the PSR ball's radius over sigma (the largest over the images).
        median_psnr: per image, the median-smoothed output's PSNR with no jammer (dB).
        median_bound: ``[psr][image]`` certified PSNR of the median-smoothed output (Bonferroni over pixels).
        median_bound_mean: per PSR, the mean over the images.
        percentile_bound: ``[psr][image]`` certified lower bound on the ``percentile``-th percentile of one
            noisy decode's PSNR, ``None`` where no rank certifies anything.
        percentile_bound_mean: per PSR, the mean over the images (``None`` if any image has none).
        percentile: that percentile, in (0, 1).
        extra_n0: the receiver's added noise power; sigma: ``sqrt(extra_n0 / 2)`` per real dimension.
        n: the receiver's draws per image.
        confidence: ``1 - alpha`` per bound (each image, each PSR); a mean over N images holds at
            ``1 - N alpha``.
        samples: evaluated images; seed: the generator's seed.
        signature: ``{"public_key", "key_id", "signature"}`` (hex) or None.
    """

    codec: str
    weights_sha256: str
    method: str
    channel: str
    snr_db: float
    psr_db: list[float]
    eps_over_sigma: list[float]
    median_psnr: list[float]
    median_bound: list[list[float]]
    median_bound_mean: list[float]
    percentile_bound: list[list[float | None]]
    percentile_bound_mean: list[float | None]
    percentile: float
    extra_n0: float
    sigma: float
    n: int
    confidence: float
    samples: int
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)
    format: str = PSNR_FORMAT
    signature: dict[str, str] | None = None

    def __post_init__(self) -> None:
        _validate(self)

    def body(self) -> bytes:
        """The signed bytes: canonical JSON of every field but the signature."""
        d = asdict(self)
        d.pop("signature")
        return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=2, allow_nan=False) + "\n"

    def summary(self) -> str:
        """One line: the mean certified PSNR of the median output at each PSR."""
        cells = ", ".join(f"{b:.2f} dB at PSR {p:g}" for p, b in zip(self.psr_db, self.median_bound_mean))
        return f"certified PSNR of the median output (mean of {self.samples} images) {cells}"


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _mean(row: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in row) else sum(row) / len(row)  # type: ignore[arg-type]


def _validate(c: PsnrBoundCertificate) -> None:
    if c.format != PSNR_FORMAT:
        raise CertificateError(f"format: expected {PSNR_FORMAT!r}, got {c.format!r}")
    if (not isinstance(c.weights_sha256, str) or len(c.weights_sha256) != 64
            or any(ch not in "0123456789abcdef" for ch in c.weights_sha256)):
        raise CertificateError(f"weights_sha256: expected 64 lowercase hex digits, got {c.weights_sha256!r}")
    if c.method not in METHODS:
        raise CertificateError(f"method: expected one of {METHODS}, got {c.method!r}")
    if not isinstance(c.channel, str) or not c.channel:
        raise CertificateError(f"channel: expected a channel name, got {c.channel!r}")
    for name in ("snr_db", "extra_n0", "sigma", "percentile"):
        if not _finite(getattr(c, name)):
            raise CertificateError(f"{name}: expected a finite number, got {getattr(c, name)!r}")
    if not 0.0 < c.percentile < 1.0:
        raise CertificateError(f"percentile: expected a value in (0, 1), got {c.percentile!r}")
    if not c.extra_n0 > 0 or abs(c.sigma - math.sqrt(c.extra_n0 / 2)) > 1e-9 * c.sigma:
        raise CertificateError(f"sigma: expected sqrt(extra_n0 / 2) with extra_n0 > 0, got sigma {c.sigma!r}, "
                               f"extra_n0 {c.extra_n0!r}")
    if not isinstance(c.confidence, float) or not 0.5 < c.confidence < 1.0:
        raise CertificateError(f"confidence: expected 1 - alpha in (0.5, 1), got {c.confidence!r}")
    for name in ("n", "samples"):
        if not isinstance(getattr(c, name), int) or getattr(c, name) < 1:
            raise CertificateError(f"{name}: expected a positive integer, got {getattr(c, name)!r}")
    if not isinstance(c.seed, int) or c.seed < 0:
        raise CertificateError(f"seed: expected an integer >= 0, got {c.seed!r}")
    if not isinstance(c.psr_db, list) or not c.psr_db or not all(_finite(v) for v in c.psr_db):
        raise CertificateError(f"psr_db: expected a non-empty list of finite PSRs (dB), got {c.psr_db!r}")
    k, m = len(c.psr_db), c.samples
    if not isinstance(c.median_psnr, list) or len(c.median_psnr) != m or not all(_finite(v) for v in c.median_psnr):
        raise CertificateError(f"median_psnr: expected {m} finite PSNRs (one per image)")
    for name, nullable in (("eps_over_sigma", False), ("median_bound_mean", False), ("percentile_bound_mean", True)):
        row = getattr(c, name)
        if not isinstance(row, list) or len(row) != k or not all(_finite(v) or (nullable and v is None) for v in row):
            raise CertificateError(f"{name}: expected {k} finite numbers (one per PSR){' or null' if nullable else ''}")
    if any(v < 0 for v in c.eps_over_sigma):
        raise CertificateError("eps_over_sigma: expected values >= 0")
    for name, nullable in (("median_bound", False), ("percentile_bound", True)):
        rows = getattr(c, name)
        if (not isinstance(rows, list) or len(rows) != k
                or not all(isinstance(r, list) and len(r) == m
                           and all(_finite(v) or (nullable and v is None) for v in r) for r in rows)):
            raise CertificateError(f"{name}: expected {k} rows (one per PSR) of {m} finite PSNRs (one per image)"
                                   + (" or null" if nullable else ""))
    for j in range(k):
        for i in range(m):
            if c.median_bound[j][i] > c.median_psnr[i] + _TOL:
                raise CertificateError(f"median_bound: {c.median_bound[j][i]:.4f} dB at PSR {c.psr_db[j]:g} on image "
                                       f"{i} is above that image's unjammed PSNR {c.median_psnr[i]:.4f} dB")
        for name in ("median_bound", "percentile_bound"):
            want, got = _mean(getattr(c, name)[j]), getattr(c, f"{name}_mean")[j]
            if (want is None) != (got is None) or (want is not None and abs(want - got) > _TOL):
                raise CertificateError(f"{name}_mean: {got!r} at PSR {c.psr_db[j]:g} is not the mean of its "
                                       f"per-image bounds ({want!r})")
    order = sorted(range(k), key=lambda j: c.psr_db[j])
    for a, b in zip(order, order[1:]):  # a larger ball never certifies more (same draws)
        for name in ("median_bound", "percentile_bound"):
            rows = getattr(c, name)
            for i in range(m):
                lo = -math.inf if rows[b][i] is None else rows[b][i]
                hi = -math.inf if rows[a][i] is None else rows[a][i]
                if lo > hi + _TOL:
                    raise CertificateError(f"{name}: image {i} certifies more at PSR {c.psr_db[b]:g} than at "
                                           f"{c.psr_db[a]:g} dB (a larger ball never does)")


def _plain(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def issue_psnr(codec: nn.Module, name: str, certs: Sequence[PsnrCertificate], *, snr_db: float, extra_n0: float,
               n: int, alpha: float, seed: int, channel: str = "awgn",
               extra: dict[str, Any] | None = None) -> PsnrBoundCertificate:
    """A certificate (unsigned) for ``codec``'s current weights from ``certs``, the
    :meth:`~semguard.defenses.median_smoothing.MedianSmoothedReceiver.certify_grid` result of one run
    (``n`` draws, ``alpha``, ``seed``, receiver noise ``extra_n0``)."""
    if not certs:
        raise ValueError("certs: expected at least one PSR's result")
    ps = {c.p for c in certs}
    if len(ps) != 1:
        raise ValueError(f"certs: expected one percentile across the PSRs, got {sorted(ps)}")
    med_psnr = [float(v) for v in certs[0].median_psnr]
    if not all(math.isfinite(v) for v in med_psnr):
        raise ValueError("median_psnr: an image was decoded exactly (infinite PSNR); nothing to bound")
    med = [[float(v) for v in c.median_bound] for c in certs]
    pct = [[_plain(float(v)) for v in c.percentile_bound] for c in certs]
    return PsnrBoundCertificate(
        name, weights_fingerprint(codec), "median", channel, float(snr_db), [float(c.psr_db) for c in certs],
        [float(c.eps_over_sigma) for c in certs], med_psnr, med, [_mean(r) for r in med], pct,  # type: ignore[misc]
        [_mean(r) for r in pct], float(ps.pop()), float(extra_n0), math.sqrt(float(extra_n0) / 2), int(n),
        float(1.0 - alpha), len(med_psnr), int(seed), dict(extra or {}))
