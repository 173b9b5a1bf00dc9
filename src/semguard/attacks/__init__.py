"""Attacks on semantic links, under one threat model (:class:`ThreatModel`), built on
:class:`semguard.link.Link`; registered in the ``attack`` family::

    >>> from semguard.registry import build
    >>> pgd = build("attack", "pgd", surface="channel", psr_db=-10, steps=40)
"""

from semguard.attacks.apgd import APGD
from semguard.attacks.autoattack import AutoAttack
from semguard.attacks.base import Attack, AttackContext, AttackResult, frozen
from semguard.attacks.continuation import PGDContinuation
from semguard.attacks.gaussian import GaussianJamming
from semguard.attacks.ladder import PGDLadder
from semguard.attacks.pgd import FGSM, PGD
from semguard.attacks.pilot import PilotAttack
from semguard.attacks.square import Square
from semguard.attacks.substitution import WordSubstitution
from semguard.attacks.threat import KNOWLEDGE, NORMS, OBJECTIVES, SURFACES, ThreatModel
from semguard.attacks.transfer import TransferAttack
from semguard.attacks.universal import UniversalPerturbation

__all__ = [
           "APGD",
           "FGSM",
           "KNOWLEDGE",
           "NORMS",
           "OBJECTIVES",
           "PGD",
           "PGDContinuation",
           "PGDLadder",
           "SURFACES",
           "Attack",
           "AttackContext",
           "AttackResult",
           "AutoAttack",
           "GaussianJamming",
           "PilotAttack",
           "Square",
           "ThreatModel",
           "TransferAttack",
           "UniversalPerturbation",
           "WordSubstitution",
           "frozen",
]
