"""Restricted entries: AES-256-GCM with a fresh data key, wrapped per role (RFC 3394 AES key wrap).

Envelope bytes = ``b"SGENC1" || 4-byte header length || JSON header || ciphertext``; the header
holds the nonce and ``{role: wrapped data key}``.  The envelope is what the store keeps, so the
Merkle root and signature cover ciphertext and wrapped keys; the entry name is the GCM
associated data, so a ciphertext moved to another name does not decrypt.  Role keys live in the
holder's keyring, never in the database.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from semguard.knowledge.records import AccessDenied, IntegrityError

__all__ = ["MAGIC", "new_role_key", "is_encrypted", "encrypt_entry", "decrypt_entry", "envelope_roles"]

MAGIC = b"SGENC1"


def new_role_key() -> bytes:
    """A fresh 256-bit role key."""
    return AESGCM.generate_key(bit_length=256)


def is_encrypted(blob: bytes) -> bool:
    return blob.startswith(MAGIC)


def encrypt_entry(name: str, data: bytes, role_keys: Mapping[str, bytes]) -> bytes:
    """Encrypt ``data`` for every role in ``role_keys`` (at least one)."""
    if not role_keys:
        raise ValueError(f"entry {name!r}: a restricted entry needs at least one role key")
    dk, nonce = AESGCM.generate_key(bit_length=256), os.urandom(12)
    ct = AESGCM(dk).encrypt(nonce, data, name.encode())
    header = json.dumps({"nonce": nonce.hex(),
                         "wrapped": {r: aes_key_wrap(k, dk).hex() for r, k in sorted(role_keys.items())}},
                        sort_keys=True).encode()
    return MAGIC + struct.pack(">I", len(header)) + header + ct


def _split(name: str, blob: bytes) -> tuple[dict, bytes]:
    if not is_encrypted(blob):
        raise IntegrityError(f"entry {name!r}: not an encrypted envelope")
    (n,) = struct.unpack(">I", blob[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4
    return json.loads(blob[start:start + n]), blob[start + n:]


def envelope_roles(name: str, blob: bytes) -> list[str]:
    """Roles that can open this envelope."""
    return sorted(_split(name, blob)[0]["wrapped"])


def decrypt_entry(name: str, blob: bytes, role: str, role_key: bytes) -> bytes:
    """Plaintext of an envelope for a holder of ``role``'s key.

    Raises:
        AccessDenied: the envelope is not wrapped for ``role`` or the key is wrong.
        IntegrityError: ciphertext or associated data (entry name) altered.
    """
    header, ct = _split(name, blob)
    wrapped = header["wrapped"].get(role)
    if wrapped is None:
        raise AccessDenied(f"entry {name!r} is not encrypted for role {role!r}")
    try:
        dk = aes_key_unwrap(role_key, bytes.fromhex(wrapped))
    except InvalidUnwrap as exc:
        raise AccessDenied(f"entry {name!r}: wrong key for role {role!r}") from exc
    try:
        return AESGCM(dk).decrypt(bytes.fromhex(header["nonce"]), ct, name.encode())
    except InvalidTag as exc:
        raise IntegrityError(f"entry {name!r}: ciphertext or name altered (GCM tag fails)") from exc
