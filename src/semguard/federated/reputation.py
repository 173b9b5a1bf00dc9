"""Our aggregation rule: a reputation learnt over rounds, with explicit state.

Pure functions over stacked client updates ``X [K, D]``, as :mod:`semguard.federated.aggregate`.
:func:`reputation_aggregate` takes its :class:`ReputationState` in and hands the next one back
(the input is never modified), so an attacker that knows the rule can evaluate it on candidate
updates without changing it.

One round, in order:

1. **Free riders** are flagged: a near-zero update (the global model sent back), a replay of the
   client's own previous update or of the last aggregate (stale), or noise (``|cos|`` with both the
   other clients' summed directions and their coordinate median at the level of independent random
   directions in ``D`` dimensions).  They score 0.
2. **Copies count once.**  Rows whose pairwise cosine exceeds ``duplicate_cos`` form a group
   (:func:`duplicate_groups`).  Two honest clients never train to the same update, so a group
   holds copies (ALIE's colluders send one vector) or a copier and the client it copied (a
   framing attack).  Dropping the whole group would let a copier silence any honest client, so
   each group instead gets one vote: one representative in the consensus, and its members'
   weights divided by the group's size.
   ``soft_votes`` (``reputation-votes``) also counts near copies fractionally: a group's weight is
   divided by ``1 + sum_j relu((c_kj - tau) / (1 - tau))`` over the other kept groups ``j`` (step 5
   decides which are kept), where ``c`` is the cosine of the clipped updates and ``tau`` the median
   pairwise cosine of the kept groups, at least 0 (:func:`soft_vote_size`).  Colluders that share
   one shift and stay just under ``duplicate_cos`` then count about once together; to be counted as
   independent they must add their own noise, which after clipping shrinks the shift they share.
3. **Norm clipping** to ``clip_mult x`` the median norm.
4. **Agreement**: each client against the coordinate median of the *other* groups' clipped
   updates (leave one group out), and against its own history (exponential average of its
   past clipped updates).  History can lower a score but never lift one that disagrees with
   the others.  Scores are divided by the median positive score and capped at 1.
5. **Reputation** ``r <- decay r + (1 - decay) s``; clients with ``s = 0`` or
   ``r < min_weight max r`` are left out of this round, but never more than half of the clients
   that are not free riding (the highest reputations are kept): the rule assumes an honest
   majority, and without this floor non-IID honest clients were left out wholesale.
6. **Aggregate**: centered clipping (Karimireddy et al., ICML 2021) started at the robust centre
   (coordinate median of the kept groups) with radius ``cc_mult x`` the median distance of the
   kept updates from it and the reputation weights: an accepted update moves the aggregate at
   most its weight times that radius, whatever its direction.
7. **Progress direction** (against a small bias kept consistently against the learning
   direction, which step 4 cannot see: the cosine of an update changes little when a shift of a
   quarter of the mean update is added, because the non-IID spread around the mean is about
   twice the mean).  ``u``: the unit direction of the robust centre.  Each client's progress
   ``p_k = x_k . u`` is a robust z-score against the other groups' (median, 1.4826 MAD); its
   exponential average over rounds (``lag``) lowers the round score linearly from 1 at
   ``lag_hi`` to 0 at ``lag_lo``; and the aggregate's component along ``u`` is replaced by the
   reputation-weighted median of the ``p_k``, so whatever weight attackers keep, they move the
   aggregate along ``u`` only inside the honest spread of ``p``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from semguard.federated.aggregate import (
    centered_clipping,
    check_updates,
    clip_norm,
    coordinate_median,
    weighted_coordinate_median,
)
from semguard.federated.axes import affine_span, clamp_to_axes, principal_axes
from semguard.federated.consensus import (
    cos_rows,
    duplicate_groups,
    lag_factor,
    leave_one_out_median,
    leave_one_out_weighted_median,
    robust_z,
    set_component,
    soft_vote_size,
    weighted_median,
)
from semguard.federated.root import check_root, root_radius, root_trust

__all__ = ["ReputationState", "ReputationConfig", "ReputationInfo", "reputation_aggregate", "leave_one_out_median",
           "duplicate_groups", "soft_vote_size", "weighted_coordinate_median",
           "leave_one_out_weighted_median", "cos_rows", "weighted_median", "robust_z", "lag_factor", "set_component"]


@dataclass(frozen=True)
class ReputationConfig:
    """Hyper-parameters of :func:`reputation_aggregate`.

    decay: weight of the old reputation in ``r <- decay r + (1 - decay) s``.
    history_weight: share of the own-history agreement in a round score (the rest: consensus).
    clip_mult: updates clipped to ``clip_mult x`` the median update norm.
    zero_tol: an update shorter than ``zero_tol x`` the median norm is a free ride (global model returned).
    repeat_cos: cosine to the client's own previous update above which it is a stale replay.
    duplicate_cos: cosine between two updates above which they are copies (one vote between them).
    noise_z: a client whose update has ``|cos|`` below ``noise_z / sqrt(D)`` with the summed directions of all
        other clients and with their coordinate median (a few standard deviations of the cosine of independent
        random directions in ``D`` dimensions), and below a quarter of the median client's, is sending noise.
    min_weight: clients whose reputation falls below ``min_weight x`` the best are left out.
    cc_mult: centered-clipping radius as a multiple of the kept updates' median distance from the centre.
    cc_iters: centered-clipping iterations.
    lag_decay: weight of the old value in the exponential average of the progress z-scores (step 7).
    lag_hi, lag_lo: the averaged z-score at which the progress factor starts to fall below 1, and reaches 0.
    directional: replace the aggregate's component along the progress direction by the weighted median.
    root_gate, root_progress, root_radius: used only when a root update is given
        (:mod:`semguard.federated.root`): gate the round score by the cosine with the root update, take the
        root's direction as the progress direction, cap the centered-clipping radius at
        ``root_radius x ||root||`` (``inf``: no cap).  root_centre: start centered clipping at the root update
        instead of the coordinate median of the kept groups (which the attackers' rows can pull).
    axes: step 8 (``reputation-axes``, :mod:`semguard.federated.axes`; 0 = off): the aggregate is projected onto
        the affine span of the kept clipped updates, and its component along each of their top ``axes``
        principal axes (orthogonal to the progress direction) clamped into the weighted quantiles
        ``0.5 -/+ axes_band`` of the kept clients' components there.
    floor_rank: which clients fill the honest-majority floor of step 5 after those that scored this round:
        ``reputation`` (the highest old reputations), or ``agreement`` (``reputation-floor``: the highest
        cosines with the other groups' median this round).  A round in which every client scores 0 leaves
        the reputations tied, and ``reputation`` then fills the floor by client id; an attacker that farmed
        reputation in round 1 also keeps it there.
    soft_votes: divide each group's weight by its :func:`soft_vote_size` too (step 2; ``reputation-votes``).
    two_pass: score every client twice (``reputation-two-pass``): steps 4, 5 and 7 again with the
        consensus, the progress direction and its spread taken over the groups the first pass kept.
    vote_median: the consensus of step 4 and the progress direction of step 7 are coordinate medians
        weighted by one over each group's :func:`soft_vote_size` (``reputation-vote-median``), so that
        near copies of one honest client cannot double its say in what the others are scored against.
    progress_gate: the median of step 4 is taken only over the groups whose progress factor (step 7) is 1
        this round (``reputation-gated``): a client whose progress the test marks down (updates that pull
        against the robust direction) is still scored, but cannot drag the consensus the others are scored
        against.
    """

    decay: float = 0.5
    history_weight: float = 0.3
    clip_mult: float = 1.0
    zero_tol: float = 1e-3
    repeat_cos: float = 0.999
    duplicate_cos: float = 0.99
    noise_z: float = 4.0
    min_weight: float = 0.2
    cc_mult: float = 2.0
    cc_iters: int = 3
    lag_decay: float = 0.6
    lag_hi: float = -1.5
    lag_lo: float = -3.0
    directional: bool = True
    root_gate: bool = True
    root_progress: bool = True
    root_radius: float = 1.0
    root_centre: bool = False
    axes: int = 0
    axes_band: float = 0.1
    floor_rank: str = "reputation"
    soft_votes: bool = False
    two_pass: bool = False
    vote_median: bool = False
    progress_gate: bool = False

    def __post_init__(self) -> None:
        if self.floor_rank not in ("reputation", "agreement"):
            raise ValueError(f"floor_rank must be 'reputation' or 'agreement', got {self.floor_rank!r}")
        if not self.lag_lo < self.lag_hi:
            raise ValueError(f"lag_lo must be below lag_hi, got {self.lag_lo} and {self.lag_hi}")
        if not 0 <= self.lag_decay < 1 or not 0 <= self.decay < 1:
            raise ValueError(f"decay and lag_decay must be in [0, 1), got {self.decay} and {self.lag_decay}")
        if not self.root_radius > 0:
            raise ValueError(f"root_radius must be > 0, got {self.root_radius}")
        if self.axes < 0 or not 0 <= self.axes_band < 0.5:
            raise ValueError(f"axes must be >= 0 and axes_band in [0, 0.5), got {self.axes} and {self.axes_band}")


@dataclass(frozen=True)
class ReputationState:
    """What the reputation aggregator remembers, per client id (``n_clients`` of them).

    scores: reputation in [0, 1] ``[n]``; history: exponential average of each client's clipped
    updates ``[n, D]`` (zeros before its first round); last: its previous raw update ``[n, D]``;
    seen: rounds each client took part in ``[n]``; free_rides: rounds flagged as a free ride ``[n]``;
    last_aggregate: the previous round's aggregate ``[D]`` (a client replaying it is a stale free ride).
    lag: exponential average of each client's progress z-score ``[n]`` (step 7; zeros at the start).
    """

    scores: Tensor
    history: Tensor
    last: Tensor
    seen: Tensor
    free_rides: Tensor
    last_aggregate: Tensor | None = None
    rounds: int = 0
    lag: Tensor | None = None

    @staticmethod
    def init(n_clients: int, dim: int, dtype: torch.dtype = torch.float32) -> "ReputationState":
        z = torch.zeros(n_clients, dim, dtype=dtype)
        return ReputationState(torch.ones(n_clients, dtype=dtype), z, z.clone(),
                               torch.zeros(n_clients, dtype=torch.long), torch.zeros(n_clients, dtype=torch.long))


@dataclass(frozen=True)
class ReputationInfo:
    """Per-round diagnostics of :func:`reputation_aggregate` (rows follow the input ``ids``)."""

    weights: Tensor
    round_score: Tensor
    free_rider: Tensor  # bool
    duplicate: Tensor  # bool
    reasons: list[str] = field(default_factory=list)
    groups: Tensor | None = None  # group label of each row (copies share one)
    agreement: Tensor | None = None  # step 4: cosine with the other groups' median (before the relu)
    progress_factor: Tensor | None = None  # step 7: the lag factor in [0, 1] the round score was multiplied by


def _free_riders(X: Tensor, norms: Tensor, state: ReputationState, ids: Tensor, had: Tensor,
                 cfg: ReputationConfig) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    K, D = X.shape
    zero = norms < cfg.zero_tol * norms.median().clamp_min(1e-12)
    stale = had & (cos_rows(X, state.last[ids]) > cfg.repeat_cos)
    if state.last_aggregate is not None:
        stale = stale | (cos_rows(X, state.last_aggregate.to(X.dtype).expand_as(X)) > cfg.repeat_cos)
    noise = torch.zeros(K, dtype=torch.bool)
    if K > 1:
        if (~zero).any():
            # near-orthogonal to everyone, in absolute terms and relative to the typical client, against both
            # the sum of every other client's direction and the others' coordinate median: colluders can cancel
            # the sum (three updates along minus the mean framed honest clients as noise) but not the median,
            # and a median of few non-IID clients is a weak direction that the sum is not (4 honest clients:
            # one had |cos| 0.005 with the median of the other three, 0.012 with their summed directions)
            U = X / norms.unsqueeze(1).clamp_min(1e-12)
            c_sum = cos_rows(X, U.sum(0, keepdim=True) - U).abs()
            c_med = cos_rows(X, leave_one_out_median(X, ~zero)).abs()
            thr = cfg.noise_z / math.sqrt(D)
            noise = ~zero
            for c in (c_sum, c_med):
                noise = noise & (c < thr) & (c < 0.25 * c[~zero].median())
    return zero, stale, noise, zero | stale | noise


def reputation_aggregate(X: Tensor, ids: Tensor, state: ReputationState,
                         cfg: ReputationConfig = ReputationConfig(), root: Tensor | None = None
                         ) -> tuple[Tensor, ReputationState, ReputationInfo]:
    """One round of our rule (the module docstring lists the steps).

    ``ids`` ``[K]``: the client id of each row (index into ``state``).  ``root``: the server's own
    update on its root set this round (``reputation-root``, :mod:`semguard.federated.root`), or None
    for the root-free rule.  Returns ``(aggregate [D], next state, info)``; ``state`` itself is not
    modified.
    """
    check_updates(X)
    K, D = X.shape
    if root is not None:
        check_root(root, D)
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    if ids.shape[0] != K or ids.unique().shape[0] != K:
        raise ValueError(f"ids must be {K} distinct client ids, got {ids.tolist()}")
    if state.history.shape[1] != D or int(ids.max()) >= state.scores.shape[0] or int(ids.min()) < 0:
        raise ValueError(f"state is for {state.scores.shape[0]} clients x {state.history.shape[1]} params; "
                         f"got ids {ids.tolist()} and {D} params")
    X = X.to(state.history.dtype)
    norms = X.norm(dim=1)
    had = state.seen[ids] > 0
    zero, stale, noise, free = _free_riders(X, norms, state, ids, had, cfg)
    ok = ~free
    groups = duplicate_groups(X, cfg.duplicate_cos, ok)
    size = torch.bincount(groups, minlength=K)[groups].to(X.dtype)
    duplicate = size > 1
    rep = groups == torch.arange(K)  # each group's representative (its lowest row)
    reasons = [", ".join(n for n, b in (("zero update", zero[k]), ("stale replay", stale[k]), ("noise", noise[k]),
                                        ("duplicate", duplicate[k])) if b) for k in range(K)]
    Xc = clip_norm(X, cfg.clip_mult * norms.median().clamp_min(1e-12))
    hist = state.history[ids]
    own_ok = had & (hist.norm(dim=1) > 0)
    g0 = None if root is None else root.to(X.dtype)
    old_lag = state.lag[ids] if state.lag is not None else torch.zeros(K, dtype=X.dtype)
    floor = math.ceil(int(ok.sum()) / 2)

    # vote_median: the consensus counts near copies once too (each group weighted by one over its soft votes)
    vw = 1.0 / soft_vote_size(Xc, ok & rep) if cfg.vote_median else None

    def score(pool: Tensor) -> tuple[Tensor, ...]:
        """Steps 4, 5 and 7 against the groups in ``pool``: (u, prog, centre0, lag, s, r, keep, agree, factor)."""
        # progress along the robust centre's direction, against the other groups' (step 7)
        if int(pool.sum()) == 0:
            centre0 = Xc.mean(0)
        else:
            centre0 = coordinate_median(Xc[pool]) if vw is None else weighted_coordinate_median(Xc[pool], vw[pool])
        if g0 is not None and cfg.root_progress:
            centre0 = g0
        u = centre0 / centre0.norm().clamp_min(1e-12)
        prog = Xc @ u
        z = robust_z(prog, pool, floor=1e-6 * float(norms.median().clamp_min(1e-12)))
        lag = torch.where(ok, cfg.lag_decay * old_lag + (1 - cfg.lag_decay) * z, old_lag)
        factor = lag_factor(lag, cfg.lag_hi, cfg.lag_lo)
        # progress_gate: only clients the progress test passes in full define the consensus (step 4); a gate
        # at factor > 0 let the colluders sit at a factor of 0.2-0.6, anti-parallel and still in the median
        cpool = pool & (factor >= 1) if cfg.progress_gate else pool
        if int(cpool.sum()) < 2:
            cpool = pool
        loo = (leave_one_out_median(Xc, cpool) if vw is None else leave_one_out_weighted_median(Xc, cpool, vw))[groups]
        agree = cos_rows(Xc, loo)
        own = torch.where(own_ok, cos_rows(Xc, hist), agree)
        raw = torch.relu(agree) * ((1 - cfg.history_weight) + cfg.history_weight * torch.relu(own))
        if g0 is not None and cfg.root_gate:
            raw = raw * root_trust(Xc, g0, pool)
        raw = raw * factor
        raw = torch.where(free, torch.zeros_like(raw), raw)
        pos = raw[raw > 0]
        s = (raw / pos.median()).clamp(max=1.0) if pos.numel() else raw
        r = cfg.decay * state.scores[ids] + (1 - cfg.decay) * s
        keep = (s > 0) & (r >= cfg.min_weight * r.max())
        # an honest majority is the threat model: never leave out more than half of the clients that
        # are not free riding (non-IID honest updates can all disagree with a median for a round)
        if int(keep.sum()) < floor:
            # clients that scored this round come first: a zero round score is never outranked by an old
            # reputation (r and s are in [0, 1], cosines in [-1, 1]; free riders last)
            fill = r if cfg.floor_rank == "reputation" else agree
            order = torch.where(ok, fill + 4.0 * (s > 0).to(r.dtype), torch.full_like(r, -4.0)).argsort(
                descending=True, stable=True)
            keep = keep.clone()
            keep[order[:floor]] = True
        return u, prog, centre0, lag, s, r, keep, agree, factor

    # consensus: one vote per group, and each group compared with the others' median
    u, prog, centre0, lag, s, r, keep, agree, factor = score(ok & rep)
    if cfg.two_pass:
        # again, against the kept groups only: a client left out cannot move the median, the progress
        # direction or its spread that the others are scored against
        u, prog, centre0, lag, s, r, keep, agree, factor = score(keep & rep)
    votes = size * soft_vote_size(Xc, keep & rep)[groups] if cfg.soft_votes else size
    w = torch.where(keep, r / votes, torch.zeros_like(r))
    if float(w.sum()) > 0:
        kept = keep & rep
        centre = coordinate_median(Xc[kept]) if int(kept.sum()) > 0 else (w @ Xc) / w.sum()
        if g0 is not None and cfg.root_centre:
            centre = g0
        tau = float((Xc[keep] - centre).norm(dim=1).median()) * cfg.cc_mult
        if g0 is not None:
            tau = min(tau, root_radius(g0, cfg.root_radius))
        agg = centered_clipping(Xc, centre, tau, cfg.cc_iters, w) if tau > 0 else centre
        axes = cfg.axes > 0 and int(keep.sum()) > 1
        if axes:
            agg = affine_span(agg, Xc[keep], w[keep])
        along = cfg.directional and float(centre0.norm()) > 0
        if along:
            agg = set_component(agg, u, weighted_median(prog[keep], w[keep]))
        if axes:
            E = principal_axes(Xc[keep], w[keep], cfg.axes, exclude=u if along else None)
            agg = clamp_to_axes(agg, Xc[keep], w[keep], E, cfg.axes_band)
    else:
        agg = torch.zeros(D, dtype=X.dtype)

    scores, history, last = state.scores.clone(), state.history.clone(), state.last.clone()
    scores[ids] = r
    new_hist = torch.where(had.unsqueeze(1), 0.5 * hist + 0.5 * Xc, Xc)
    history[ids] = torch.where(free.unsqueeze(1), hist, new_hist)
    last[ids] = X
    seen = state.seen.clone()
    seen[ids] += 1
    fr = state.free_rides.clone()
    fr[ids] += free.long()
    lags = state.lag.clone() if state.lag is not None else torch.zeros_like(state.scores)
    lags[ids] = lag
    new = replace(state, scores=scores, history=history, last=last, seen=seen, free_rides=fr,
                  last_aggregate=agg.clone(), rounds=state.rounds + 1, lag=lags)
    return agg, new, ReputationInfo(w / w.sum().clamp_min(1e-12), s, free, duplicate, reasons, groups, agree, factor)

