"""The emulator's reciprocal probe channel: one time-correlated Jakes realisation per probing round,
seen by both directions, with independent noise, and what an eavesdropper near Bob overhears.

Bob's ``k``-th probe reaches Alice at ``t_k = k / rate``, Alice's reaches Bob a turnaround ``tau``
later, so (TDD reciprocity) the two directions sample the *same* fading process at ``t_k`` and
``t_k + tau`` (:func:`semguard.channels.spectrum.jakes_realisation_np`, the spectrum of the registered
``jakes`` channel), correlation ``J0(2 pi f_d tau)``.  Each direction adds its own ``CN(0, N0)`` noise.
A round is keyed by Bob's nonce; the Bob-bound half is kept until Alice's answer (at most
``max_rounds`` pending; an unknown round gets a fresh, independent realisation, so the two ends
then disagree and the key agreement fails, as it should after an emulator restart).

Eve (``eve_distance`` wavelengths from Bob) overhears Alice's answer through her own channel
``h_E = rho h_B + sqrt(1 - rho^2) w``, ``rho = J0(2 pi d)`` and ``w`` an independent realisation of the
same process -- the model of :meth:`semguard.channels.jakes.Jakes.eavesdropper_state` and of the keys
package's declared Eve -- with her own noise at ``eve_snr_db``.  Her observations queue in
:attr:`ProbeChannel.overheard` for the emulator's tap.  NumPy only: the relay loads no torch.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

import numpy as np

from semguard.channels.spectrum import jakes_realisation_np, spatial_correlation

__all__ = ["ProbeChannel"]


class ProbeChannel:
    def __init__(self, *, doppler_hz: float = 100.0, snr_db: float = 30.0, turnaround_s: float = 1e-4,
                 seed: int | None = None, max_rounds: int = 16, eve_distance: float | None = None,
                 eve_snr_db: float | None = None) -> None:
        if not (doppler_hz >= 0 and turnaround_s >= 0 and np.isfinite(snr_db)):
            raise ValueError(f"need doppler_hz >= 0, turnaround_s >= 0 and a finite snr_db, got "
                             f"{doppler_hz}, {turnaround_s}, {snr_db}")
        if eve_snr_db is not None and not np.isfinite(eve_snr_db):
            raise ValueError(f"eve_snr_db must be finite, got {eve_snr_db}")
        self.doppler_hz, self.snr_db, self.turnaround_s = float(doppler_hz), float(snr_db), float(turnaround_s)
        self.n0 = 10.0 ** (-self.snr_db / 10.0)
        self.eve_rho = None if eve_distance is None else float(spatial_correlation(eve_distance))
        self.eve_n0 = self.n0 if eve_snr_db is None else 10.0 ** (-float(eve_snr_db) / 10.0)
        self._rng = np.random.default_rng(seed)  # None: OS entropy
        self._pending: OrderedDict[str, np.ndarray] = OrderedDict()
        self._max = max_rounds
        self.unknown_rounds = 0
        #: (round id, what Eve received of Alice's probe block), oldest first, at most ``max_rounds``
        self.overheard: deque[tuple[str, np.ndarray]] = deque(maxlen=max_rounds)

    def _noise(self, n: int, n0: float | None = None) -> np.ndarray:
        n0 = self.n0 if n0 is None else n0
        return (self._rng.standard_normal(n) + 1j * self._rng.standard_normal(n)) * np.sqrt(n0 / 2)

    def _draw(self, n: int, rate_hz: float) -> np.ndarray:
        # times in probe periods 1 / rate: normalised Doppler f_d / rate, Bob a turnaround later
        return jakes_realisation_np(n, self.doppler_hz / rate_hz, (0.0, self.turnaround_s * rate_hz), self._rng)

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
        """What Bob receives of Alice's answer ``p`` in the same round (same realisation, ``tau`` later);
        with an Eve, what she overhears of it is queued in :attr:`overheard`."""
        h = self._pending.pop(round_id, None)
        if h is None or h.size != p.size:
            self.unknown_rounds += 1
            h = self._draw(p.size, rate_hz)[1]
        if self.eve_rho is not None:
            w = self._draw(p.size, rate_hz)[1]                      # independent, same statistics
            h_e = self.eve_rho * h + np.sqrt(1.0 - self.eve_rho ** 2) * w
            self.overheard.append((round_id, (h_e * p + self._noise(p.size, self.eve_n0)).astype(np.complex64)))
        return (h * p + self._noise(p.size)).astype(np.complex64)
