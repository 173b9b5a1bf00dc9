"""Deployment-time certificates: what was certified (the codec's weights by sha256, channel, SNR, budget),
the certified figure with its confidence, samples and seed; optionally Ed25519-signed and published into
the knowledge base beside the weights, so a receiver checks at load time that it runs the certified codec.

The weights are named by :func:`weights_fingerprint`, the sha256 of the deterministic safetensors bytes
of the codec's state dict (the exact bytes a knowledge base stores as ``<name>/weights``), so the same
check works for a zoo codec and for one loaded from a knowledge base.  The signature covers the canonical
JSON of every field but ``signature`` (sorted keys, no spaces).  A reconstruction codec's certified PSNR
bounds (:class:`~semguard.defenses.psnr_certificate.PsnrBoundCertificate`, its own ``format``) go through
the same signing, publishing and checking functions.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from torch import nn

from semguard.knowledge.codec_io import state_bytes
from semguard.knowledge.keys import key_id, public_bytes, sign, verify_signature
from semguard.knowledge.records import SignatureError
from semguard.knowledge.store import KnowledgeBase

if TYPE_CHECKING:
    from semguard.defenses.psnr_certificate import PsnrBoundCertificate

__all__ = ["Certificate", "CertificateError", "weights_fingerprint", "issue", "sign_certificate", "METHODS",
           "load_certificate", "check_certificate", "publish_certificate", "fetch_certificate", "FORMAT"]

FORMAT = "semguard-certificate/1"
BUDGET_KINDS = ("psr_db", "l2")
#: how the figure was obtained: randomized smoothing (sampled, a confidence), or bound propagation
#: (deterministic per sample: confidence 1, no draws, no sigma)
METHODS = ("smoothing", "crown", "alpha-crown", "ibp")


class CertificateError(ValueError):
    """A certificate that is malformed, unsigned where a signature is required, tampered with, or for
    other weights."""


def weights_fingerprint(codec: nn.Module) -> str:
    """sha256 (hex) of the codec's state dict as deterministic safetensors bytes."""
    return hashlib.sha256(state_bytes(codec)).hexdigest()


@dataclass(frozen=True)
class Certificate:
    """One certified figure for one set of weights.

    Attributes:
        codec: the codec's name (zoo or knowledge-base entry).
        weights_sha256: :func:`weights_fingerprint` of the certified weights.
        surface: ``input`` or ``symbols``.
        channel: the channel name (``awgn``).
        snr_db: Bob's SNR.
        budget_kind, budget: ``l2`` radius on the input, or ``psr_db`` on the symbols.
        certified_accuracy: fraction of the samples certified correct at the budget.
        abstain_rate: fraction on which CERTIFY abstained.
        confidence: ``1 - alpha`` per sample.
        sigma: smoothing standard deviation per real dimension.
        n0, n: CERTIFY's selection and estimation draws per sample.
        samples: evaluated sources; seed: the generator's seed.
        signature: ``{"public_key", "key_id", "signature"}`` (hex) or None.
        method: ``smoothing`` (CERTIFY), or ``crown`` / ``alpha-crown`` / ``ibp`` (bound propagation: deterministic per
            sample, so ``confidence`` 1.0, ``sigma`` 0, ``n0 = n = 0`` and ``abstain_rate`` 0).
    """

    codec: str
    weights_sha256: str
    surface: str
    channel: str
    snr_db: float
    budget_kind: str
    budget: float
    certified_accuracy: float
    abstain_rate: float
    confidence: float
    sigma: float
    n0: int
    n: int
    samples: int
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT
    signature: dict[str, str] | None = None
    method: str = "smoothing"

    def __post_init__(self) -> None:
        _validate(self)

    def body(self) -> bytes:
        """The signed bytes: canonical JSON of every field but the signature."""
        d = asdict(self)
        d.pop("signature")
        if d["method"] == "smoothing":  # the body certificates signed before the field existed
            d.pop("method")
        return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=2) + "\n"


