"""Physical-layer key generation (probing, quantisation, reconciliation, privacy amplification,
confirmation) and ciphers for semantic symbols keyed by it.

The names below load on first use, so ``semguard.keys.kdf`` (HKDF, :class:`~semguard.keys.kdf.KeySchedule`)
imports without the probing's channels and torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "AgreementConfig": "semguard.keys.agreement_config", "BASELINE": "semguard.keys.agreement_config",
    "adaptive_config": "semguard.keys.agreement_config", "KeyAgreement": "semguard.keys.agreement",
    "KeyResult": "semguard.keys.key_result", "MODES": "semguard.keys.probing",
    "ProbeConfig": "semguard.keys.probing", "ProbeTrace": "semguard.keys.probing",
    "simulate_probes": "semguard.keys.probing", "EveModel": "semguard.keys.secrecy",
}

__all__ = ["AgreementConfig", "BASELINE", "EveModel", "KeyAgreement", "KeyResult", "MODES", "ProbeConfig",
           "ProbeTrace", "adaptive_config", "simulate_probes"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'semguard.keys' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
