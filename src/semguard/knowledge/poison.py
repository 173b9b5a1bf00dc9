"""Validation gate against poisoned priors: canary fidelity, weight-delta screening, remap checks.

* Canary: a fidelity score of the current and the candidate codec (e.g. PSNR of a held-out image
  set over a fixed-seed channel, :func:`semguard.evaluation.studies.poisoning.canary_fidelity`);
  the update fails if it drops by more than ``max_drop_db``.  The gate takes the score as a
  callable, so the knowledge base itself knows no codec and no channel.
* Delta screen: features of the weight change (log10 global relative norm, log10 largest
  per-tensor relative norm, fraction of sign flips) scored by robust z (median / MAD) against
  benign calibration updates; fails if any feature's z exceeds ``z_max``.
* Remaps: an existing vocabulary key whose meaning changed, or a codebook row whose new vector
  is nearer another old row than its own (a swap of look-alike entries), fails the update.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from semguard.knowledge.codec_io import state_from_bytes
from semguard.knowledge.store import Gate, KnowledgeBase
from semguard.knowledge.verify import check_blob

__all__ = ["delta_features", "DeltaScreen", "vocab_remaps", "codebook_remaps", "make_gate"]


def delta_features(old: Mapping[str, Tensor], new: Mapping[str, Tensor]) -> np.ndarray:
    """``[3]`` features of a weight update (float tensors only; keys must match)."""
    if set(old) != set(new):
        raise ValueError(f"state dicts differ in keys: {sorted(set(old) ^ set(new))[:5]}")
    keys = [k for k in old if torch.is_floating_point(old[k]) and old[k].numel() > 0]
    d = torch.stack([torch.linalg.vector_norm((new[k] - old[k]).double()) for k in keys])
    w = torch.stack([torch.linalg.vector_norm(old[k].double()) for k in keys]).clamp_min(1e-12)
    flips = sum(int(((torch.sign(old[k]) * torch.sign(new[k])) < 0).sum()) for k in keys)
    total = sum(old[k].numel() for k in keys)
    glob = float(torch.sqrt((d ** 2).sum() / (w ** 2).sum()))
    return np.array([math.log10(max(glob, 1e-12)), math.log10(max(float((d / w).max()), 1e-12)),
                     flips / total])


@dataclass(frozen=True)
class DeltaScreen:
    """Robust z-score screen fitted on benign update features ``[N, F]``."""

    median: tuple[float, ...]
    scale: tuple[float, ...]
    z_max: float = 4.0

    @classmethod
    def fit(cls, benign: np.ndarray, *, z_max: float = 4.0,
            floor: Sequence[float] = (0.1, 0.1, 0.005)) -> DeltaScreen:
        """MAD scale (x1.4826), floored per feature so tiny calibration sets do not over-alarm."""
        benign = np.asarray(benign, dtype=float)
        if benign.ndim != 2 or benign.shape[0] < 2:
            raise ValueError(f"need at least 2 benign updates as [N, F], got shape {benign.shape}")
        med = np.median(benign, axis=0)
        mad = 1.4826 * np.median(np.abs(benign - med), axis=0)
        return cls(tuple(med), tuple(np.maximum(mad, np.asarray(floor))), z_max)

    def score(self, features: np.ndarray) -> float:
        """Largest absolute robust z over features."""
        return float(np.max(np.abs((np.asarray(features) - self.median) / np.asarray(self.scale))))

    def flags(self, features: np.ndarray) -> bool:
        return self.score(features) > self.z_max


def vocab_remaps(old: Mapping[str, object], new: Mapping[str, object]) -> list[str]:
    """Keys present in both vocabularies whose meaning changed (appends are benign)."""
    return sorted(k for k in old if k in new and new[k] != old[k])


def codebook_remaps(old: Tensor, new: Tensor) -> list[int]:
    """Rows ``i`` of codebook ``[K, d]`` whose new vector is nearer another old row than row i."""
    if old.shape != new.shape or old.dim() != 2:
        raise ValueError(f"codebooks must be [K, d] of equal shape, got {tuple(old.shape)}, {tuple(new.shape)}")
    nearest = torch.cdist(new.double(), old.double()).argmin(dim=1)
    return torch.nonzero(nearest != torch.arange(old.shape[0])).flatten().tolist()


def _blob(kb: KnowledgeBase, man: Mapping[str, bytes], pool: Mapping[bytes, bytes], name: str) -> bytes:
    """Verified bytes of ``man[name]`` from the pending ``pool`` or the store."""
    h = man[name]
    data = pool.get(h)
    if data is None:
        data = kb._blob(h)
    if data is None:
        raise KeyError(f"entry {name!r}: bytes neither pending nor stored")
    check_blob(name, h, data)
    return data


def make_gate(codec_name: str | None = None, factory: Callable[..., nn.Module] | None = None,
              canary: Callable[[nn.Module], float] | None = None, *, max_drop_db: float = 1.0,
              screen: DeltaScreen | None = None, vocabularies: Sequence[str] = (),
              codebooks: Sequence[str] = (), canary_label: str = "PSNR", canary_unit: str = "dB") -> Gate:
    """A :data:`Gate` for ``KnowledgeBase.publish`` / ``sync``; returns a reason string or None.

    ``canary(codec) -> score`` (dB by default, higher is better) is computed for the current and the
    candidate weights of ``codec_name`` (built with ``factory``); ``canary_label`` / ``canary_unit``
    name it in the reason (e.g. accuracy in points for a task codec)."""

    def gate(kb: KnowledgeBase, base: dict[str, bytes], cand: dict[str, bytes],
             pool: Mapping[bytes, bytes]) -> str | None:
        reasons = []
        wname = f"{codec_name}/weights"
        if codec_name and wname in base and wname in cand and base[wname] != cand[wname]:
            old = state_from_bytes(_blob(kb, base, pool, wname))
            new = state_from_bytes(_blob(kb, cand, pool, wname))
            if screen is not None and screen.flags(f := delta_features(old, new)):
                reasons.append(f"weight delta anomalous (robust z {screen.score(f):.1f} > {screen.z_max})")
            if canary is not None and factory is not None:
                cfg = json.loads(_blob(kb, cand, pool, f"{codec_name}/config"))
                a, b = factory(**cfg), factory(**cfg)
                a.load_state_dict(old), b.load_state_dict(new)
                a.eval(), b.eval()
                drop = canary(a) - canary(b)
                if drop > max_drop_db:
                    reasons.append(f"canary {canary_label} dropped {drop:.2f} {canary_unit} > {max_drop_db} {canary_unit}")
        for name in vocabularies:
            if name in base and name in cand and base[name] != cand[name]:
                bad = vocab_remaps(json.loads(_blob(kb, base, pool, name)), json.loads(_blob(kb, cand, pool, name)))
                if bad:
                    reasons.append(f"vocabulary {name!r} remaps existing keys {bad[:5]}")
        for name in codebooks:
            if name in base and name in cand and base[name] != cand[name]:
                o = state_from_bytes(_blob(kb, base, pool, name))["codebook"]
                n = state_from_bytes(_blob(kb, cand, pool, name))["codebook"]
                if (bad := codebook_remaps(o, n)):
                    reasons.append(f"codebook {name!r} rows {bad[:5]} now match other entries")
        return "; ".join(reasons) or None

    return gate
