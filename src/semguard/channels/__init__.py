"""Wireless channels: AWGN, Rayleigh and Rician block fading, time-correlated (Jakes) fading, a
randomly reconfigured RIS, with CSI and equalisation.

The names below load on first use, so the NumPy-only maths (:mod:`semguard.channels.spectrum`) imports
without torch; :mod:`semguard.channels.members` imports (and so registers) every channel.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "AWGN": "semguard.channels.awgn", "Channel": "semguard.channels.base", "ChannelState": "semguard.channels.base",
    "Jakes": "semguard.channels.jakes", "RIS": "semguard.channels.ris", "Rayleigh": "semguard.channels.rayleigh",
    "Rician": "semguard.channels.rician",
}

__all__ = ["AWGN", "Channel", "ChannelState", "Jakes", "RIS", "Rayleigh", "Rician"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'semguard.channels' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
