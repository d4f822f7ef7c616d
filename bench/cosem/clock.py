"""Clock (IC 8) as the conformance tests see it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from smmc_bench.cosem.common import CLOCK
from smmc_bench.drivers.dlms import CosemDateTime, DataType, DlmsSession, Typed
from smmc_bench.drivers.dlms.errors import MalformedReply

CLOCK_STATUS_INVALID = 0x01


@dataclass(frozen=True)
class ClockReading:
    time: datetime  # aware, UTC
    status: int
    raw: CosemDateTime

    @property
    def invalid(self) -> bool:
        return bool(self.status & CLOCK_STATUS_INVALID)


class Clock:
    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def read(self) -> ClockReading:
        raw = self._session.get(CLOCK, self.obis, 2)
        if not isinstance(raw, bytes):
            raise MalformedReply(f"clock {self.obis} time is {type(raw).__name__}, expected a 12-byte octet-string")
        try:
            value = CosemDateTime.from_bytes(raw)
        except ValueError as exc:
            raise MalformedReply(f"clock {self.obis} time {raw.hex()} is not a valid date-time: {exc}") from None
        return ClockReading(time=value.to_datetime(), status=value.status, raw=value)

    def time_zone(self) -> int:
        return int(self._session.get(CLOCK, self.obis, 3))

    def status(self) -> int:
        return int(self._session.get(CLOCK, self.obis, 4))

    def set_time_zone(self, minutes: int) -> None:
        self._session.set(CLOCK, self.obis, 3, Typed(DataType.LONG, minutes))

    def write(self, when: datetime, deviation_minutes: int) -> None:
        self.write_raw(CosemDateTime.from_datetime(when, deviation_minutes))

    def write_raw(self, value: CosemDateTime) -> None:
        self._session.set(CLOCK, self.obis, 2, Typed(DataType.OCTET_STRING, value.to_bytes()))

    def shift_time(self, seconds: int) -> None:
        self._session.action(CLOCK, self.obis, 6, Typed(DataType.LONG, seconds))

    def adjust_to_quarter(self) -> None:
        self._session.action(CLOCK, self.obis, 1, Typed(DataType.INTEGER, 0))

    @property
    def last_round_trip(self) -> float:
        return self._session.last_round_trip
