"""One round of the Byzantine agents' messages (the attack side of :mod:`.multiagent`).

* ``crafted``: adaptive and colluding; per object the worse for the fusion node of two PGD
  candidates (the fused margin through the rule, and every attacker pushing the honest runner-up).
* ``colluding``: only the second candidate: all attackers push one common wrong class.
* ``solo``: each attacker its own random wrong class, blind to the rule (non-colluding).
* ``stale``: the attackers replay their previous round's blocks.
* ``sleeper``: honest for ``sleep_rounds`` rounds (earning trust), then ``crafted``.
* ``camouflage``: honest for ``sleep_rounds`` rounds, then ``crafted`` on only the fraction
  ``camouflage`` of each round's objects where the fused margin moves most, honest elsewhere.
* ``adaptive``: knows the trust rule, its thresholds and the node's state (reputation and every
  agent's history): from the first round it attacks, greedily and cheapest first, the objects
  where the crafted candidate flips the fused decision, as long as the node's own check run on
  its simulated messages keeps every attacker under ``slack`` times every strong-round threshold
  (the decision-gap z scores and the collusion signature of :mod:`.collusion`) and at or over the
  trust threshold.  ``slack`` is the attacker's parameter: the benchmark searches it; with ``split``
  it also tries, on an object it cannot push with all attackers unseen, every smaller group of
  them (down to two) that still flips it; with ``count_flips`` it keeps a push only if the number
  of the round's objects the rule decides wrongly rises (against a rule whose decision on one object
  depends on the others, ``trust-aligned``, a push that raises the attackers' alignment can undo
  earlier flips); with ``stealth`` it crafts, besides, a push just over the decision boundary with
  outputs as unsure as it allows, and sends it wherever it still flips the object.
* ``predictive``, ``rushing``, ``rushing-air`` (against commit-reveal, :mod:`.commit`): play their ``base``
  attack; ``predictive`` against :func:`predict_honest` (the round's honest messages predicted from the
  attackers' own messages and the previous round's revealed ones), the two rushing ones commit that and
  then reply to the seen messages (:mod:`.multiagent` runs the phases).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import Tensor

from semguard.network import trust
from semguard.network.byzantine import ByzantineThreat, craft_symbols, margin
from semguard.network.node import FusionNode

__all__ = ["attacking", "byzantine_round", "predict_honest", "undetected_subset"]


def attacking(th: ByzantineThreat, f: int, r: int) -> bool:
    """Whether the Byzantine agents deviate in round ``r``."""
    a = th.played
    return f > 0 and a != "none" and not (a in ("sleeper", "camouflage") and r < th.sleep_rounds)


def predict_honest(own_vec: Tensor, own_logp: Tensor, bad: Tensor, past: tuple[Tensor, Tensor] | None, *,
                   logprob: bool, predictor: str = "residual") -> tuple[Tensor, Tensor]:
    """The attackers' prediction of every agent's fusion vector and log-probabilities this round.

    ``own_vec [B, f, d]`` / ``own_logp [B, f, C]``: what the node would get from the attackers' own honest
    blocks (their views of the objects through their own channels); ``past``: ``(vec, logp)`` residuals
    ``[B', N, .]`` of every agent's revealed message against the attackers' mean on the previous round's
    objects, or ``None`` in the first round.  Agent ``j``'s prediction on object ``b`` is the attackers'
    mean plus ``j``'s residual on past object ``b mod B'`` (its spread from the attackers' views, as seen
    before); with no past, or with ``predictor="own"`` always, attacker ``j mod f``'s own message.  With ``logprob`` the fusion vectors are
    log-probabilities and are renormalised.  Nothing here is of the honest agents' current round.
    """
    B, f = own_vec.shape[0], own_vec.shape[1]
    n = bad.shape[0]
    if f != int(bad.sum()) or f == 0:
        raise ValueError(f"{f} attackers' messages for {int(bad.sum())} Byzantine agents (need at least one)")
    if past is None or predictor == "own":
        pick = torch.arange(n) % f
        vec, logp = own_vec[:, pick], own_logp[:, pick]
    else:
        pv, pl = past
        rows = torch.arange(B) % pv.shape[0]
        vec = own_vec.mean(1, keepdim=True) + pv[rows]
        logp = torch.log_softmax(own_logp.mean(1, keepdim=True) + pl[rows], -1)
        if logprob:
            vec = torch.log_softmax(vec, -1)
    vec, logp = vec.clone(), logp.clone()
    vec[:, bad], logp[:, bad] = own_vec, own_logp
    return vec, logp


def undetected_subset(node: FusionNode, candidate: Tensor, honest: Tensor, bad: Tensor, order: Tensor,
                      simulate: Callable[[Tensor], tuple[Tensor, Tensor, Tensor]], *, slack: float = 0.8,
                      flips: Callable[[Tensor], Tensor] | None = None,
                      count: Callable[[Tensor], int] | None = None) -> Tensor:
    """Which attacker sends its crafted block on which object (bool ``[f, B]``), so that the node's
    check passes every attacker.

    ``candidate`` / ``honest`` ``[f, B, n]`` the attackers' crafted and honest blocks; ``order`` the
    objects to try, best first; ``simulate(blocks)`` -> (fusion vectors, logp ``[B, N, C]``,
    the node's reference decision ``[B]``) for the attackers sending ``blocks``.  Per object every
    attacker pushes; with ``flips(blocks) -> bool [B]`` (whether the fused decision is flipped) the
    attackers that would be caught pushing together also try each subset of ``f - 1`` of them down to
    two (one pair or triple per object aligns each attacker with fewer partners: the counter to the
    collusion signature), kept only where it still flips the object.  With ``count(blocks)`` (the
    number of objects flipped) a push is kept only if it raises that number, and the attackers stay
    under the node's flag thresholds only (not under ``trust-aligned``'s drop threshold: whether being
    dropped undoes a flip is what the count measures).
    """
    f, B = honest.shape[0], honest.shape[1]
    n = node.reputation.shape[0]
    kept = torch.ones(n, dtype=torch.bool)
    mask = torch.zeros(f, B, dtype=torch.bool)
    best = count(honest) if count is not None else 0
    groups = [tuple(range(f))]
    if flips is not None:
        groups += [g for size in range(f - 1, 1, -1) for g in itertools.combinations(range(f), size)]
    for b in order.tolist():
        for g in groups:
            trial = mask.clone()
            trial[list(g), b] = True
            blocks = torch.where(trial.unsqueeze(-1), candidate, honest)
            if len(g) < f and not bool(flips(blocks)[b]):
                continue
            _, logp, ref = simulate(blocks)
            a = node.assess(logp, ref, kept)
            rep = trust.update_reputation(node.reputation, a.agreement, gain=node.gain, loss=node.loss)
            # counting through the rule already sees the aligned drop: then only the flags bind
            if bool((a.ratio(node, gate=count is None)[bad] < slack).all() and (rep[bad] >= node.threshold).all()):
                if count is not None:
                    c = count(blocks)
                    if c <= best:
                        continue
                    best = c
                mask = trial
                break
    return mask


def byzantine_round(th: ByzantineThreat, r: int, x: Tensor, bad: Tensor, prev_x: Tensor | None, node: FusionNode,
                    receive: Callable[[Tensor, int], tuple[Tensor, Tensor]], fuse_with: Callable[[Tensor], Tensor],
                    simulate: Callable[[Tensor], tuple[Tensor, Tensor, Tensor]], ref: Tensor, runner: Tensor,
                    g: torch.Generator) -> tuple[Tensor, bool]:
    """The blocks ``[N, B, n]`` every agent sends this round, and whether the attackers deviate."""
    f = int(bad.sum())
    x_sent = x.clone()
    if not attacking(th, f, r):
        return x_sent, False
    B = x.shape[1]
    if th.attack == "stale":
        if prev_x is not None:
            x_sent[bad] = prev_x[bad]
        return x_sent, True
    if th.attack == "solo":
        tgt = (ref.unsqueeze(0) + torch.randint(1, 10, (f, B), generator=g)) % 10
        x_sent[bad] = craft_symbols(x[bad], receive, fuse_with, ref, tgt, th, through_rule=False)
        return x_sent, True
    directed = craft_symbols(x[bad], receive, fuse_with, ref, runner.unsqueeze(0), th, through_rule=False)
    if th.attack == "colluding":
        x_sent[bad] = directed
        return x_sent, True
    cands = [craft_symbols(x[bad], receive, fuse_with, ref, None, th, through_rule=True), directed]
    with torch.no_grad():
        scores = torch.stack([margin(fuse_with(receive(c, 999)[0]), ref) for c in cands])     # [2, B]
    pick = scores.argmax(0)
    crafted = torch.where(pick.view(1, B, 1) == 1, cands[1], cands[0])
    best = scores.max(0).values
    if th.attack == "adaptive" and th.stealth > 0:
        # the low-confidence push wherever it still flips the object (it costs the checks less)
        quiet = craft_symbols(x[bad], receive, fuse_with, ref, None, th, through_rule=True, stealth=th.stealth)
        with torch.no_grad():
            q = margin(fuse_with(receive(quiet, 999)[0]), ref) > 0
        crafted = torch.where(q.view(1, B, 1), quiet, crafted)
    if th.attack == "camouflage":          # crafted only where the attack pays most
        hit = torch.zeros(B, dtype=torch.bool)
        hit[best.topk(max(1, round(th.camouflage * B))).indices] = True
    elif th.attack == "adaptive":          # as much as the node's check lets through, cheapest first
        with torch.no_grad():
            _, logp, _ = simulate(crafted)
            cost = trust.disagreement_gap(logp[:, bad], ref).mean(1)                           # [B]
            # counting, it tries every object: one that does not flip with every object pushed at once
            # may flip with fewer pushed (a rule that drops the most aligned agents)
            flips = torch.arange(B) if th.count_flips else torch.nonzero(best > 0).flatten()
            order = flips[cost[flips].argsort()]
            def pushed(blocks: Tensor) -> Tensor:
                return margin(fuse_with(receive(blocks, 999)[0]), ref) > 0
            hit = undetected_subset(node, crafted, x[bad], bad, order, simulate, slack=th.slack,
                                    flips=pushed if th.split else None,
                                    count=(lambda blocks: int(pushed(blocks).sum())) if th.count_flips else None)
    else:                                  # crafted, sleeper
        hit = torch.ones(B, dtype=torch.bool)
    x_sent[bad] = torch.where(hit.view(-1, B, 1), crafted, x[bad])
    return x_sent, True
