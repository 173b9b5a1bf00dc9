"""The final global codec into the knowledge base: a new signed version with its training record.

``<name>/weights`` and ``<name>/config`` as every codec (``knowledge.codec_io``), plus
``<name>/training``: JSON of rounds, clients, strategy, attack, malicious ids, per-round accuracy,
reputations and the model's sha256.  The knowledge base's poisoning screen
(``knowledge.poison.make_gate`` with a :class:`DeltaScreen` fitted on benign global changes)
runs as the publish gate, and the same gate is what a receiver passes to ``sync`` before it
accepts the version.

:func:`publish_run` (what ``semguard fl --publish`` calls) screens a finished run twice in one
gate: the last round's change against the run's earlier round-to-round changes (delta screen and
held-out accuracy, so a poisoned last round is refused even for a first publication), and the
candidate's held-out accuracy against the version the knowledge base holds now (no drop of more
than ``max_drop`` points).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from torch import Tensor, nn

from semguard.codecs.base import SemanticCodec
from semguard.federated.model import federated_codec, set_vector
from semguard.knowledge.codec_io import codec_entries
from semguard.knowledge.poison import DeltaScreen, delta_features, make_gate
from semguard.knowledge.records import VersionRecord
from semguard.knowledge.store import Gate, KnowledgeBase

__all__ = ["training_record", "publish_global", "fit_delta_screen", "federated_factory", "run_gate", "publish_run"]


def federated_factory(**config: Any) -> SemanticCodec:
    """Rebuild a federated codec from its stored config (for ``knowledge.codec_io.load_codec``)."""
    config = dict(config)
    config.pop("norm", None)
    return federated_codec("task", **config)


def training_record(rec: dict[str, Any]) -> dict[str, Any]:
    """What a receiver should know about how the global codec was trained (no client data)."""
    cfg = rec["config"]
    return {"engine": rec["engine"], "rounds": cfg["rounds"], "clients": cfg["clients"],
            "strategy": cfg["strategy"], "attack": cfg["attack"], "malicious_ids": rec["malicious_ids"],
            "alpha": cfg["alpha"], "seed": cfg["seed"], "dp_noise": rec.get("dp_noise", 0.0),
            "accuracy_by_round": [r["accuracy"] for r in rec["rounds"]],
            "epsilon_by_round": [r.get("epsilon") for r in rec["rounds"]],
            "reputation": rec.get("reputation"), "free_riders_detected": rec.get("free_riders_detected"),
            "final_sha256": rec["final_sha256"]}


def _state(codec: SemanticCodec, vec: Tensor) -> dict[str, Tensor]:
    set_vector(codec, vec)
    return {k: v.detach().clone() for k, v in codec.state_dict().items()}


def fit_delta_screen(codec: SemanticCodec, vectors: list[Tensor], *, z_max: float = 4.0) -> DeltaScreen:
    """A :class:`DeltaScreen` fitted on the changes between consecutive benign global models."""
    if len(vectors) < 3:
        raise ValueError(f"need at least 3 global models to calibrate the screen, got {len(vectors)}")
    states = [_state(codec, v) for v in vectors]
    feats = np.stack([delta_features(a, b) for a, b in zip(states, states[1:])])
    return DeltaScreen.fit(feats, z_max=z_max)


def publish_global(kb: KnowledgeBase, key: Ed25519PrivateKey, codec: SemanticCodec, vec: Tensor,
                   rec: dict[str, Any], *, name: str = "fl-task", screen: DeltaScreen | None = None
                   ) -> VersionRecord:
    """Publish ``vec`` (loaded into ``codec``) and its training record as a new version of ``kb``.

    With ``screen``, the knowledge base's poisoning gate checks the change from the current
    version first and raises ``PoisoningRejected`` (the update quarantined) when it is anomalous.
    """
    set_vector(codec, vec)
    put = codec_entries(name, codec)
    put[f"{name}/training"] = json.dumps(training_record(rec), sort_keys=True).encode()
    gate = make_gate(name, screen=screen) if screen is not None else None
    cfg = rec["config"]
    return kb.publish(key, put, note=f"federated {name}: {cfg['strategy']}, {cfg['rounds']} rounds, "
                                     f"{cfg['clients']} clients", gate=gate)


def run_gate(name: str, codec: SemanticCodec, previous: Tensor, screen: DeltaScreen,
             accuracy: Callable[[nn.Module], float], max_drop: float) -> Gate:
    """The gate of :func:`publish_run`: ``make_gate`` twice, against the run's previous round
    (``previous``: the global model before the last round; delta screen and accuracy) and against
    the version published now (accuracy).  ``accuracy(codec)`` is in points (0-100)."""
    last_round = make_gate(name, federated_factory, accuracy, max_drop_db=max_drop, screen=screen,
                           canary_label="accuracy", canary_unit="points")
    published = make_gate(name, federated_factory, accuracy, max_drop_db=max_drop, canary_label="accuracy",
                          canary_unit="points")
    set_vector(codec, previous)
    prev = codec_entries(name, codec)
    hashes = {n: hashlib.sha256(d).digest() for n, d in prev.items()}

    def gate(kb: KnowledgeBase, base: dict[str, bytes], cand: dict[str, bytes], pool: Mapping[bytes, bytes]
             ) -> str | None:
        reasons = []
        why = last_round(kb, {**base, **hashes}, cand, {**pool, **{hashes[n]: d for n, d in prev.items()}})
        if why:
            reasons.append(f"last round against the run's earlier rounds: {why}")
        why = published(kb, base, cand, pool)
        if why:
            reasons.append(f"against the published version {kb.version}: {why}")
        return "; ".join(reasons) or None

    return gate


def publish_run(kb_path: str | Path, key: Ed25519PrivateKey, codec: SemanticCodec, vectors: list[Tensor],
                rec: dict[str, Any], accuracy: Callable[[nn.Module], float], *, name: str = "fl-task",
                max_drop: float = 2.0, z_max: float = 4.0) -> VersionRecord:
    """Publish the last of ``vectors`` (the global model before round 1 and after each round) into
    the knowledge base at ``kb_path`` behind :func:`run_gate`; ``PoisoningRejected`` when refused."""
    if len(vectors) < 4:
        raise ValueError(f"--publish needs at least 3 rounds (the screen is fitted on the earlier rounds), "
                         f"got {len(vectors) - 1}")
    screen = fit_delta_screen(codec, vectors[:-1], z_max=z_max)
    gate = run_gate(name, codec, vectors[-2], screen, accuracy, max_drop)
    kb = KnowledgeBase(kb_path)
    set_vector(codec, vectors[-1])
    put = codec_entries(name, codec)
    put[f"{name}/training"] = json.dumps(training_record(rec), sort_keys=True).encode()
    cfg = rec["config"]
    return kb.publish(key, put, note=f"federated {name}: {cfg['strategy']}, {cfg['rounds']} rounds, "
                                     f"{cfg['clients']} clients", gate=gate)
