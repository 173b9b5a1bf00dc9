"""MNIST and Fashion-MNIST from their canonical IDX files (gzip or raw).

Looked for, in order, in ``$SEMGUARD_DATA/<name>``, ``~/.cache/semguard/data/<name>`` and
``/usr/share/datasets/<name>`` (Debian's ``dataset-fashion-mnist``), then downloaded from the
publisher with its checksum.  Whatever the source, the decoded arrays are checked (magic
number, counts, 28x28).
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import torch

from semguard.data.download import DownloadError, data_root, fetch
from semguard.data.photos import MissingDataError
from semguard.data.sources import LabelledSource
from semguard.registry import register

__all__ = ["read_idx", "find_idx_files", "load_idx_dataset", "IDX_SETS"]

log = logging.getLogger(__name__)

FILES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
         "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}

# publisher URLs and the md5 digests they publish for the .gz files
IDX_SETS: dict[str, dict[str, object]] = {
    "fashion-mnist": {
        "url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "md5": {"train_x": "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "train_y": "25c81989df183df01b3e8a0aad5dffbe",
                "test_x": "bef4ecab320f06d8554ea6380940ec79", "test_y": "bb300cfdad3c16e7a12a480ee83cd310"},
        "debian": "dataset-fashion-mnist",
        "classes": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                    "Bag", "Ankle boot"),
    },
    "mnist": {
        "url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "md5": {"train_x": "f68b3c2dcbeaaa9fbdd348bbdeb94873", "train_y": "d53e105ee54ea40749a09fcbcd1e9432",
                "test_x": "9fb629c4189551a2d022fa330f9573f3", "test_y": "ec29112dd5afa0611ce80d1b7f02629c"},
        "debian": None,
        "classes": tuple(str(i) for i in range(10)),
    },
}

_MAGIC = {0x00000803: 3, 0x00000801: 1}


def read_idx(path: str | Path) -> np.ndarray:
    """Decode an IDX file (``.gz`` or raw) of unsigned bytes to a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: unreadable IDX file ({e})") from e
    if len(raw) < 8:
        raise ValueError(f"{path}: too short to be an IDX file")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _MAGIC:
        raise ValueError(f"{path}: bad IDX magic 0x{magic:08x} (expected 0x00000801 labels or 0x00000803 images)")
    ndim = _MAGIC[magic]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) - offset != count:
        raise ValueError(f"{path}: header says {dims} ({count} bytes) but {len(raw) - offset} bytes follow")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _candidates(name: str) -> list[Path]:
    return [data_root() / name, Path("/usr/share/datasets") / name]


def find_idx_files(name: str, *, download: bool = True) -> dict[str, Path]:
    """Paths of the four IDX files of ``name``: a local copy, else a verified download."""
    spec = IDX_SETS[name]
    for folder in _candidates(name):
        found = {}
        for key, stem in FILES.items():
            for cand in (folder / f"{stem}.gz", folder / stem):
                if cand.is_file():
                    found[key] = cand
                    break
        if len(found) == 4:
            return found
    if download:
        dest = data_root() / name
        md5 = spec["md5"]
        assert isinstance(md5, dict)
        try:
            return {k: fetch(f"{spec['url']}{FILES[k]}.gz", dest / f"{FILES[k]}.gz", f"md5:{md5[k]}", timeout=10)
                    for k in FILES}
        except DownloadError as e:
            log.info("%s", e)
    hint = f"`apt-get install {spec['debian']}`, or " if spec["debian"] else ""
    raise MissingDataError(f"{name} not found: {hint}put {', '.join(s + '.gz' for s in FILES.values())} in "
                           f"{data_root() / name} (searched {', '.join(map(str, _candidates(name)))}; "
                           "download failed or disabled)")


def load_idx_dataset(name: str, *, download: bool = True) -> LabelledSource:
    """The full train/test split of an IDX dataset as float ``[N, 1, 28, 28]`` in [0, 1]."""
    paths = find_idx_files(name, download=download)
    arrays = {k: read_idx(p) for k, p in paths.items()}
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.shape != (n, 28, 28) or y.shape != (n,):
            raise ValueError(f"{name} {split}: expected {n} images of 28x28 and {n} labels, got {x.shape}, {y.shape}")
        if y.max() > 9:
            raise ValueError(f"{name} {split}: labels outside 0..9")

    def imgs(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.copy()).unsqueeze(1).float() / 255.0

    classes = IDX_SETS[name]["classes"]
    assert isinstance(classes, tuple)
    return LabelledSource(name, imgs(arrays["train_x"]), torch.from_numpy(arrays["train_y"].astype(np.int64)),
                          imgs(arrays["test_x"]), torch.from_numpy(arrays["test_y"].astype(np.int64)), classes)


@register("dataset", "fashion-mnist")
def fashion_mnist(*, download: bool = True) -> LabelledSource:
    """Fashion-MNIST (Xiao et al. 2017), 60k/10k 28x28 greyscale, 10 classes."""
    return load_idx_dataset("fashion-mnist", download=download)


@register("dataset", "mnist")
def mnist(*, download: bool = True) -> LabelledSource:
    """MNIST (LeCun et al. 1998), 60k/10k 28x28 greyscale digits."""
    return load_idx_dataset("mnist", download=download)
