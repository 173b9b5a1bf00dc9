"""Per-codec setups of a federation, by ``--codec`` name (:data:`SETUPS`, :func:`codec_setup`).

Each setup is one small class (:class:`~semguard.federated.setups.base.CodecSetup`) in its own
file; the data and metrics modules it uses are imported only when a run of that codec needs them.
"""

from __future__ import annotations

from semguard.federated.setups.base import EVAL_SEED, CodecData, CodecSetup
from semguard.federated.setups.deepjscc import DeepJSCCSetup
from semguard.federated.setups.deepsc import DeepSCSetup
from semguard.federated.setups.task import TaskSetup

__all__ = ["EVAL_SEED", "SETUPS", "CodecData", "CodecSetup", "codec_setup"]

SETUPS: dict[str, CodecSetup] = {s.name: s for s in (TaskSetup(), DeepJSCCSetup(), DeepSCSetup())}


def codec_setup(name: str) -> CodecSetup:
    """The setup of codec ``name``; a one-line ``ValueError`` naming the choices for any other."""
    if name not in SETUPS:
        raise ValueError(f"--codec {name!r} unknown; choose from {', '.join(SETUPS)}")
    return SETUPS[name]
