"""Result records and an append-only store that lets an interrupted sweep resume."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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


class ResultStore:
    """Records appended to ``path`` (JSON lines) as they are measured.

    ``done(key)`` tells whether a unit of work (one codec x channel x SNR) was finished by an
    earlier, interrupted run with the same configuration, so it can be skipped.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[Record] = []
        self._done: set[str] = set()
        self._active: set[str] = set()  # the units of work the current run asked for
        if self.path.is_file():
            for i, line in enumerate(self.path.read_text().splitlines(), 1):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s:%d: skipping a partial line (interrupted write)", self.path, i)
                    continue
                if row.get("_done"):
                    self._done.add(row["_done"])
                else:
                    self.records.append(Record(**row))

    def done(self, key: str) -> bool:
        """Whether ``key`` was finished already; either way it belongs to the current run."""
        self._active.add(key)
        return key in self._done

    def current(self) -> list[Record]:
        """Records of the units of work asked for since this store was opened (older ones, e.g.
        measured with other weights, stay in the JSON-lines file but are not reported)."""
        return [r for r in self.records if config_key(r.config) in self._active]

    def add(self, records: Iterable[Record], key: str) -> None:
        """Append a finished unit of work atomically enough: its records, then its done marker."""
        rows = [r.to_json() for r in records]
        with open(self.path, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
            f.write(json.dumps({"_done": key}) + "\n")
        self.records.extend(Record(**r) for r in rows)
        self._done.add(key)

    def write_json(self, path: str | Path, meta: dict[str, Any], **derived: Any) -> Path:
        """The current records as ``{"meta": ..., "records": [...]}``, plus any ``derived``
        sections (figures computed from the records, e.g. ``gaps``)."""
        path = Path(path)
        body = {"meta": meta, **derived, "records": [r.to_json() for r in self.current()]}
        path.write_text(json.dumps(body, indent=1))
        return path
