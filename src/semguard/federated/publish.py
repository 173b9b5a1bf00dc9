"""The final global codec into the knowledge base: a new signed version with its training record.

``<name>/weights`` and ``<name>/config`` as every codec (``knowledge.codec_io``), plus
``<name>/training``: JSON of rounds, clients, strategy, attack, malicious ids, per-round accuracy,
reputations and the model's sha256.  The knowledge base's poisoning screen
(``knowledge.poison.make_gate`` with a :class:`DeltaScreen` fitted on benign global changes)
runs as the publish gate, and the same gate is what a receiver passes to ``sync`` before it
accepts the version.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from torch import Tensor

from semguard.codecs.base import SemanticCodec
from semguard.federated.model import federated_codec, set_vector
from semguard.knowledge.codec_io import codec_entries
from semguard.knowledge.poison import DeltaScreen, delta_features, make_gate
from semguard.knowledge.records import VersionRecord
from semguard.knowledge.store import KnowledgeBase

__all__ = ["training_record", "publish_global", "fit_delta_screen", "federated_factory"]


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
