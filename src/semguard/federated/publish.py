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
    """Rebuild a federated codec from its stored config (for ``knowledge.codec_io.load_codec``).

    A DeepSC gets the shipped tokenizer, which must be the one its config names (``tokenizer_sha256``):
    the same ids on another tokenizer would decode to other words (ValueError)."""
    config = dict(config)
    config.pop("norm", None)
    name = config.pop("federated_codec", "task")
    if name != "deepsc":
        return federated_codec(name, **config)
    from semguard.codecs.deepsc import shipped_tokenizer
    from semguard.federated.text import tokenizer_sha256

    tok, want = shipped_tokenizer(), config.pop("tokenizer_sha256", None)
    if want != tokenizer_sha256(tok):
        raise ValueError(f"stored DeepSC config: tokenizer_sha256 {want} is not the shipped tokenizer's "
                         f"{tokenizer_sha256(tok)}")
    codec = federated_codec(name, tokenizer=tok, **config)
    codec.config["tokenizer_sha256"] = want
    return codec


def training_record(rec: dict[str, Any]) -> dict[str, Any]:
    """What a receiver should know about how the global codec was trained (no client data)."""
    from semguard.federated.engine import METRICS

    cfg = rec["config"]
    codec = cfg.get("codec", "task")
    by_round = {k: [r[k] for r in rec["rounds"]] for k in METRICS[codec]}
    return {"engine": rec["engine"], "codec": codec, "rounds": cfg["rounds"], "clients": cfg["clients"],
            "strategy": cfg["strategy"], "attack": cfg["attack"], "malicious_ids": rec["malicious_ids"],
            "alpha": cfg["alpha"], "seed": cfg["seed"], "dp_noise": rec.get("dp_noise", 0.0),
            **({"accuracy_by_round": by_round["accuracy"]} if codec == "task" else {}), "metrics_by_round": by_round,
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
             accuracy: Callable[[nn.Module], float], max_drop: float, *, canary_label: str = "accuracy",
             canary_unit: str = "points") -> Gate:
    """The gate of :func:`publish_run`: ``make_gate`` twice, against the run's previous round
    (``previous``: the global model before the last round; delta screen and held-out score) and
    against the version published now (held-out score).  ``accuracy(codec)`` is the held-out score,
    higher is better, in ``canary_unit``: accuracy or BLEU-1 in points (0-100), PSNR in dB."""
    label = {"canary_label": canary_label, "canary_unit": canary_unit}
    last_round = make_gate(name, federated_factory, accuracy, max_drop_db=max_drop, screen=screen, **label)
    published = make_gate(name, federated_factory, accuracy, max_drop_db=max_drop, **label)
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
                max_drop: float = 2.0, z_max: float = 4.0, canary_label: str = "accuracy",
                canary_unit: str = "points") -> VersionRecord:
    """Publish the last of ``vectors`` (the global model before round 1 and after each round) into
    the knowledge base at ``kb_path`` behind :func:`run_gate`; ``PoisoningRejected`` when refused."""
    if len(vectors) < 4:
        raise ValueError(f"--publish needs at least 3 rounds (the screen is fitted on the earlier rounds), "
                         f"got {len(vectors) - 1}")
    screen = fit_delta_screen(codec, vectors[:-1], z_max=z_max)
    gate = run_gate(name, codec, vectors[-2], screen, accuracy, max_drop, canary_label=canary_label,
                    canary_unit=canary_unit)
    kb = KnowledgeBase(kb_path)
    set_vector(codec, vectors[-1])
    put = codec_entries(name, codec)
    put[f"{name}/training"] = json.dumps(training_record(rec), sort_keys=True).encode()
    cfg = rec["config"]
    return kb.publish(key, put, note=f"federated {name}: {cfg['strategy']}, {cfg['rounds']} rounds, "
                                     f"{cfg['clients']} clients", gate=gate)
