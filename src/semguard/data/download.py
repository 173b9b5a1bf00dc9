"""Download with checksum verification, and the local data folder.

Files land in ``$SEMGUARD_DATA`` (default ``~/.cache/semguard/data``).  A download is written
to a temporary file, verified against its published digest, then moved into place, so a
failed or tampered download never leaves a file that looks valid.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["data_root", "file_digest", "verify_file", "fetch", "ChecksumError", "DownloadError"]

log = logging.getLogger(__name__)


class ChecksumError(ValueError):
    """A file's digest differs from the published one."""


class DownloadError(OSError):
    """The network could not deliver a file."""


def data_root() -> Path:
    """``$SEMGUARD_DATA`` or ``~/.cache/semguard/data``."""
    return Path(os.environ.get("SEMGUARD_DATA", Path.home() / ".cache" / "semguard" / "data")).expanduser()


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: str | Path, checksum: str) -> None:
    """Check ``path`` against ``"sha256:<hex>"`` or ``"md5:<hex>"`` (the digest its publisher gives)."""
    algo, _, want = checksum.partition(":")
    if algo not in ("sha256", "md5") or not want:
        raise ValueError(f"checksum must look like 'sha256:<hex>' or 'md5:<hex>', got {checksum!r}")
    got = file_digest(path, algo)
    if got != want.lower():
        raise ChecksumError(f"{path}: {algo} {got} does not match the published {want}")


def fetch(url: str, dest: str | Path, checksum: str, *, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` unless a verified copy is already there; return ``dest``."""
    dest = Path(dest)
    if dest.is_file():
        verify_file(dest, checksum)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    tmp = Path(tmp_name)
    try:
        log.info("downloading %s", url)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        verify_file(tmp, checksum)
        os.replace(tmp, dest)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        raise DownloadError(f"could not download {url}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return dest
