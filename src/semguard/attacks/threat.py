"""The one threat model every attack declares and every result records.

Budgets use one unit per surface: ``eps`` on inputs in [0, 1] with the norm named (``linf`` or
``l2``), and ``psr_db = 10 log10(P_perturbation / P_signal)`` per block on the air surfaces
(``symbols``, ``channel``, ``pilots``; norm ``power``), as defined beside the channel conventions
in :mod:`semguard.channels.functional`.  -10 dB is a perturbation with a tenth of the signal's power.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["KNOWLEDGE", "NORMS", "OBJECTIVES", "SURFACES", "ThreatModel"]

#: where the perturbation enters: the source, the encoder output, the receiver (over the air), the pilots
SURFACES = ("input", "symbols", "channel", "pilots")
NORMS = ("linf", "l2", "l0", "power")
#: what the attacker knows of codec and channel
KNOWLEDGE = ("white-box", "transfer", "query", "none")
#: what the attacker damages: the decoded image, the decided class, the received sentence
OBJECTIVES = ("reconstruction", "task", "semantic")


@dataclass(frozen=True)
class ThreatModel:
    """What an attack may do, in the units of its surface.

    Attributes:
        surface: one of :data:`SURFACES`.
        norm: ``linf`` / ``l2`` on the input surface (``l0``: substituted tokens of a sentence),
            ``power`` on the air surfaces.
        budget: ``eps`` (>= 0, inputs in [0, 1]; ``l0``: a whole number of tokens) on the input surface,
            else ``psr_db`` (finite, dB).
        knowledge: one of :data:`KNOWLEDGE` (``none``: universal / blind, sees no symbols).
        objective: one of :data:`OBJECTIVES`.
        targeted: drive the receiver to a chosen output instead of away from the true one.
        unit: ``"eps"`` or ``"psr_db"`` (derived from the surface).
    """

    surface: str
    norm: str
    budget: float
    knowledge: str
    objective: str
    targeted: bool = False

    def __post_init__(self) -> None:
        if self.surface not in SURFACES:
            raise ValueError(f"surface must be one of {', '.join(SURFACES)}, got {self.surface!r}")
        if self.knowledge not in KNOWLEDGE:
            raise ValueError(f"knowledge must be one of {', '.join(KNOWLEDGE)}, got {self.knowledge!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        b = float(self.budget)
        if self.surface == "input":
            if self.norm not in ("linf", "l2", "l0"):
                raise ValueError(f"norm on the input surface must be 'linf', 'l2' or 'l0', got {self.norm!r}")
            if self.norm == "l0" and (not math.isfinite(b) or b < 0 or b != int(b)):
                raise ValueError(f"k (substituted tokens) must be a whole number >= 0, got {self.budget}")
            if not math.isfinite(b) or b < 0:
                raise ValueError(f"eps must be a finite number >= 0 (inputs in [0, 1]), got {self.budget}")
        else:
            if self.norm != "power":
                raise ValueError(f"norm on the {self.surface} surface must be 'power' (a PSR budget), got {self.norm!r}")
            if not math.isfinite(b):
                raise ValueError(f"psr_db must be finite (dB, 10 log10 P_perturbation / P_signal), got {self.budget}")
        object.__setattr__(self, "budget", b)

    @property
    def unit(self) -> str:
        if self.surface == "input":
            return "tokens" if self.norm == "l0" else "eps"
        return "psr_db"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["unit"] = self.unit
        return d
