"""Event logs (profile generic IC 7 holding event codes and stamps): the standard event log and
the power-failure log."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from smmc_bench.cosem.common import PROFILE_GENERIC, _date_time
from smmc_bench.drivers.dlms import CosemDateTime, DlmsSession
from smmc_bench.drivers.dlms.errors import MalformedReply
from smmc_bench.report import meter_data


@dataclass(frozen=True)
class Event:
    time: datetime
    code: int


class EventLog:
    """A profile generic whose buffer rows are (date-time, event code)."""

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def entries(self) -> list[Event]:
        buffer = self._session.get(PROFILE_GENERIC, self.obis, 2)
        if not isinstance(buffer, list):
            raise MalformedReply(f"event log {self.obis} buffer is {type(buffer).__name__}, expected an array")
        events = []
        for index, row in enumerate(buffer):
            try:
                stamp, code = row[0], row[1]
                events.append(Event(time=CosemDateTime.from_bytes(stamp).to_datetime(), code=int(code)))
            except (TypeError, IndexError, ValueError) as exc:
                raise MalformedReply(
                    f"event log {self.obis} row {index} is not (date-time, event code): {row!r} ({exc})"
                ) from None
        for event in events:
            meter_data.note("event", self.obis, event.time, {"code": event.code})
        return events

    def entries_in_use(self) -> int:
        return int(self._session.get(PROFILE_GENERIC, self.obis, 7))

    def profile_entries(self) -> int:
        return int(self._session.get(PROFILE_GENERIC, self.obis, 8))

    def new_since(self, before: list[Event]) -> list[Event]:
        """Entries appended since `before` was read.

        Rows are matched by position, not by value: two rows can be equal (same
        second, same code). A FIFO buffer that wrapped has dropped rows from the
        front, so the longest tail of `before` that still heads the buffer is the overlap.
        """
        now = self.entries()
        for dropped in range(len(before) + 1):
            kept = before[dropped:]
            if now[: len(kept)] == kept:
                return now[len(kept) :]
        return now


@dataclass(frozen=True)
class PowerFailure:
    time: datetime  # what the profile's power_failure_log.stamp says: the loss or the return
    duration_s: int


class PowerFailureLog:
    """A profile generic whose rows are (date-time, duration in s)."""

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def entries(self) -> list[PowerFailure]:
        buffer = self._session.get(PROFILE_GENERIC, self.obis, 2)
        if not isinstance(buffer, list):
            raise MalformedReply(f"power-failure log {self.obis} buffer is {type(buffer).__name__}, expected an array")
        rows = []
        for index, row in enumerate(buffer):
            try:
                stamp, duration = row[0], row[1]
                rows.append(PowerFailure(_date_time(stamp, f"row {index} time"), int(duration)))
            except (TypeError, IndexError, ValueError) as exc:
                raise MalformedReply(
                    f"power-failure log {self.obis} row {index} is not (date-time, duration): {row!r} ({exc})"
                ) from None
        for failure in rows:
            meter_data.note("power_failure", self.obis, failure.time, {"duration_s": failure.duration_s})
        return rows

    def new_since(self, before: list[PowerFailure]) -> list[PowerFailure]:
        """Rows appended since `before` (matched by position, as EventLog.new_since)."""
        now = self.entries()
        for dropped in range(len(before) + 1):
            kept = before[dropped:]
            if now[: len(kept)] == kept:
                return now[len(kept):]
        return now
