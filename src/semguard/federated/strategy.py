"""Named server strategies over the pure rules of :mod:`semguard.federated.aggregate`.

A :class:`ServerAggregator` holds the one piece of state a rule needs between rounds (the
previous aggregate for centered clipping, the :class:`ReputationState` for ours) in plain sight:
``step`` commits it, ``preview`` evaluates the rule on a candidate set of updates without touching
it (what an aggregator-aware attacker is handed).  The Flower ``ServerApp`` and the in-process
engine both aggregate through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from semguard.federated import aggregate as A
from semguard.federated import reputation as R
from semguard.registry import register

__all__ = ["ServerAggregator", "STRATEGIES", "FLOWER_BASELINES", "REPUTATION", "VARIANTS"]

# the variants' fixed settings on top of the shared ReputationConfig (reputation-axes: step 8, session 15)
# reputation-floor: the majority floor filled by this round's agreement, not the old reputation (session 19)
# reputation-votes: reputation-floor, and near copies share their votes (soft_vote_size; session 20)
# reputation-two-pass: reputation-votes, every client scored again against the clients the first pass kept
# reputation-vote-median: reputation-votes whose consensus and progress direction are vote-weighted medians
# reputation-gated: reputation-votes whose consensus holds only the clients the progress test passes in full
VARIANTS = {"reputation-axes": {"axes": 2}, "reputation-floor": {"floor_rank": "agreement"},
            "reputation-votes": {"floor_rank": "agreement", "soft_votes": True},
            "reputation-two-pass": {"floor_rank": "agreement", "soft_votes": True, "two_pass": True},
            "reputation-vote-median": {"floor_rank": "agreement", "soft_votes": True, "vote_median": True},
            "reputation-gated": {"floor_rank": "agreement", "soft_votes": True, "progress_gate": True}}
# strategies Flower ships (the baselines) and ours / recent ones it lacks; every variant is one of ours
FLOWER_BASELINES = ("fedavg", "krum", "multikrum", "median", "trimmed_mean", "bulyan")
REPUTATION = ("reputation", "reputation-root", *VARIANTS)
STRATEGIES = FLOWER_BASELINES + ("centered_clipping", "fltrust") + REPUTATION

@dataclass
class ServerAggregator:
    """One named rule plus its explicit state.

    name: one of :data:`STRATEGIES`.  n_clients: client ids run ``0 .. n_clients - 1``.  f: the
    number of Byzantine clients the rule assumes.  dim: parameters per update.
    """

    name: str
    n_clients: int
    f: int
    dim: int
    cc_iters: int = 3
    reputation: R.ReputationConfig = field(default_factory=R.ReputationConfig)
    state: Any = None

    def __post_init__(self) -> None:
        if self.name not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.name!r}; choose from {', '.join(STRATEGIES)}")
        if not 0 <= self.f < self.n_clients:
            raise ValueError(f"assumed malicious clients f={self.f} must be in [0, {self.n_clients})")
        if self.name == "bulyan" and self.n_clients < 4 * self.f + 3:
            raise ValueError(f"bulyan needs clients >= 4 x malicious + 3, got {self.n_clients} clients and "
                             f"f={self.f}")
        if self.name in REPUTATION and self.state is None:
            self.state = R.ReputationState.init(self.n_clients, self.dim)
        if self.name == "centered_clipping" and self.state is None:
            self.state = torch.zeros(self.dim)

    @property
    def needs_root(self) -> bool:
        """FLTrust and ``reputation-root`` change the protocol: the server trains on a root set each round."""
        return self.name in ("fltrust", "reputation-root")

    def _rule(self, X: Tensor, ids: Tensor, weights: Tensor | None, root: Tensor | None, state: Any
              ) -> tuple[Tensor, Any, dict[str, Any]]:
        K = X.shape[0]
        f = min(self.f, max(K - 3, 0))  # fewer replies than planned (crashes): keep the rules defined
        n = self.name
        if n == "fedavg":
            return A.fedavg(X, weights), state, {}
        if n in ("krum", "multikrum"):
            agg, sel = A.krum(X, f, 1 if n == "krum" else max(K - f, 1), weights)
            return agg, state, {"selected": ids[sel].tolist()}
        if n == "median":
            return A.coordinate_median(X), state, {}
        if n == "trimmed_mean":
            return A.trimmed_mean(X, min(0.49, max(f / K, 0.1))), state, {}
        if n == "bulyan":
            fb = f if K >= 4 * f + 3 else max((K - 3) // 4, 0)
            agg, sel = A.bulyan(X, fb)
            return agg, state, {"selected": ids[sel].tolist()}
        if n == "centered_clipping":
            tau = float((X - state).norm(dim=1).median().clamp_min(1e-12))
            agg = A.centered_clipping(X, state, tau, self.cc_iters)
            return agg, agg.clone(), {"tau": tau}
        if n == "fltrust":
            if root is None:
                raise ValueError("fltrust needs the server's root update this round")
            agg, ts = A.fltrust(X, root)
            return agg, state, {"trust": dict(zip(ids.tolist(), ts.tolist()))}
        if n == "reputation-root" and root is None:
            raise ValueError("reputation-root needs the server's root update this round")
        cfg = replace(self.reputation, **VARIANTS[n]) if n in VARIANTS else self.reputation
        agg, new, info = R.reputation_aggregate(X, ids, state, cfg, root if n == "reputation-root" else None)
        return agg, new, {
            "reputation": dict(zip(ids.tolist(), new.scores[ids].tolist())),
            "free_riders": [int(i) for i, b in zip(ids, info.free_rider) if b],
            "duplicates": [int(i) for i, b in zip(ids, info.duplicate) if b],
            "groups": [[int(i) for i, g in zip(ids, info.groups) if g == lab] for lab in info.groups.unique()
                       if int((info.groups == lab).sum()) > 1],
            "excluded": [int(i) for i, w in zip(ids, info.weights) if w == 0],
            "reasons": {int(i): r for i, r in zip(ids, info.reasons) if r},
            "weights": {int(i): round(float(w), 5) for i, w in zip(ids, info.weights)},
            "round_score": {int(i): round(float(v), 5) for i, v in zip(ids, info.round_score)},
            "agreement": {int(i): round(float(v), 5) for i, v in zip(ids, info.agreement)},
            "progress_factor": {int(i): round(float(v), 5) for i, v in zip(ids, info.progress_factor)},
        }

    def step(self, X: Tensor, ids: Tensor, weights: Tensor | None = None, root: Tensor | None = None
             ) -> tuple[Tensor, dict[str, Any]]:
        """Aggregate this round's updates and commit the rule's state.  Returns ``(aggregate, info)``."""
        agg, self.state, info = self._rule(X, torch.as_tensor(ids), weights, root, self.state)
        return agg, info

    def preview(self, ids: Tensor, weights: Tensor | None = None, root: Tensor | None = None
                ) -> Callable[[Tensor], Tensor]:
        """The rule as a pure function of the stacked updates (rows in ``ids`` order), state untouched."""
        ids = torch.as_tensor(ids)

        def fn(X: Tensor) -> Tensor:
            return self._rule(X, ids, weights, root, self.state)[0]

        return fn


def _factory(name: str) -> Callable[..., ServerAggregator]:
    def make(*, n_clients: int, f: int, dim: int, **kw: Any) -> ServerAggregator:
        return ServerAggregator(name, n_clients, f, dim, **kw)

    make.__doc__ = f"The {name!r} server aggregator (see :class:`ServerAggregator`)."
    return make


for _name in STRATEGIES:
    register("fl_strategy", _name)(_factory(_name))