def _validate(c: Certificate) -> None:
    if c.format != FORMAT:
        raise CertificateError(f"format: expected {FORMAT!r}, got {c.format!r}")
    if len(c.weights_sha256) != 64 or any(ch not in "0123456789abcdef" for ch in c.weights_sha256):
        raise CertificateError(f"weights_sha256: expected 64 lowercase hex digits, got {c.weights_sha256!r}")
    if c.surface not in ("input", "symbols"):
        raise CertificateError(f"surface: expected 'input' or 'symbols', got {c.surface!r}")
    if c.budget_kind not in BUDGET_KINDS or c.budget_kind != ("l2" if c.surface == "input" else "psr_db"):
        raise CertificateError(f"budget_kind: the {c.surface} surface is certified in "
                               f"{'l2' if c.surface == 'input' else 'psr_db'}, got {c.budget_kind!r}")
    for name in ("snr_db", "budget", "sigma"):
        if not isinstance(getattr(c, name), int | float) or not math.isfinite(getattr(c, name)):
            raise CertificateError(f"{name}: expected a finite number, got {getattr(c, name)!r}")
    if c.method not in METHODS:
        raise CertificateError(f"method: expected one of {', '.join(METHODS)}, got {c.method!r}")
    if c.method != "smoothing":
        if c.surface != "symbols" or c.confidence != 1.0 or c.sigma != 0 or c.n0 != 0 or c.n != 0 \
                or c.abstain_rate != 0:
            raise CertificateError(f"method {c.method}: a deterministic symbol-domain certificate has "
                                   "confidence 1.0, sigma 0, n0 = n = 0 and abstain_rate 0")
        if not isinstance(c.samples, int) or c.samples < 1:
            raise CertificateError(f"samples: expected a positive integer, got {c.samples!r}")
        _validate_common(c)
        return
    _validate_common(c)
    if not isinstance(c.confidence, float) or not 0.5 < c.confidence < 1.0:
        raise CertificateError(f"confidence: expected 1 - alpha in (0.5, 1), got {c.confidence!r}")
    for name in ("n0", "n", "samples"):
        if not isinstance(getattr(c, name), int) or getattr(c, name) < 1:
            raise CertificateError(f"{name}: expected a positive integer, got {getattr(c, name)!r}")


def _validate_common(c: Certificate) -> None:
    for name in ("certified_accuracy", "abstain_rate"):
        v = getattr(c, name)
        if not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
            raise CertificateError(f"{name}: expected a fraction in [0, 1], got {v!r}")
    if c.signature is not None and (not isinstance(c.signature, dict)
                                    or set(c.signature) != {"public_key", "key_id", "signature"}):
        raise CertificateError("signature: expected {public_key, key_id, signature} (hex)")


def issue(codec: nn.Module, name: str, *, surface: str, channel: str, snr_db: float, budget: float,
          certified_accuracy: float, abstain_rate: float, alpha: float, sigma: float, n0: int, n: int,
          samples: int, seed: int, extra: dict[str, Any] | None = None,
          method: str = "smoothing") -> Certificate:
    """A certificate for ``codec``'s current weights (unsigned); a deterministic ``method`` (``crown``,
    ``alpha-crown``, ``ibp``) passes ``alpha=0``, ``sigma=0``, ``n0=n=0``, ``abstain_rate=0``."""
    return Certificate(name, weights_fingerprint(codec), surface, channel, float(snr_db),
                       "l2" if surface == "input" else "psr_db", float(budget), float(certified_accuracy),
                       float(abstain_rate), float(1.0 - alpha), float(sigma), int(n0), int(n), int(samples),
                       int(seed), dict(extra or {}), method=method)


AnyCertificate = TypeVar("AnyCertificate", "Certificate", "PsnrBoundCertificate")


def sign_certificate(cert: AnyCertificate, key: Ed25519PrivateKey) -> AnyCertificate:
    """``cert`` (a :class:`Certificate` or a PSNR-bound certificate) with an Ed25519 signature over its
    ``body()``."""
    pub = public_bytes(key)
    sig = {"public_key": pub.hex(), "key_id": key_id(pub), "signature": sign(key, cert.body()).hex()}
    return replace(cert, signature=sig)


