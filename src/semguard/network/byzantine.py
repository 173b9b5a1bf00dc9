"""Byzantine agents' threat and their PGD (the round's orchestration is in :mod:`.attackers`).

Threat model, declared as the threat library's :class:`~semguard.attacks.threat.ThreatModel` and
recorded with every result: surface ``symbols`` (the agent's own transmitted block, which it
controls before its channel), norm ``power`` with budget ``psr_db = 10 log10(||x_adv - x||^2 / ||x||^2)`` per block,
where ``x`` is the agent's own honest encoding (so the crafted block also keeps unit power:
it lies on the same sphere), knowledge ``white-box`` (the decoder, the fusion rule with its
parameters and current weights, every honest agent's message and the attacker's own CSI; not
its own future noise, which it averages over), objective ``task`` (flip the fused decision away
from the honest consensus; ``targeted`` for ``colluding``, one common wrong class).  ``stale``
replays an old block: knowledge ``none`` and the whole sphere as budget (an old codeword of the
agent's is no nearer its fresh one than any other).  A 6.02 dB budget (``rho = 2``) reaches any
unit-power block.  Under commit-reveal (:mod:`.commit`) the attacker no longer sees the round's honest
messages before it commits: ``predictive`` plays its ``base`` attack against a prediction of them
(white-box still, on the past rounds' revealed messages and its own views of the object; recorded with
``base`` in the attack's parameters).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from semguard.attacks.threat import ThreatModel

__all__ = ["ATTACKS", "PREDICTORS", "SEES_ROUND", "TIMED", "ByzantineThreat", "craft_symbols", "margin", "project_cap"]

ATTACKS = ("none", "crafted", "colluding", "solo", "stale", "sleeper", "camouflage", "adaptive", "predictive",
           "rushing", "rushing-air")
#: attacks that need the honest agents' messages of the round (what commit-reveal hides)
SEES_ROUND = ("crafted", "colluding", "solo", "sleeper", "camouflage", "adaptive")
#: attacks timed against commit-reveal; each plays ``base`` (one of :data:`SEES_ROUND`):
#: ``predictive`` against its prediction of the round's honest messages (its own views, past rounds),
#: ``rushing`` commits that, then sends and opens ``base`` against the seen messages (the opening fails),
#: ``rushing-air`` commits and opens the predictive block but sends ``base`` over the air (the air check)
TIMED = ("predictive", "rushing", "rushing-air")
PREDICTORS = ("residual", "own")
MAX_PSR_DB = 20 * math.log10(2.0)


@dataclass(frozen=True)
class ByzantineThreat:
    """What a Byzantine agent may do: ``attack`` (one of :data:`ATTACKS`) under ``psr_db``."""

    attack: str = "crafted"
    psr_db: float = MAX_PSR_DB
    steps: int = 30
    eot: int = 2
    sleep_rounds: int = 4          # sleeper, camouflage: honest for this many rounds first
    camouflage: float = 0.3        # camouflage: attack only this fraction of each round's objects
    slack: float = 0.8             # adaptive: keep every check under this fraction of its threshold
    split: bool = False            # adaptive: also push objects with smaller groups of attackers
    count_flips: bool = False      # adaptive: keep a push only if the round's flipped objects rise
    stealth: float = 0.0           # adaptive: also craft a low-confidence push (weight of the attackers' own gap)
    base: str = "crafted"          # predictive, rushing, rushing-air: the attack they play (one of SEES_ROUND)
    predictor: str = "residual"    # ... against which prediction of the honest round (attackers.predict_honest)
    fade_aware: bool = False       # rushing-air: change only the blocks its own fade hides from the air check

    def __post_init__(self) -> None:
        if self.attack not in ATTACKS:
            raise ValueError(f"attack must be one of {', '.join(ATTACKS)}, got {self.attack!r}")
        if not self.psr_db <= MAX_PSR_DB + 1e-9:
            raise ValueError(f"psr_db must be <= {MAX_PSR_DB:.2f} dB (a unit-power block is at most "
                             f"2x its norm from another), got {self.psr_db}")
        if self.steps < 1 or self.eot < 1 or self.sleep_rounds < 0:
            raise ValueError("steps and eot must be >= 1 and sleep_rounds >= 0")
        if not 0.0 < self.camouflage <= 1.0:
            raise ValueError(f"camouflage fraction must be in (0, 1], got {self.camouflage}")
        if not self.stealth >= 0.0:
            raise ValueError(f"adaptive stealth must be >= 0, got {self.stealth}")
        if not 0.0 < self.slack <= 1.0:
            raise ValueError(f"adaptive slack must be in (0, 1], got {self.slack}")
        if self.predictor not in PREDICTORS:
            raise ValueError(f"predictor must be one of {', '.join(PREDICTORS)}, got {self.predictor!r}")
        if self.base not in SEES_ROUND:
            raise ValueError(f"base attack must be one of {', '.join(SEES_ROUND)}, got {self.base!r}")

    @property
    def played(self) -> str:
        """The attack crafted each round: ``base`` for the timed attacks, else ``attack``."""
        return self.base if self.attack in TIMED else self.attack

    @property
    def rho(self) -> float:
        return min(2.0, 10 ** (self.psr_db / 20))

    def threat_model(self) -> ThreatModel:
        """The declared threat in the threat library's units (surface, norm, budget, knowledge, objective)."""
        if self.attack == "stale":
            return ThreatModel("symbols", "power", MAX_PSR_DB, "none", "task")
        return ThreatModel("symbols", "power", self.psr_db, "white-box", "task", targeted=self.played == "colluding")

    def record(self) -> dict:
        """JSON-able: the declared :class:`ThreatModel` plus this attack's own parameters."""
        out = {"threat_model": self.threat_model().to_dict(), "attack": self.attack}
        if self.attack in TIMED:
            out |= {"base": self.base, "predictor": self.predictor}
        if self.attack == "rushing-air":
            out["fade_aware"] = self.fade_aware
        played = self.played
        if played not in ("none", "stale"):
            out |= {"steps": self.steps, "eot": self.eot}
        if played in ("sleeper", "camouflage"):
            out["sleep_rounds"] = self.sleep_rounds
        if played == "camouflage":
            out["camouflage"] = self.camouflage
        if played == "adaptive":
            out["slack"] = self.slack
            out["split"] = self.split
            out["count_flips"] = self.count_flips
            out["stealth"] = self.stealth
        return out


