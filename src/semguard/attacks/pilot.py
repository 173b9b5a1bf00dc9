"""The pilot attack: corrupt the pilots so that the receiver's least-squares CSI estimate, and with
it the equaliser, is wrong (``Channel.corrupt_pilots``).  White-box PGD on the pilot surface: it knows
the fading it is corrupting; its power is measured against the received pilots ``h`` per block."""

from __future__ import annotations

from typing import Any

from semguard.attacks.pgd import PGD
from semguard.registry import register

__all__ = ["PilotAttack"]


@register("attack", "pilot")
class PilotAttack(PGD):
    """PGD on the pilots (``surface="pilots"``); the link's channel needs ``csi="estimated"``.

    Args: those of :class:`~semguard.attacks.pgd.PGD` (``psr_db``, ``steps``, ...), surface fixed."""

    name = "pilot"
    surfaces = ("pilots",)

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("surface", "pilots")
        super().__init__(**kw)
