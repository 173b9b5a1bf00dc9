"""The emulator's reciprocal probe channel: one time-correlated Jakes realisation per probing round,
seen by both directions, with independent noise.

Bob's ``k``-th probe reaches Alice at ``t_k = k / rate``, Alice's reaches Bob a turnaround ``tau``
later, so (TDD reciprocity) the two directions sample the *same* fading process at ``t_k`` and
``t_k + tau`` (:func:`semguard.channels.jakes.jakes_realisation`, the spectrum of the registered ``jakes``
channel), correlation ``J0(2 pi f_d tau)``.  Each direction adds its own ``CN(0, N0)`` noise.  A
round is keyed by Bob's nonce; the Bob-bound half is kept until Alice's answer (at most
``max_rounds`` pending; an unknown round gets a fresh, independent realisation, so the two ends
then disagree and the key agreement fails, as it should after an emulator restart).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from semguard.channels.jakes import jakes_realisation

__all__ = ["ProbeChannel"]


class ProbeChannel:
    def __init__(self, *, doppler_hz: float = 100.0, snr_db: float = 30.0, turnaround_s: float = 1e-4,
                 seed: int | None = None, max_rounds: int = 16) -> None:
        if not (doppler_hz >= 0 and turnaround_s >= 0 and np.isfinite(snr_db)):
            raise ValueError(f"need doppler_hz >= 0, turnaround_s >= 0 and a finite snr_db, got "
                             f"{doppler_hz}, {turnaround_s}, {snr_db}")
        self.doppler_hz, self.snr_db, self.turnaround_s = float(doppler_hz), float(snr_db), float(turnaround_s)
        self.n0 = 10.0 ** (-self.snr_db / 10.0)
        self._rng = np.random.default_rng(seed)  # None: OS entropy
        self._pending: OrderedDict[str, np.ndarray] = OrderedDict()
        self._max = max_rounds
        self.unknown_rounds = 0

    def _noise(self, n: int) -> np.ndarray:
        return (self._rng.standard_normal(n) + 1j * self._rng.standard_normal(n)) * np.sqrt(self.n0 / 2)

    def _draw(self, n: int, rate_hz: float) -> np.ndarray:
        # times in probe periods 1 / rate: normalised Doppler f_d / rate, Bob a turnaround later
        g = torch.Generator().manual_seed(int(self._rng.integers(2**63 - 1)))
        h = jakes_realisation(1, n, self.doppler_hz / rate_hz, (0.0, self.turnaround_s * rate_hz), generator=g)
        return h[0].numpy().astype(np.complex128)                                  # [2, n]

    def to_alice(self, round_id: str, p: np.ndarray, rate_hz: float) -> np.ndarray:
        """What Alice receives of Bob's probe block ``p``; keeps the round's Bob-bound channel."""
        if not rate_hz > 0:
            raise ValueError(f"probe rate must be > 0, got {rate_hz}")
        h = self._draw(p.size, rate_hz)
        self._pending[round_id] = h[1]
        while len(self._pending) > self._max:
            self._pending.popitem(last=False)
        return (h[0] * p + self._noise(p.size)).astype(np.complex64)

    def through(self, msg: dict[str, Any], to: str) -> dict[str, Any]:
        """A handshake message with its probe block (if any) replaced by what the end ``to`` ("tx":
        Alice, "rx": Bob) receives -- what the emulator's handshake relay does."""
        from semguard.runtime.wire import iq_in, iq_out
        probe = msg.get("probe")
        if not isinstance(probe, dict):
            return msg
        p, rate, rid = iq_in(probe.get("iq"), "probe.iq"), float(probe.get("rate_hz", 0)), str(probe.get("round", ""))
        y = self.to_alice(rid, p, rate) if to == "tx" else self.to_bob(rid, p, rate)
        return {**msg, "probe": {**probe, "iq": iq_out(y)}}

    def to_bob(self, round_id: str, p: np.ndarray, rate_hz: float) -> np.ndarray:
        """What Bob receives of Alice's answer ``p`` in the same round (same realisation, ``tau`` later)."""
        h = self._pending.pop(round_id, None)
        if h is None or h.size != p.size:
            self.unknown_rounds += 1
            h = self._draw(p.size, rate_hz)[1]
        return (h * p + self._noise(p.size)).astype(np.complex64)
