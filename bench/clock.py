"""The bench clock: what tests wait through.

On hardware it is wall time (`RealClock`); on the emulated bench it is the
`VirtualClock` shared with the emulated meter, which has the same interface.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class BenchClock(Protocol):
    is_virtual: bool

    def now(self) -> datetime: ...
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class RealClock:
    is_virtual = False

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
