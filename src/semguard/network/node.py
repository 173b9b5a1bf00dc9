"""The fusion node: fuses the agents' vectors by its rule and keeps their reputation (explicit state).

Every round the node (1) takes a reference decision, the plurality vote of the trusted agents' own
decisions (ties to the trust-weighted coordinate-wise median's; agents already distrusted have no
say in it); (2) scores each agent's disagreement with it, the
round's mean log-probability gap (:func:`~semguard.network.trust.disagreement_gap`); (3) calls a
round *strong* when that score is an outlier against the other agents (robust z over the agents,
over ``z_cross``), a jump against the agent's own history (over ``z_history``), or when the agent's
residual against the trusted agents' leave-one-out median has been aligned with ``f - 1`` other
agents' over every object so far (``sqrt(n)`` times the cosine over ``collusion``; the collusion
signature of :mod:`~semguard.network.collusion`, which a rule-aware attacker that only sides with
votes it has swung still leaves); (4) moves the
reputation toward the round's agreement rate (slow up, fast down) and multiplies it by
``1 - cost`` for a strong round; (5) fuses with weight 0 for agents under the threshold, flagged
as replaying, or strong this round, but never more than ``min(f, N - 2f - 1)`` of them (the lowest
reputations stay out): at least ``2f + 1`` agents remain, so attackers that frame honest agents
still meet an honest majority inside the robust rule.  With ``z_horizon`` finite, a round is also strong when the
agent's long-run excess gap to a reference its group cannot move (:mod:`~semguard.network.consistency`) is an
outlier against the other agents'.  ``z_cross = z_history = inf`` is the plain agreement-rate
reputation of the previous version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from semguard.network import collusion as col
from semguard.network import consistency as cons
from semguard.network import fusion as fz
from semguard.network import trust
from semguard.registry import build

__all__ = ["Assessment", "FusionNode"]


@dataclass(frozen=True)
class Assessment:
    """One round's per-agent scores ``[N]`` (dropped agents score 0 and are never strong)."""

    score: Tensor        # mean disagreement gap, nats
    z_cross: Tensor      # robust z against the other agents
    z_history: Tensor    # z against the agent's own history
    strong: Tensor       # bool
    agreement: Tensor    # fraction of objects on which the agent's decision is the reference
    collusion: Tensor    # k-th largest cumulative residual cosine with another agent x sqrt(objects seen)
    gram: Tensor         # the residual Gram matrix with this round added [N, N]
    group_gap: Tensor    # this round's mean excess gap, leave-group-out reference over the node's (consistency.py), nats
    horizon: Tensor      # robust z of each agent's long-run mean of group_gap against the others'

    def ratio(self, node: FusionNode, *, gate: bool = True) -> Tensor:
        """``[N]``: the largest of each check's statistic over its threshold (> 1: a strong round; for
        ``trust-aligned`` with ``gate`` also over its drop threshold, when that is positive)."""
        thr = node.collusion
        if gate and node.rule in fz.ALIGNED_RULES and node.aligned_drop > 0:
            thr = min(thr, node.aligned_drop)
        return torch.stack([self.z_cross / node.z_cross, self.z_history / node.z_history,
                            self.collusion / thr, self.horizon / node.z_horizon]).max(0).values


def trusted_all(node: FusionNode, kept: Tensor) -> Tensor:
    """Bool ``[N]``: kept and trusted by the node's current reputation."""
    return kept & (node.weights(node.reputation) > 0)