def _parse(data: bytes | str, where: str) -> Certificate | PsnrBoundCertificate:
    from semguard.defenses.psnr_certificate import PSNR_FORMAT, PsnrBoundCertificate

    try:
        d = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CertificateError(f"{where}: not a JSON certificate ({e.msg if hasattr(e, 'msg') else e})") from e
    if not isinstance(d, dict):
        raise CertificateError(f"{where}: a certificate is a JSON object, got {type(d).__name__}")
    kind = PsnrBoundCertificate if d.get("format") == PSNR_FORMAT else Certificate
    names = {f.name for f in fields(kind)}
    optional = {"extra", "format", "signature"} | ({"method"} if kind is Certificate else set())
    missing = sorted(names - set(d) - optional)
    unknown = sorted(set(d) - names)
    if missing or unknown:
        raise CertificateError(f"{where}: missing fields {missing}, unknown fields {unknown}")
    try:
        return kind(**d)
    except CertificateError as e:
        raise CertificateError(f"{where}: {e}") from e
    except TypeError as e:  # a field of the wrong JSON type where the checks compare numbers
        raise CertificateError(f"{where}: a field has the wrong type ({e})") from e


def check_certificate(cert: AnyCertificate, codec: nn.Module, *, trusted_keys: list[bytes] | None = None,
                      where: str = "certificate") -> AnyCertificate:
    """Refuse ``cert`` unless it is for ``codec``'s weights and (with ``trusted_keys``) signed by one of
    them with a signature that verifies over its body."""
    if trusted_keys is not None:
        if cert.signature is None:
            raise CertificateError(f"{where}: unsigned, but a signature by a trusted key is required")
        try:
            pub, sig = bytes.fromhex(cert.signature["public_key"]), bytes.fromhex(cert.signature["signature"])
        except ValueError as e:
            raise CertificateError(f"{where}: signature fields are not hex") from e
        if pub not in trusted_keys:
            raise CertificateError(f"{where}: signed by key {key_id(pub)}, which is not trusted")
        try:
            verify_signature(pub, cert.body(), sig, what=where)
        except SignatureError as e:
            raise CertificateError(f"{e} (tampered with after signing?)") from e
    got = weights_fingerprint(codec)
    if got != cert.weights_sha256:
        raise CertificateError(f"{where}: certifies weights {cert.weights_sha256[:16]}... of {cert.codec!r}, "
                               f"but the codec runs weights {got[:16]}...")
    return cert


def load_certificate(path: str | Path, codec: nn.Module, *,
                     trusted_keys: list[bytes] | None = None) -> Certificate | PsnrBoundCertificate:
    """Read a certificate file and :func:`check_certificate` it against ``codec``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"certificate file not found: {p}")
    return check_certificate(_parse(p.read_bytes(), str(p)), codec, trusted_keys=trusted_keys, where=str(p))


def publish_certificate(kb: KnowledgeBase, key: Ed25519PrivateKey, name: str,
                        cert: Certificate | PsnrBoundCertificate) -> int:
    """Publish ``cert`` as ``<name>/certificate`` into ``kb``; the version's ``<name>/weights`` must be the
    certified weights (published beside them).  Returns the new version."""
    if cert.signature is None:
        raise CertificateError("certificate: sign it before publishing")
    try:
        weights = kb.get(f"{name}/weights")
    except KeyError as e:
        raise CertificateError(f"knowledge base has no {name}/weights to certify") from e
    if hashlib.sha256(weights).hexdigest() != cert.weights_sha256:
        raise CertificateError(f"certificate: for weights {cert.weights_sha256[:16]}..., but {name}/weights in "
                               "the knowledge base are other weights")
    return kb.publish(key, {f"{name}/certificate": cert.to_json().encode()}, note=f"certificate {name}").version


def fetch_certificate(kb: KnowledgeBase, name: str, codec: nn.Module, *, trusted_keys: list[bytes],
                      version: int | None = None) -> Certificate | PsnrBoundCertificate:
    """The verified ``<name>/certificate`` from ``kb``, checked against the codec the receiver runs."""
    where = f"{name}/certificate"
    return check_certificate(_parse(kb.get(where, version), where), codec, trusted_keys=trusted_keys,
                             where=where)
