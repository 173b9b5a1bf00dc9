"""CIFAR-10 from its canonical python tarball (``cifar-10-python.tar.gz``), and Kodak by folder.

The tarball holds pickled batches; they are read with an unpickler that accepts only the
numpy array reconstruction they need, so a tampered file cannot run code.  Looked for in
``$SEMGUARD_DATA/cifar-10`` (default ``~/.cache/semguard/data``), else downloaded from the
publisher and checked against its md5.
"""

from __future__ import annotations

import io
import logging
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semguard.data.download import DownloadError, data_root, fetch
from semguard.data.images import ImageFolder
from semguard.data.photos import MissingDataError
from semguard.data.sources import ImageSource, LabelledSource
from semguard.registry import register

__all__ = ["CIFAR10_URL", "CIFAR10_MD5", "read_cifar10", "find_cifar10", "KODAK_FILES"]

log = logging.getLogger(__name__)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
KODAK_FILES = tuple(f"kodim{i:02d}.png" for i in range(1, 25))

_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}; refusing to load it")
        return super().find_class(module, name)


def _load_batch(raw: bytes, member: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _ArraysOnly(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise ValueError(f"CIFAR-10 {member}: not a valid batch ({e})") from e
    data, labels = np.asarray(d[b"data"], dtype=np.uint8), np.asarray(d[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(f"CIFAR-10 {member}: expected [N, 3072] uint8 data and N labels, got {data.shape}")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar10(path: str | Path) -> LabelledSource:
    """Decode ``cifar-10-python.tar.gz``: 50k train / 10k test, float ``[N, 3, 32, 32]``."""
    path = Path(path)
    try:
        tar = tarfile.open(path, "r:gz")
    except (tarfile.TarError, OSError) as e:
        raise ValueError(f"{path}: not a readable CIFAR-10 tarball ({e})") from e
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with tar:
        for m in tar.getmembers():
            name = Path(m.name).name
            if m.isfile() and (name.startswith("data_batch_") or name == "test_batch"):
                f = tar.extractfile(m)
                assert f is not None
                parts[name] = _load_batch(f.read(), name)
    train = [parts[k] for k in sorted(parts) if k.startswith("data_batch_")]
    if len(train) != 5 or "test_batch" not in parts:
        raise ValueError(f"{path}: expected data_batch_1..5 and test_batch, found {sorted(parts)}")

    def imgs(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.copy()).float() / 255.0

    tx = np.concatenate([x for x, _ in train])
    ty = np.concatenate([y for _, y in train])
    return LabelledSource("cifar10", imgs(tx), torch.from_numpy(ty), imgs(parts["test_batch"][0]),
                          torch.from_numpy(parts["test_batch"][1]), CIFAR10_CLASSES)


def find_cifar10(*, download: bool = True) -> Path:
    """The tarball: a local copy in ``$SEMGUARD_DATA/cifar-10``, else a verified download."""
    dest = data_root() / "cifar-10" / "cifar-10-python.tar.gz"
    if dest.is_file():
        return dest
    if download:
        try:
            return fetch(CIFAR10_URL, dest, f"md5:{CIFAR10_MD5}", timeout=10)
        except DownloadError as e:
            log.info("%s", e)
    raise MissingDataError(f"CIFAR-10 not found: put cifar-10-python.tar.gz (md5 {CIFAR10_MD5}) in {dest.parent} "
                           "(download failed or disabled)")


@register("dataset", "cifar10")
def cifar10(*, download: bool = True) -> LabelledSource:
    """CIFAR-10 (Krizhevsky 2009), 50k/10k 32x32 RGB, 10 classes."""
    return read_cifar10(find_cifar10(download=download))


@register("dataset", "kodak")
def kodak(*, root: str | Path | None = None) -> ImageSource:
    """The Kodak set (24 PNGs ``kodim01..24``) from ``root`` or ``$SEMGUARD_DATA/kodak``; evaluation only."""
    folder = Path(root) if root is not None else data_root() / "kodak"
    if not (folder / KODAK_FILES[0]).is_file():
        raise MissingDataError(f"Kodak not found: put {KODAK_FILES[0]} .. {KODAK_FILES[-1]} in {folder} "
                               "(or pass --data /path/to/kodak)")
    return ImageSource("kodak", [], list(ImageFolder(folder)))  # full 768x512 images
