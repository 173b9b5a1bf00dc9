"""Issue 24's cases: each bad input is refused with one line on stderr, exit 2, before any work
(nothing is written), and the fixes that keep what a run did (meta.seconds, --init's sha256)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semguard.cli.main import main


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"/" for p in sorted(root.rglob("*"))}


@pytest.fixture()
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # a command that wrongly writes a default file writes it here
    (tmp_path / "afile").write_text("not a folder\n")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(imgs / f"{i}.png")
    return tmp_path


def _refused(argv: list[str], root: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``argv``; assert exit 2, one stderr line, no traceback, nothing written; return the line."""
    before = _tree(root)
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse
        rc = e.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2, (argv, rc, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert _tree(root) == before, f"{argv} wrote {set(_tree(root)) ^ set(before)}"
    return lines[0]


TRAIN = ["train", "adjscc", "--data", "imgs", "--width", "8", "--crop", "32", "--steps", "1", "--batch", "2",
         "--channels", "awgn", "--val-snr", "10", "--no-progress", "--out", "run"]

# (argv, words the one line must hold): the table of the issue
CASES = [
    (["run", "--out", "afile"], ["run", "--out", "afile", "is a file, not a folder"]),
    (["run", "--out", "afile/out"], ["--out afile/out", "afile is a file, so no folder can be made"]),
    (["train", "switched", "--data", "imgs"], ["CODEC", "switched", "needs low, high, threshold_db", "adjscc"]),
    (["train", "spread", "--data", "imgs"], ["CODEC", "spread", "needs inner"]),
    (TRAIN + ["--snr-min", "30", "--snr-max", "10"], ["--snr-min 30 is above --snr-max 10"]),
    (TRAIN + ["--threads", "0"], ["--threads", "whole number >= 1", "'0'"]),
    (TRAIN + ["--device", "tpu"], ["--device", "cpu, cuda, cuda:N or mps", "'tpu'"]),
    (TRAIN + ["--val-snr", "abc"], ["--val-snr", "comma-separated finite numbers", "'abc'"]),
    (TRAIN + ["--val-snr", "0,nan"], ["--val-snr", "'nan'"]),
    (TRAIN + ["--snr-max=-inf"], ["--snr-max", "finite number", "'-inf'"]),
    (TRAIN + ["--snr-min=--"], ["--snr-min", "expected a value"]),  # argparse alone passes it []
    (TRAIN + ["--steps", "-5"], ["--steps", ">= 0"]),
    (TRAIN + ["--lr", "nan"], ["--lr", "finite"]),
    (TRAIN + ["--channels", "awgn,nosuch"], ["--channels", "no channel named 'nosuch'", "rayleigh"]),
    (TRAIN + ["--objective", "ssim"], ["--objective", "'mse' or 'psnr'"]),
    (TRAIN + ["--seed", "-1"], ["--seed", "0 to"]),
    (["train", "nosuch", "--data", "imgs"], ["no codec named 'nosuch'", "adjscc"]),
    (TRAIN + ["--out", "afile"], ["--out afile", "is a file"]),
    (TRAIN + ["--export", "afile/w.safetensors"], ["--export afile/w.safetensors", "afile is a file"]),
    (TRAIN + ["--export", "imgs"], ["--export imgs", "is a folder"]),
    (TRAIN + ["--init", "missing.safetensors"], ["--init missing.safetensors", "no such file"]),
    (TRAIN + ["--tokenizer", "missing.json"], ["--tokenizer missing.json", "no such file"]),
    (TRAIN + ["--data", "nosuch"], ["--data nosuch", "neither a dataset name"]),
    (["train", "deepsc", "--data", "imgs", "--cbr", "0.5"], ["--cbr does not apply to deepsc"]),
    (TRAIN + ["--symbols-per-token", "3"], ["--symbols-per-token applies to deepsc, not adjscc"]),
    (TRAIN + ["--symbols-per-token", "0"], ["--symbols-per-token", ">= 1"]),
    (["list", "nosuch"], ["invalid choice", "'nosuch'"]),
    (["nosuch"], ["invalid choice"]),
    (["run", "--bogus"], ["unrecognized arguments: --bogus"]),
]


@pytest.mark.parametrize("argv,words", CASES, ids=[" ".join(c[0][:2] + c[0][-2:]) for c in CASES])
def test_bad_input_one_line_exit_2_nothing_written(argv: list[str], words: list[str], work: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    line = _refused(argv, work, capsys)
    assert line.startswith("semguard"), line
    for w in words:
        assert w in line, (w, line)


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists(),
                    reason="needs root to run a case as user nobody (root may write anywhere)")
def test_unwritable_out_folder_as_nobody(tmp_path: Path) -> None:
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="sg-ro-"))  # pytest's tmp_path is 0700: nobody cannot enter it
    os.chmod(top, 0o755)
    ro = top / "ro"
    ro.mkdir(mode=0o755)
    src = Path(__file__).resolve().parents[1] / "src"
    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                            "import semguard.cli.main"], capture_output=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(src)}, cwd=top)
    if probe.returncode != 0:  # e.g. a checkout under a 0700 folder (a fresh clone in mktemp -d)
        pytest.skip("user nobody cannot read this checkout or its virtual environment")
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                        "import sys; from semguard.cli.main import main; sys.exit(main())",
                        "run", "--out", str(ro / "out")], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(src)}, cwd=top)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == [
        f"semguard run: error: --out {ro / 'out'}: cannot create it, {ro} is not writable (permission denied)"]
    assert not (ro / "out").exists()
    # a folder this user may not even enter (pytest's 0700 tmp_path)
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                        "import sys; from semguard.cli.main import main; sys.exit(main())",
                        "run", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(src)}, cwd=top)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert f"--out {tmp_path / 'out'}: cannot look at" in p.stderr and "Permission denied" in p.stderr
    import shutil
    shutil.rmtree(top)


