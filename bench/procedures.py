"""Procedures the conformance tests share: waiting on the bench clock for a condition, and
reassociating with a meter that restarts after an outage."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from smmc_bench.drivers.dlms import DlmsSession
from smmc_bench.drivers.dlms.errors import LinkError

log = logging.getLogger(__name__)


def reassociate(session: DlmsSession, clock, within_s: float, step_s: float = 1.0) -> float:
    """Associate again after the meter lost power (its connections died with it), trying every
    `step_s` of bench time; returns the bench seconds it took, or raises the last link error
    once `within_s` has passed."""
    start = clock.monotonic()
    while True:
        session.close()
        try:
            session.connect()
            return clock.monotonic() - start
        except LinkError:
            if clock.monotonic() - start >= within_s:
                raise
        clock.sleep(step_s)


# A restore waits this many times the profile's restart_time for a meter slow to come back: the test
# that judges the restart time has given its verdict, and the tests after it must find the meter up.
RESTORE_PATIENCE = 10


def reassociate_for_restore(session: DlmsSession, clock, restart_time_s: float) -> float:
    """`reassociate` for a restore: patient, since judging the restart time is a test's job, not a restore's."""
    return reassociate(session, clock, RESTORE_PATIENCE * restart_time_s)


def wait_until(condition: Callable[[], bool], clock, within_s: float, step_s: float = 1.0) -> float | None:
    """Poll `condition` every `step_s` of bench time; the bench seconds until it held, or None."""
    start = clock.monotonic()
    while True:
        if condition():
            return clock.monotonic() - start
        elapsed = clock.monotonic() - start
        if elapsed >= within_s:
            return None
        clock.sleep(min(step_s, within_s - elapsed))


def bench_datetime(clock, monotonic_s: float) -> datetime:
    """The bench's reference time at bench monotonic `monotonic_s`."""
    return clock.now() - timedelta(seconds=clock.monotonic() - monotonic_s)


@dataclass(frozen=True)
class Outage:
    """A supply cut as the bench made and measured it."""

    started: datetime  # bench reference time the supply was cut
    ended: datetime  # and came back
    how: str  # how the source timed it (evidence: cycle-exact or not)
    applied_s: float | None = None  # the length the source measured, not the one it was told
    applied_uncertainty_s: float | None = None
    ended_monotonic: float | None = None  # bench monotonic seconds at the restoration

    @property
    def duration_s(self) -> float:
        """The outage a verdict is judged against: as measured where the source measured it."""
        return self.applied_s if self.applied_s is not None else (self.ended - self.started).total_seconds()


def cut_supply(ac_source, seconds: float, bench_clock) -> Outage:
    result = ac_source.dropout(seconds, bench_clock)
    return Outage(bench_datetime(bench_clock, result.started_at), bench_datetime(bench_clock, result.ended_at),
                  result.describe(), result.applied_s, result.applied_uncertainty_s, result.ended_at)
