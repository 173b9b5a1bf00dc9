"""Codec priors through the knowledge base: weights as safetensors bytes, pinned by version/root.

``save_codec`` stores ``<name>/weights`` (``safetensors.torch.save`` of the state dict) and
``<name>/config`` (JSON of ``codec.config``).  ``load_codec`` fetches both through the verified
store and returns the codec with a :class:`PriorRef` saying which priors it runs on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from semguard.knowledge.records import Hello, VersionRecord
from semguard.knowledge.store import Gate, KnowledgeBase

__all__ = ["PriorRef", "state_bytes", "state_from_bytes", "codec_entries", "save_codec", "load_codec",
           "load_state"]


@dataclass(frozen=True)
class PriorRef:
    """Which priors a component was loaded from: knowledge base, version, entry root, entry name."""

    kb_id: str
    version: int
    root: bytes
    name: str

    def hello(self, kb: KnowledgeBase) -> Hello:
        """Handshake message for this pinned version of ``kb``."""
        return Hello(self.kb_id, self.version, self.root, kb.log_root(self.version))


def state_bytes(module: nn.Module) -> bytes:
    """Deterministic safetensors bytes of ``module.state_dict()`` (contiguous CPU copies)."""
    return st_save({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()})


def state_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    """Inverse of :func:`state_bytes`."""
    return st_load(data)


def codec_entries(name: str, codec: nn.Module) -> dict[str, bytes]:
    """Entries that hold ``codec``: ``<name>/weights`` and ``<name>/config``."""
    config = getattr(codec, "config", {})
    return {f"{name}/weights": state_bytes(codec),
            f"{name}/config": json.dumps(config, sort_keys=True).encode()}


def save_codec(kb: KnowledgeBase, key: Ed25519PrivateKey, name: str, codec: nn.Module, *,
               note: str = "", gate: Gate | None = None) -> VersionRecord:
    """Publish ``codec``'s weights and config as one new version of ``kb``."""
    return kb.publish(key, codec_entries(name, codec), note=note or f"codec {name}", gate=gate)


def load_state(kb: KnowledgeBase, name: str, *, version: int | None = None,
               root: bytes | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any], PriorRef]:
    """Verified (state dict, config, PriorRef) of codec ``name`` at ``version`` or ``root``."""
    v = kb.resolve(version, root)
    state = state_from_bytes(kb.get(f"{name}/weights", v))
    config = json.loads(kb.get(f"{name}/config", v))
    return state, config, PriorRef(kb.kb_id, v, kb.record(v).root, name)


def load_codec(kb: KnowledgeBase, name: str, factory: Callable[..., nn.Module], *,
               version: int | None = None, root: bytes | None = None) -> nn.Module:
    """Build ``factory(**config)``, load verified weights strictly, attach ``.priors`` (PriorRef)."""
    state, config, ref = load_state(kb, name, version=version, root=root)
    codec = factory(**config)
    codec.load_state_dict(state, strict=True)
    codec.priors = ref
    return codec
