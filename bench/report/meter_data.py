"""The meter data a test read (load-profile intervals, event-log and power-failure rows, billing rows),
kept with the test's record so the results store can make it queryable (aspect 11, art. 5-1).

The COSEM views (cosem/profile_generic.py, cosem/event_log.py) note each row they decode; the recorder
opens a log for each test and keeps what was noted. Bounded: a row read twice is kept once, and past
MAX_ROWS rows per test the rest are only counted (`dropped`), so a test that polls a buffer
hundreds of times cannot grow the run record without end."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

KINDS = ("load_profile", "event", "power_failure", "billing")
MAX_ROWS = 1000


@dataclass
class MeterDataLog:
    rows: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    _seen: set[str] = field(default_factory=set)

    def note(self, kind: str, obis: str, stamp: datetime | None, values: dict[str, Any]) -> None:
        row = {"kind": kind, "obis": obis, "stamp": stamp.isoformat() if stamp is not None else None,
               "values": values}
        key = json.dumps(row, sort_keys=True, default=str)
        if key in self._seen:
            return
        if len(self.rows) >= MAX_ROWS:
            self.dropped += 1
            return
        self._seen.add(key)
        self.rows.append(row)


_current: MeterDataLog | None = None


def begin() -> MeterDataLog:
    """A new log for the test about to run (one test at a time per process, also on a worker)."""
    global _current
    _current = MeterDataLog()
    return _current


def end() -> MeterDataLog | None:
    global _current
    log, _current = _current, None
    return log


def note(kind: str, obis: str, stamp: datetime | None, values: dict[str, Any]) -> None:
    """A row a COSEM view decoded; kept when a test is running, else nothing (tools, emulator)."""
    if _current is not None:
        _current.note(kind, obis, stamp, values)