class FusionNode:
    """Fuses ``vec [B, N, d]``; keeps reputation and each agent's score history for the trust rules."""

    def __init__(self, rule: str, f: int, n: int, *, gain: float = 0.1, loss: float = 0.5, threshold: float = 0.5,
                 cost: float = 0.6, z_cross: float = 5.0, z_history: float = 4.0, collusion: float = 3.0,
                 min_objects: int = 20, aligned_drop: float = -math.inf, cap: float = 1.0,
                 z_horizon: float = math.inf, horizon_rounds: int = 3) -> None:
        self.rule, self.f, self.gain, self.loss, self.threshold = rule, f, gain, loss, threshold
        self.cost, self.z_cross, self.z_history = cost, z_cross, z_history
        self.collusion_k = f - 1                        # each of f colluders has f - 1 aligned partners
        self.collusion, self.min_objects = col.threshold(collusion, self.collusion_k), min_objects
        # trust-aligned: drop the most aligned group when its least aligned pair's sqrt(n) x cosine is over this
        self.aligned_drop = aligned_drop
        self.cap = cap                                  # trust-capped: one agent's deviation from the centre, nats
        # long-horizon consistency: strong when the long-run mean gap to the leave-group-out reference is an
        # outlier (robust z over z_horizon) against the other agents', from horizon_rounds rounds of history on
        self.z_horizon, self.horizon_rounds = z_horizon, horizon_rounds
        self.g_total, self.g_count = torch.zeros(n), torch.zeros(n)
        self.gram, self.seen = torch.zeros(n, n, dtype=torch.float64), 0
        self.fn = build("fusion", rule, f=f)
        self.reputation = torch.full((n,), threshold)   # a newcomer starts at the threshold
        self.h_mean, self.h_m2, self.h_count = torch.zeros(n), torch.zeros(n), torch.zeros(n)
        # never leave fewer than 2f + 1 agents in: then the f Byzantine are a minority of those kept,
        # whoever was excluded (the robust rule's guarantee survives framed honest agents)
        self.max_excluded = max(0, min(f, n - 2 * f - 1))
        self.f_total, self.banned = f, torch.zeros(n, dtype=torch.bool)

    def ban(self, agents: Tensor) -> None:
        """Exclude ``agents`` (bool ``[N]``) for good: proven Byzantine (a commit-reveal opening that failed;
        an honest agent always opens its own).  Each counts against ``f``: the rule is rebuilt for the
        ``f`` left among the agents left, and the exclusion cap is recomputed over them."""
        new = agents & ~self.banned
        if not bool(new.any()):
            return
        self.banned = self.banned | agents
        n_left = int((~self.banned).sum())
        self.f = max(0, self.f_total - int(self.banned.sum()))
        self.fn = build("fusion", self.rule, f=self.f)
        self.max_excluded = max(0, min(self.f, n_left - 2 * self.f - 1))

    @property
    def uses_trust(self) -> bool:
        return self.rule in fz.TRUST_RULES

    def weights(self, rep: Tensor, replayed: Tensor | None = None, strong: Tensor | None = None) -> Tensor:
        """Trust weights ``[N]``: reputation over the threshold, 0 for replaying or strong agents,
        at most ``max_excluded`` zeros (:func:`~semguard.network.trust.cap_exclusions`); 0 / 1 for every rule
        but the weighted mean ``trust``."""
        w = trust.trust_weights(rep, threshold=self.threshold)
        for bad in (replayed, strong):
            if bad is not None:
                w = torch.where(bad, torch.zeros_like(w), w)
        if self.banned.any():          # banned agents take no exclusion slot of the cap
            left = ~self.banned
            w = torch.zeros_like(w).masked_scatter(left, trust.cap_exclusions(w[left], rep[left], self.max_excluded))
        else:
            w = trust.cap_exclusions(w, rep, self.max_excluded)
        if self.rule != "trust":       # inside a robust rule the weight is inclusion only: a framed honest
            w = (w > 0).to(w.dtype)    # agent at low reputation still counts as one agent
        return w if w.sum() > 0 else torch.ones_like(w)

    def reference_weights(self, kept: Tensor) -> Tensor:
        """Weights of the reference over the kept agents: 1 if trusted, else 0 (at most ``max_excluded`` zeros)."""
        w = (self.weights(self.reputation) > 0).float()[kept]
        return w if w.sum() > 0 else torch.ones_like(w)

    def reference(self, logp: Tensor, median_logits: Tensor, kept: Tensor) -> Tensor:
        """The reference decision ``[B]``: the trusted kept agents' plurality vote over their own
        decisions (a minority cannot outvote a majority that agrees), ties broken by the weighted
        median's logits ``[B, C]``."""
        w = self.reference_weights(kept)
        votes = torch.zeros_like(median_logits).scatter_add_(-1, logp.argmax(-1), w.expand(logp.shape[0], -1))
        return (votes + 1e-3 * median_logits.softmax(-1)).argmax(-1)

    def assess(self, logp: Tensor, reference: Tensor, kept: Tensor) -> Assessment:
        """Score the kept agents' ``logp [B, N_kept, C]`` against ``reference [B]`` (no state change)."""
        n = self.reputation.shape[0]
        gap = trust.disagreement_gap(logp, reference)
        score = torch.zeros(n)
        score[kept] = gap.mean(0)
        agree = torch.zeros(n)
        agree[kept] = (gap == 0).float().mean(0)
        zc = torch.zeros(n)
        zc[kept] = trust.robust_z(score[kept])
        zh = trust.history_z(score, self.h_mean, self.h_m2, self.h_count) * kept
        gram, cs = self.gram, torch.zeros(n)
        trusted = self.reference_weights(kept) > 0                         # over the kept agents
        if int(trusted.sum()) >= 3:
            full = torch.zeros(logp.shape[0], n, logp.shape[2], dtype=torch.float64)
            # residuals against the trusted agents' consensus; a dropped agent adds nothing
            full[:, kept] = col.centred_residual(logp.exp().double(), trusted)
            gram = col.gram_update(self.gram, full)
            seen = self.seen + logp.shape[0]
            if self.collusion_k >= 1 and seen >= self.min_objects:
                # scaled by sqrt(objects seen): an honest pair's cosine shrinks like 1 / sqrt(n)
                cs = col.collusion_score(gram, self.collusion_k).float() * kept * seen ** 0.5
        gg, hz = torch.zeros(n), torch.zeros(n)
        if int(kept.sum()) >= self.collusion_k + 2 + 1:
            # view-independent: what the agent's gap to a reference its group cannot move adds to its gap to
            # the vote of all agents (an agent with a poor view disagrees with both alike)
            gg[kept] = cons.excess_gap(logp, max(0, self.collusion_k)).mean(0)
            total, count = self.g_total + gg * kept, self.g_count + kept.float()
            if int(count.max()) >= self.horizon_rounds:
                hz = cons.horizon_z(total, count, kept & trusted_all(self, kept)) * kept
        strong = kept & ((zc > self.z_cross) | (zh > self.z_history) | (cs > self.collusion) | (hz > self.z_horizon))
        return Assessment(score, zc, zh, strong, agree, cs, gram, gg, hz)

    def round_gram(self, vec: Tensor) -> Tensor:
        """The residual Gram matrix with this round's ``vec [B, N, C]`` (log-probabilities, every agent
        kept) added, as :meth:`assess` adds it; no state change."""
        with torch.no_grad():
            trusted = self.reference_weights(torch.ones(vec.shape[1], dtype=torch.bool)) > 0
            if int(trusted.sum()) < 3:
                return self.gram
            return col.gram_update(self.gram, col.centred_residual(vec.detach().exp().double(), trusted))

    @staticmethod
    def cosines(gram: Tensor) -> Tensor:
        """``G_ij / sqrt(G_ii G_jj)`` (0 for an agent without residuals yet)."""
        d = gram.diagonal().clamp_min(1e-12)
        return gram / (d[:, None] * d[None, :]).sqrt()

    def fuse(self, vec: Tensor, weights: Tensor | None = None, gram: Tensor | None = None) -> Tensor:
        """``vec [B, N, d]`` -> ``[B, d]`` by the rule (trust rules: the current reputation's weights;
        ``trust-aligned`` also this round's alignment, from ``gram`` or from ``vec`` itself)."""
        if not self.uses_trust:
            return self.fn(vec)
        w = self.weights(self.reputation) if weights is None else weights
        if self.rule in fz.ALIGNED_RULES:
            seen = self.seen + vec.shape[0] if gram is None else self.seen
            return self.fn(vec, w, self.cosines(self.round_gram(vec) if gram is None else gram),
                           self.aligned_drop / seen ** 0.5)
        return self._fuse(vec, w)

    def _fuse(self, vec: Tensor, w: Tensor) -> Tensor:
        return self.fn(vec, w, cap=self.cap) if self.rule in fz.CAPPED_RULES else self.fn(vec, w)

    def step(self, vec: Tensor, logp: Tensor, reference: Tensor, replayed: Tensor | None = None,
             kept: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Score this round against ``reference``, update reputations and history, then fuse.

        ``vec [B, N_kept, d]`` and ``logp [B, N_kept, C]`` hold the agents ``kept [N]`` marks (all
        by default); a dropped agent counts as disagreeing.  Returns (fused ``[B, d]``, flags ``[N]``).
        """
        n = self.reputation.shape[0]
        kept = torch.ones(n, dtype=torch.bool) if kept is None else kept
        if self.rule in fz.NEEDS_MINORITY and 2 * self.f >= int(kept.sum()):
            raise ValueError(f"only {int(kept.sum())} of {n} agents sent well-formed features: fusion "
                             f"{self.rule!r} needs more than 2f = {2 * self.f}")
        a = self.assess(logp, reference, kept)
        self.last = a
        self.g_total, self.g_count = self.g_total + a.group_gap * kept, self.g_count + kept.float()
        self.gram, self.seen = a.gram, self.seen + logp.shape[0]
        rep = trust.update_reputation(self.reputation, a.agreement, gain=self.gain, loss=self.loss)
        self.reputation = trust.penalise(rep, a.strong, cost=self.cost)
        self.h_mean, self.h_m2, self.h_count = trust.welford(self.h_mean, self.h_m2, self.h_count, a.score,
                                                             kept & ~a.strong)
        flags = trust.flag_agents(self.reputation, threshold=self.threshold) | a.strong
        if replayed is not None:
            flags = flags | replayed
        w = self.weights(self.reputation, replayed, a.strong)[kept]
        w = w if w.sum() > 0 else torch.ones_like(w)
        if self.rule in fz.ALIGNED_RULES:
            return self.fn(vec, w, self.cosines(a.gram)[kept][:, kept], self.aligned_drop / self.seen ** 0.5), flags
        return (self._fuse(vec, w) if self.uses_trust else self.fn(vec)), flags