def project_cap(z: Tensor, x: Tensor, rho: float) -> Tensor:
    """Project ``z`` onto ``{v : ||v|| = ||x||, ||v - x|| <= rho ||x||}`` (a spherical cap) per row.

    ``z, x [..., n]`` complex.  ``z`` is first scaled onto the sphere; when it lies further than
    the cap's angle ``theta = 2 asin(rho / 2)`` from ``x`` it moves along the great circle to
    the cap's edge, the closest point of the cap.
    """
    zr, xr = torch.view_as_real(z).flatten(-2), torch.view_as_real(x).flatten(-2)
    r = xr.norm(dim=-1, keepdim=True)
    xu = xr / r
    zu = zr / zr.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    cos = (zu * xu).sum(-1, keepdim=True).clamp(-1, 1)
    theta_max = 2 * math.asin(min(rho, 2.0) / 2)
    ortho = zu - cos * xu
    on = ortho.norm(dim=-1, keepdim=True)
    edge = math.cos(theta_max) * xu + math.sin(theta_max) * ortho / on.clamp_min(1e-12)
    out = torch.where((torch.acos(cos) > theta_max) & (on > 1e-9), edge, zu) * r
    return torch.view_as_complex(out.reshape(*out.shape[:-1], -1, 2).contiguous())


def margin(logits: Tensor, label: Tensor) -> Tensor:
    """``max_{c != y} z_c - z_y`` per row (> 0: the decision is not ``y``)."""
    z_y = logits.gather(-1, label.unsqueeze(-1)).squeeze(-1)
    other = logits.scatter(-1, label.unsqueeze(-1), float("-inf"))
    return other.max(-1).values - z_y


def craft_symbols(x: Tensor, receive: Callable[[Tensor, int], Tensor], fuse: Callable[[Tensor], Tensor],
                  reference: Tensor, target: Tensor | None, threat: ByzantineThreat, *,
                  through_rule: bool = True, stealth: float = 0.0, kappa: float = 0.5) -> Tensor:
    """PGD on the attackers' symbols ``x [f, B, n]`` within the cap of :func:`project_cap`.

    ``receive(x_adv, draw)`` -> ``(vectors [f, B, d], logp [f, B, C])``: what the fusion node
    gets from the attackers through their channels (noise draw ``draw``) and their decoded
    log-probabilities; ``fuse(vectors)`` -> the fused decision's logits ``[B, C]`` with the
    honest messages held fixed.  With ``through_rule`` the loss is the fused
    margin against ``reference`` (adaptive: it differentiates through the rule); otherwise every
    attacker raises its own output's ``target`` over ``reference`` (directed; with one common
    target it is the colluding attack coordinate-wise rules cannot see through the gradient).
    With ``stealth > 0`` (through the rule) the objective is ``min(margin, kappa)`` less ``stealth`` times
    the attackers' mean own gap ``max_c logp_c - logp_ref`` (clipped at 30 nats): a push just over the
    decision boundary with outputs as unsure as the attack allows, against checks that score an agent's
    confidence against a reference its group cannot move (:mod:`.consistency`).
    Returns the best iterate per object by the objective.
    """
    rho = threat.rho
    step = 2.5 * rho / threat.steps * torch.view_as_real(x).flatten(-2).norm(dim=-1).mean()
    z = x.clone()
    best, best_val = x.clone(), torch.full(x.shape[1:2], -float("inf"))
    for k in range(threat.steps):
        z = z.detach().requires_grad_(True)
        total = torch.zeros(x.shape[1])
        for d in range(threat.eot):
            vec, logp = receive(z, k * threat.eot + d)
            if through_rule:
                obj = margin(fuse(vec), reference)
                if stealth > 0:
                    own = logp.max(-1).values - logp.gather(
                        -1, reference.expand(logp.shape[0], -1).unsqueeze(-1)).squeeze(-1)
                    obj = obj.clamp(max=kappa) - stealth * own.clamp(max=30.0).mean(0)
            else:
                own = logp.gather(-1, target.expand(logp.shape[0], -1).unsqueeze(-1)).squeeze(-1) \
                    - logp.gather(-1, reference.expand(logp.shape[0], -1).unsqueeze(-1)).squeeze(-1)
                obj = own.clamp(max=30.0).sum(0)
            total = total + obj.detach() / threat.eot
            obj.sum().backward()
        with torch.no_grad():
            better = total > best_val
            best[:, better] = z.detach()[:, better]
            best_val = torch.where(better, total, best_val)
            g = z.grad
            gn = torch.view_as_real(g).flatten(-2).norm(dim=-1, keepdim=True).clamp_min(1e-12)
            z = project_cap(z + step * g / gn, x, rho)
    return best.detach()
