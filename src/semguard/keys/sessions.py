"""Repeated key-agreement sessions over SNRs, averaged into one metric row per SNR.

:func:`keygen_rows` is what ``semguard keygen`` prints and writes; :func:`json_safe` turns the
rows into strict JSON (NaN and infinity become ``null``).  Key material is returned separately
(for NIST tests) and never enters a row.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from semguard.keys.agreement import BASELINE, KeyAgreement, KeyResult, adaptive_config
from semguard.keys.probing import ProbeConfig, simulate_probes

__all__ = ["keygen_rows", "summarise", "json_safe"]

_MEANS = ("success", "key_bits", "unconditional_key_bits", "kgr_bits_per_probe", "kgr_bits_per_second", "kdr_raw",
          "kdr_reconciled", "eve_kdr_raw", "eve_kdr_aligned", "eve_kdr_reconciled", "eve_key_match",
          "eve_tag_confirmed", "eve_info_bits", "leaked_bits", "min_entropy_per_symbol")


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (recursively through dicts, lists, tuples)."""
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.integer | np.bool_):
        return obj.item()
    return obj


def summarise(res: list[KeyResult]) -> dict[str, Any]:
    """Means over sessions of the numeric fields (NaN where no session has a finite value) and the reasons."""
    def mean(f: str) -> float:
        vals = np.array([getattr(r, f) for r in res], dtype=float)
        return float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
    out: dict[str, Any] = {("success_rate" if f == "success" else "eve_key_match_rate" if f == "eve_key_match"
                            else "eve_tag_confirmed_rate" if f == "eve_tag_confirmed" else f): mean(f) for f in _MEANS}
    out["reasons"] = sorted({r.reason for r in res if r.reason})
    return out


def keygen_rows(snrs: list[float], *, probes: int, eve_distance: float, mode: str, doppler_hz: float,
                probe_rate: float, baseline: bool, sessions: int, seed: int, overrides: dict[str, Any] | None = None,
                identity_key: bytes | None = None) -> tuple[list[dict], list[np.ndarray]]:
    """Run ``sessions`` agreements per SNR; returns averaged metric rows and the final key bits.

    ``overrides`` are :class:`~semguard.keys.agreement.AgreementConfig` fields on top of
    :func:`~semguard.keys.agreement.adaptive_config` (e.g. the declared Eve model); ``identity_key``
    authenticates the public discussion.
    """
    if sessions < 1:
        raise ValueError(f"sessions must be >= 1, got {sessions}")
    rows, keys = [], []
    for i, snr in enumerate(snrs):
        agree = KeyAgreement(BASELINE if baseline else adaptive_config(snr, mode, **(overrides or {})),
                             identity_key=identity_key)
        res = []
        for s in range(sessions):
            rng = np.random.default_rng([seed, i, s])
            cfg = ProbeConfig(n_probes=probes, snr_db=snr, eve_distance=eve_distance, mode=mode,
                              doppler_hz=doppler_hz, probe_rate_hz=probe_rate)
            r = agree.run(simulate_probes(cfg, rng), rng)
            res.append(r)
            if r.key is not None:
                keys.append(np.unpackbits(np.frombuffer(r.key, dtype=np.uint8)))
        rows.append({"snr_db": snr, "mode": mode, "pipeline": "baseline" if baseline else "semguard",
                     "sessions": sessions, "eve_distance": eve_distance,
                     "eve_model": res[0].eve_model.get("description", ""), **summarise(res),
                     "sessions_detail": [r.to_dict() for r in res]})
    return rows, keys
