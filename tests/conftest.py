"""Shared test setup: one CPU thread per test process keeps timings predictable on 2 cores."""

from pathlib import Path

import pytest
import torch

from semguard.knowledge import KnowledgeBase, generate_key

torch.set_num_threads(1)


def two_version_kb(path: Path):
    """A knowledge base with two signed versions: v1 vocab + codebook, v2 adds weights, drops codebook."""
    key = generate_key()
    kb = KnowledgeBase.init(path, key)
    kb.publish(key, {"vocab": b'{"a": 1}', "codebook": b"\x01\x02\x03"})
    kb.publish(key, {"weights": b"w" * 100}, ["codebook"])
    return kb, key


@pytest.fixture()
def kb2(tmp_path: Path):
    """``(kb, owner key)`` with two versions (see :func:`two_version_kb`)."""
    return two_version_kb(tmp_path / "kb.db")
