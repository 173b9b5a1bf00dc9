"""Result records and an append-only store that lets an interrupted sweep resume."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from semguard.utils import dumps_strict

__all__ = ["Record", "ResultStore", "config_key"]

log = logging.getLogger(__name__)


def config_key(config: dict[str, Any]) -> str:
    """A short stable hash of a configuration (identifies work already done)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Record:
    """One measured number and everything that produced it.

    ``samples``, when given, are the per-image (and per-draw, draw-major) values whose mean is
    ``value``, so that two systems can be compared image by image
    (:func:`semguard.evaluation.stats.paired_gap`).
    """

    codec: str
    channel: str
    snr_db: float
    metric: str
    value: float
    config: dict[str, Any] = field(default_factory=dict)
    samples: list[float] | None = None

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        if row["samples"] is None:
            del row["samples"]
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Record:
        """Inverse of :meth:`to_json` (strict JSON writes nan as null: read null back as nan)."""
        row = dict(row)
        if row.get("value") is None:
            row["value"] = math.nan
        if row.get("samples") is not None:
            row["samples"] = [math.nan if v is None else v for v in row["samples"]]
        return cls(**row)


class ResultStore:
    """Records appended to ``path`` (JSON lines) as they are measured.

    ``done(key)`` tells whether a unit of work (one codec x channel x SNR) was finished by an
    earlier, interrupted run with the same configuration, so it can be skipped.  Each unit's done
    marker also holds the seconds from ``done(key)`` to ``add(..., key)`` (its measuring time), so
    :meth:`seconds` survives a resume.  Lines are strict JSON (nan and inf written as null).  A
    unit killed after some of its records but before its marker (or mid-line) is void: on opening,
    an ``_aborted`` line is appended after it, its records are never reported, and it runs again.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[Record] = []
        self._done: set[str] = set()
        self._active: set[str] = set()  # the units of work the current run asked for
        self._seconds: dict[str, float | None] = {}  # measuring time of each finished unit
        self._started: dict[str, float] = {}
        if self.path.is_file():
            pending: list[Record] = []   # a unit's records come just before its done marker
            for i, line in enumerate(self.path.read_text().splitlines(), 1):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s:%d: skipping a partial line (interrupted write)", self.path, i)
                    pending = []
                    continue
                if row.get("_aborted"):   # written on opening after a kill: what came before is void
                    pending = []
                elif row.get("_done"):
                    self._done.add(row["_done"])
                    self._seconds[row["_done"]] = row.get("seconds")
                    # records of a unit killed before its marker are not its: that unit ran again
                    self.records += [r for r in pending if config_key(r.config) == row["_done"]]
                    pending = []
                else:
                    pending.append(Record.from_json(row))
            raw = self.path.read_bytes()
            if pending or (raw and not raw.endswith(b"\n")):   # killed mid-unit (or mid-line)
                with open(self.path, "ab") as f:
                    f.write((b"" if raw.endswith(b"\n") else b"\n") + b'{"_aborted": true}\n')

    def done(self, key: str) -> bool:
        """Whether ``key`` was finished already; either way it belongs to the current run."""
        self._active.add(key)
        if key in self._done:
            return True
        self._started[key] = time.monotonic()
        return False

    def seconds(self) -> float | None:
        """Summed measuring time of the current run's finished units, over every call that measured
        them; None when one of them was recorded without its time (a file from an older version)."""
        times = [self._seconds.get(k) for k in self._active if k in self._done]
        return None if any(t is None for t in times) else round(sum(times), 1)

    def current(self) -> list[Record]:
        """Records of the units of work asked for since this store was opened (older ones, e.g.
        measured with other weights, stay in the JSON-lines file but are not reported)."""
        return [r for r in self.records if config_key(r.config) in self._active]

    def add(self, records: Iterable[Record], key: str, *, seconds: float | None = None) -> None:
        """Append a finished unit of work atomically enough: its records, then its done marker.
        ``seconds``: its measuring time when it was measured elsewhere (another process); by
        default the time since ``done(key)``."""
        rows = [r.to_json() for r in records]
        started = self._started.pop(key, None)
        secs = round(seconds, 3) if seconds is not None else (None if started is None
                                                             else round(time.monotonic() - started, 3))
        with open(self.path, "a") as f:
            for row in rows:
                f.write(dumps_strict(row) + "\n")
            f.write(dumps_strict({"_done": key, "seconds": secs}) + "\n")
        self.records.extend(Record.from_json(json.loads(dumps_strict(r))) for r in rows)
        self._done.add(key)
        self._seconds[key] = secs

    def write_json(self, path: str | Path, meta: dict[str, Any], **derived: Any) -> Path:
        """The current records as ``{"meta": ..., "records": [...]}``, plus any ``derived``
        sections (figures computed from the records, e.g. ``gaps``)."""
        path = Path(path)
        body = {"meta": meta, **derived, "records": [r.to_json() for r in self.current()]}
        path.write_text(dumps_strict(body, indent=1))
        return path
