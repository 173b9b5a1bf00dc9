"""Reassembling frames from a re-chunked sample stream (the GNU Radio bridge's pure logic).

A stream flowgraph (GNU Radio) keeps no frame boundaries: the IQ blocks the emulator sends come back
as one sample stream cut wherever the scheduler likes.  :class:`SampleFifo` holds the frames in
flight in send order, each with the number of samples it is owed; :meth:`SampleFifo.feed` appends
returned samples and releases every frame whose samples are complete, in order.  Items owed zero
samples (frames relayed as bytes) are released as soon as every frame before them is, so nothing
overtakes anything.  The FIFO is bounded (``max_pending`` items: :meth:`offer` refuses more), and
:meth:`expire` gives up on a flowgraph that stopped answering, :meth:`flush` on one known to be gone:
every frame still owed samples is lost, the partial buffer is cleared.  The flowgraph must be rate-preserving (one output sample per
input sample); samples that arrive with nothing owed are discarded and counted (``excess``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SampleFifo"]


@dataclass
class _Pending:
    item: Any
    n: int
    t: float


@dataclass
class SampleFifo:
    """Bounded FIFO of frames owed ``n`` samples each; see the module docstring."""

    max_pending: int = 256
    pending: deque = field(default_factory=deque)
    excess: int = 0                 #: samples received with no frame owed them (discarded)
    _buf: list = field(default_factory=list)
    _have: int = 0
    _last: float = 0.0              #: time of the last progress (a sample arrived or the FIFO became non-empty)

    def __post_init__(self) -> None:
        if self.max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {self.max_pending}")

    def __len__(self) -> int:
        return len(self.pending)

    def offer(self, item: Any, n: int, now: float) -> bool:
        """Queue ``item`` owed ``n`` samples; False (nothing queued) when the FIFO is full."""
        if n < 0:
            raise ValueError(f"n must be >= 0 samples, got {n}")
        if len(self.pending) >= self.max_pending:
            return False
        if not self.pending:
            self._last = now
        self.pending.append(_Pending(item, n, now))
        return True

    def release_ready(self) -> list[tuple[Any, np.ndarray]]:
        """Pop every head item whose samples are all here (zero-sample items included), in order."""
        out: list[tuple[Any, np.ndarray]] = []
        while self.pending and self.pending[0].n <= self._have:
            head = self.pending.popleft()
            out.append((head.item, self._take(head.n)))
        if not self.pending and self._have:
            self.excess += self._have
            self._buf, self._have = [], 0
        return out

    def feed(self, samples: np.ndarray, now: float) -> list[tuple[Any, np.ndarray]]:
        """Append returned samples (complex64 ``[k]``); return the items they complete, in order."""
        samples = np.asarray(samples, dtype=np.complex64).reshape(-1)
        if samples.size:
            self._last = now
            if not self.pending:
                self.excess += int(samples.size)
                return []
            self._buf.append(samples)
            self._have += int(samples.size)
        return self.release_ready()

    def expire(self, now: float, timeout_s: float) -> tuple[list[tuple[Any, np.ndarray]], list[Any]]:
        """If no sample arrived for ``timeout_s`` while a frame is owed samples: drop every owed item
        (returned as lost) and clear the buffer; zero-sample items are released in order."""
        if not self.pending or now - self._last < timeout_s:
            return [], []
        return self.flush()

    def flush(self) -> tuple[list[tuple[Any, np.ndarray]], list[Any]]:
        """Give up on every item still owed samples now (returned as lost) and clear the partial buffer;
        zero-sample items are released in order.  For a flowgraph known to be gone (its samples will
        never come, and a restarted one must not have its samples credited to the dead one's frames)."""
        released, lost = [], []
        for p in self.pending:
            if p.n:
                lost.append(p.item)
            else:
                released.append((p.item, np.zeros(0, np.complex64)))
        self.pending.clear()
        self._buf, self._have = [], 0
        return released, lost

    def _take(self, n: int) -> np.ndarray:
        if n == 0:
            return np.zeros(0, np.complex64)
        joined = np.concatenate(self._buf) if len(self._buf) > 1 else self._buf[0]
        out, rest = joined[:n], joined[n:]
        self._buf = [rest] if rest.size else []
        self._have -= n
        return out.copy()
