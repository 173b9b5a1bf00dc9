"""Data loading: IDX parsing, checksummed download from a local server, discovery errors,
image folders, crop sampling, the shipped evaluation photos."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semguard.data import CropSampler, ImageFolder, MissingDataError, image_source, shipped_photos
from semguard.data.download import ChecksumError, DownloadError, fetch, verify_file
from semguard.data.idx import find_idx_files, read_idx


def _write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> None:
    magic = 0x803 if arr.ndim == 3 else 0x801
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape) + arr.tobytes()
    if gz:
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def test_read_idx_round_trip(tmp_path: Path) -> None:
    imgs = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    _write_idx(tmp_path / "x.gz", imgs)
    _write_idx(tmp_path / "y", np.array([3, 7], dtype=np.uint8), gz=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "x.gz"), imgs)
    np.testing.assert_array_equal(read_idx(tmp_path / "y"), [3, 7])


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x00\x00\x09\x99" + b"\x00" * 8)
    with pytest.raises(ValueError, match="bad IDX magic"):
        read_idx(tmp_path / "bad")
    _write_idx(tmp_path / "short", np.zeros((2, 28, 28), np.uint8), gz=False)
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-5])
    with pytest.raises(ValueError, match="bytes follow"):
        read_idx(tmp_path / "short")


def test_missing_dataset_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMGUARD_DATA", str(tmp_path))
    monkeypatch.setattr("semguard.data.idx._candidates", lambda name: [tmp_path / name])
    with pytest.raises(MissingDataError, match="apt-get install dataset-fashion-mnist.*put train-images"):
        find_idx_files("fashion-mnist", download=False)


@pytest.fixture()
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "served"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_verifies_checksum_from_local_server(file_server: tuple[str, Path], tmp_path: Path) -> None:
    url, root = file_server
    payload = b"semguard" * 1000
    (root / "f.bin").write_bytes(payload)
    good = "sha256:" + hashlib.sha256(payload).hexdigest()
    dest = fetch(url + "f.bin", tmp_path / "dl" / "f.bin", good)
    assert dest.read_bytes() == payload
    # a tampered file is refused and nothing is left behind that looks valid
    with pytest.raises(ChecksumError, match="does not match"):
        fetch(url + "f.bin", tmp_path / "dl2" / "f.bin", "md5:" + "0" * 32)
    assert not list((tmp_path / "dl2").iterdir())
    with pytest.raises(DownloadError, match="could not download"):
        fetch(url + "missing.bin", tmp_path / "dl3" / "x", good)


def test_idx_download_path_uses_publisher_md5(file_server: tuple[str, Path], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    url, root = file_server
    arrays = {"train-images-idx3-ubyte": np.zeros((60000, 28, 28), np.uint8),
              "train-labels-idx1-ubyte": np.zeros(60000, np.uint8),
              "t10k-images-idx3-ubyte": np.zeros((10000, 28, 28), np.uint8),
              "t10k-labels-idx1-ubyte": np.ones(10000, np.uint8)}
    md5 = {}
    keys = {"train-images-idx3-ubyte": "train_x", "train-labels-idx1-ubyte": "train_y",
            "t10k-images-idx3-ubyte": "test_x", "t10k-labels-idx1-ubyte": "test_y"}
    for stem, arr in arrays.items():
        _write_idx(root / f"{stem}.gz", arr)
        md5[keys[stem]] = hashlib.md5((root / f"{stem}.gz").read_bytes()).hexdigest()
    from semguard.data import idx

    monkeypatch.setitem(idx.IDX_SETS, "mnist", {**idx.IDX_SETS["mnist"], "url": url, "md5": md5})
    monkeypatch.setenv("SEMGUARD_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr("semguard.data.idx._candidates", lambda name: [tmp_path / "cache" / name])
    src = idx.load_idx_dataset("mnist")
    assert src.train_x.shape == (60000, 1, 28, 28) and int(src.test_y.sum()) == 10000
    verify_file(tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz", "md5:" + md5["test_y"])


def test_image_folder_source_and_crop_sampler(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (70 + i, 90, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    src = image_source(str(tmp_path))
    assert len(src.train) + len(src.val) == 4
    # evaluation views are cut to multiples of 16 (the deepest codec layout), not of 4
    assert all(tuple(v.shape[-2:]) == (64, 64) and v.dtype == torch.float32 for v in src.val)
    assert [tuple(im.shape[-2:]) for im in ImageFolder(tmp_path)] == [(64, 80)] * 4
    sampler = CropSampler(src.train, crop=32, short_sides=(1000,))  # larger than any: kept as they are
    assert [p.shape for p in sampler.pool] == [t.shape for t in src.train]
    batch = sampler.sample(5, torch.Generator().manual_seed(0))
    assert batch.shape == (5, 3, 32, 32) and 0 <= batch.min() and batch.max() <= 1
    again = sampler.sample(5, torch.Generator().manual_seed(0))
    assert torch.equal(batch, again)


def test_crop_sampler_resizes_by_short_side() -> None:
    big = torch.zeros(3, 1600, 2560, dtype=torch.uint8)
    small = torch.zeros(3, 300, 400, dtype=torch.uint8)
    sampler = CropSampler([big, small], crop=64, short_sides=(256, 512))
    # the photo at short sides 256 and 512; the small image at 256 and at its own 300 (never upscaled)
    assert [tuple(p.shape[-2:]) for p in sampler.pool] == [(256, 410), (512, 819), (256, 341), (300, 400)]
    assert abs(float(sampler.weights.sum()) - 1) < 1e-12
    with pytest.raises(ValueError, match="no image is at least 64x64"):
        CropSampler([torch.zeros(3, 40, 40, dtype=torch.uint8)], crop=64)


def test_image_source_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="neither a dataset name"):
        image_source(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="no images"):
        image_source(str(tmp_path))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png: not a readable image"):
        image_source(str(tmp_path))


def test_shipped_photos_are_there() -> None:
    photos = shipped_photos()
    assert photos.shape[1:] == (3, 256, 256) and photos.shape[0] >= 6
    assert 0.1 < float(photos.mean()) < 0.9  # real content, not blank


def _cifar_tarball(path: Path, n: int = 4, evil: bool = False) -> None:
    import io
    import pickle
    import tarfile

    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            if evil and name == "test_batch":
                raw = pickle.dumps(print)  # refers to builtins.print: must be refused
            else:
                raw = pickle.dumps({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                    b"labels": list(range(n))}, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def test_cifar10_tarball_is_read_and_unsafe_pickles_refused(tmp_path: Path) -> None:
    from semguard.data.cifar import read_cifar10

    _cifar_tarball(tmp_path / "c.tar.gz")
    src = read_cifar10(tmp_path / "c.tar.gz")
    assert src.train_x.shape == (20, 3, 32, 32) and src.test_x.shape == (4, 3, 32, 32)
    assert src.train_y.tolist() == [0, 1, 2, 3] * 5 and len(src.classes) == 10
    _cifar_tarball(tmp_path / "evil.tar.gz", evil=True)
    with pytest.raises(ValueError, match="refusing to load"):
        read_cifar10(tmp_path / "evil.tar.gz")


def test_cifar_and_kodak_missing_say_where_to_put_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from semguard.registry import build

    monkeypatch.setenv("SEMGUARD_DATA", str(tmp_path))
    with pytest.raises(MissingDataError, match="put cifar-10-python.tar.gz .* in"):
        build("dataset", "cifar10", download=False)
    with pytest.raises(MissingDataError, match="put kodim01.png .. kodim24.png in"):
        build("dataset", "kodak")
