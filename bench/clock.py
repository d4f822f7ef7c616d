"""The bench clock: what tests wait through.

On hardware it is wall time (`RealClock`); on the emulated bench it is the
`VirtualClock` shared with the emulated meter, which has the same interface.
"""
from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from typing import Callable, Protocol


class BenchClock(Protocol):
    is_virtual: bool

    def now(self) -> datetime: ...
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class RealClock:
    """Wall time. A wait that keeps the bench quiet for longer than `progress_every` seconds
    (a 300 s outage, a 720 s emergency profile, a poll loop) reports what it waits for at least
    that often, through `report` (stderr by default; the plugin writes past pytest's capture),
    whether or not the output is a terminal. `activity()` says what the bench is doing (the
    plugin: the test and its running step)."""

    is_virtual = False

    def __init__(self, progress_every: float = 10.0, report: Callable[[str], None] | None = None,
                 activity: Callable[[], str] | None = None) -> None:
        self.progress_every = progress_every
        self.report = report or _to_stderr
        self.activity = activity or (lambda: "")
        self._started = self._quiet_since = time.monotonic()

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()

    def new_activity(self) -> None:
        """Something new started (a test): its waits are counted from now."""
        self._started = self._quiet_since = time.monotonic()

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end:
            due = self._quiet_since + self.progress_every
            if now >= due:
                self._say(now, end)
                due = now + self.progress_every
            time.sleep(min(end, due) - now)

    def _say(self, now: float, end: float) -> None:
        self._quiet_since = now
        left = f", {end - now:.0f} s of this pause left" if end - now >= 1 else ""
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
        self.report(f"{stamp} waiting, {now - self._started:.0f} s in{left}: {self.activity() or 'the bench'}")


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