def test_os_errors_during_work_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import semguard.cli.list_cmd as list_cmd

    def boom(args: object) -> int:
        raise PermissionError(13, "Permission denied", "/some/file")

    monkeypatch.setattr(list_cmd, "run", boom)
    assert main(["list"]) == 2
    assert capsys.readouterr().err == "semguard list: error: /some/file: Permission denied\n"


def test_resumed_run_keeps_the_measuring_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import semguard.evaluation.records as records

    clock = iter([100.0, 103.5, 200.0, 201.25])  # two units: 3.5 s and 1.25 s
    monkeypatch.setattr(records.time, "monotonic", lambda: next(clock))
    recs = [records.Record("c", "awgn", 10.0, "psnr", float("nan"), {"k": k}, [1.0, float("nan")]) for k in (1, 2)]
    a, b = (records.config_key(r.config) for r in recs)
    rec = recs[0]
    s = records.ResultStore(tmp_path / "r.jsonl")
    for key, r in zip((a, b), recs):
        assert not s.done(key)
        s.add([r], key)
    assert s.seconds() == 4.8  # round(3.5 + 1.25, 1)
    # strict JSON on disk: nan is null (json.loads with parse_constant refusing NaN would fail otherwise)
    for line in (tmp_path / "r.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    resumed = records.ResultStore(tmp_path / "r.jsonl")  # a resume measures nothing new
    assert resumed.done(a) and resumed.done(b)
    assert resumed.seconds() == 4.8
    assert np.isnan(resumed.records[0].value) and np.isnan(resumed.records[0].samples[1])
    out = resumed.write_json(tmp_path / "res.json", {"seconds": resumed.seconds(), "x": float("inf")})
    body = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(c))
    assert body["meta"] == {"seconds": 4.8, "x": None} and body["records"][0]["value"] is None
    older = tmp_path / "old.jsonl"  # a file from before this change has no times: unknown, not 0
    older.write_text(json.dumps(rec.to_json()) + "\n" + json.dumps({"_done": a}) + "\n")
    old = records.ResultStore(older)
    assert old.done(a) and old.seconds() is None


def test_init_sha256_recorded_in_checkpoint_and_export(work: Path, capsys: pytest.CaptureFixture) -> None:
    from safetensors import safe_open

    from semguard.codecs.zoo import sha256_file

    assert main(TRAIN + ["--steps", "0", "--out", "w", "--export", "w.safetensors"]) == 0
    digest = sha256_file(work / "w.safetensors")
    assert main(TRAIN + ["--init", "w.safetensors", "--export", "w2.safetensors"]) == 0
    ckpt = torch.load(work / "run" / "last.pt", weights_only=True)
    assert ckpt["meta"] == {"init": "w.safetensors", "init_sha256": digest}
    with safe_open(str(work / "w2.safetensors"), framework="pt") as f:
        meta = f.metadata()
    assert meta["init_sha256"] == digest and meta["init"] == "w.safetensors"
    # resuming keeps the record of what the run started from (a new --init is ignored)
    assert main(TRAIN + ["--steps", "2", "--init", "w2.safetensors", "--export", "w3.safetensors"]) == 0
    assert "--init w2.safetensors ignored: resuming" in capsys.readouterr().out
    assert torch.load(work / "run" / "last.pt", weights_only=True)["meta"]["init_sha256"] == digest
    with safe_open(str(work / "w3.safetensors"), framework="pt") as f:
        assert f.metadata()["init_sha256"] == digest
