"""Ed25519 publisher keys (``cryptography``): generate, store encrypted or 0600, sign, verify.

Private keys are never logged; :func:`save_private_key` writes PKCS#8 PEM, encrypted with a
passphrase when one is given, with file mode 0600.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from semguard.knowledge.records import SignatureError

__all__ = ["generate_key", "public_bytes", "key_id", "sign", "verify_signature",
           "save_private_key", "load_private_key"]


def generate_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 signing key."""
    return Ed25519PrivateKey.generate()


def public_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """Raw 32-byte public key."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(pub: bytes) -> str:
    """Short fingerprint of a raw public key: first 16 hex of SHA-256."""
    return hashlib.sha256(pub).hexdigest()[:16]


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    """Ed25519 signature (64 bytes)."""
    return key.sign(message)


def verify_signature(pub: bytes, message: bytes, signature: bytes, *, what: str = "record") -> None:
    """Raise :class:`SignatureError` unless ``signature`` is valid for ``message`` under ``pub``."""
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError(f"{what}: Ed25519 signature by key {key_id(pub)} does not verify") from exc


def save_private_key(key: Ed25519PrivateKey, path: str | Path, passphrase: bytes | None = None) -> None:
    """Write PKCS#8 PEM (encrypted if ``passphrase``) with mode 0600 (also when the file existed)."""
    enc = (serialization.BestAvailableEncryption(passphrase) if passphrase
           else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode applies only to a new file
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def load_private_key(path: str | Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """Read a key written by :func:`save_private_key`; ValueError naming the file if it cannot."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=passphrase)
    except TypeError as exc:  # encrypted without a passphrase, or a passphrase for a plain key
        what = ("is encrypted; give its passphrase (SEMGUARD_KEY_PASSPHRASE)" if passphrase is None
                else "is not encrypted; unset SEMGUARD_KEY_PASSPHRASE")
        raise ValueError(f"{path}: the private key {what}") from exc
    except ValueError as exc:
        raise ValueError(f"{path}: not a readable PEM private key, or wrong passphrase ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: expected an Ed25519 private key, got {type(key).__name__}")
    return key
