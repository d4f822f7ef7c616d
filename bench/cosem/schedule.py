"""Single action schedule (IC 22) as the conformance tests see it: the script it runs and
its execution times ({time, date} in the meter's local time, wildcards in the date)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from smmc_bench.cosem.common import obis_bytes, obis_text
from smmc_bench.drivers.dlms import DataType, DlmsSession, Typed
from smmc_bench.drivers.dlms.errors import MalformedReply

SINGLE_ACTION_SCHEDULE = 22
NOT_SPECIFIED = 0xFF


@dataclass(frozen=True)
class ScriptRef:
    script_table: str
    selector: int


@dataclass(frozen=True)
class ExecutionTime:
    """One {time, date} entry, raw octets (4 and 5)."""

    time: bytes
    date: bytes

    @classmethod
    def at(cls, local: datetime) -> "ExecutionTime":
        """A fully specified local instant (whole seconds)."""
        return cls(bytes([local.hour, local.minute, local.second, NOT_SPECIFIED]),
                   local.year.to_bytes(2, "big") + bytes([local.month, local.day, NOT_SPECIFIED]))

    def text(self) -> str:
        """'hh:mm:ss yyyy-mm-dd' with '*' for a not-specified field (how the record shows it)."""
        def field(value: int, width: int, unset: int = NOT_SPECIFIED) -> str:
            return "*" * width if value == unset else f"{value:0{width}d}"
        h, m, s = (field(v, 2) for v in self.time[:3])
        year = field(int.from_bytes(self.date[:2], "big"), 4, 0xFFFF)
        month, day = field(self.date[2], 2), field(self.date[3], 2)
        weekday = "" if self.date[4] == NOT_SPECIFIED else f" (day {self.date[4]})"
        return f"{h}:{m}:{s} {year}-{month}-{day}{weekday}"

    def typed(self) -> Typed:
        return Typed(DataType.STRUCTURE, [Typed(DataType.OCTET_STRING, self.time),
                                          Typed(DataType.OCTET_STRING, self.date)])


def local_time(meter_utc: datetime, deviation_min: int) -> datetime:
    """The meter's local wall time for an aware UTC instant (UTC = local + deviation)."""
    return (meter_utc - timedelta(minutes=deviation_min)).replace(tzinfo=None)


def _octets(raw: Any) -> bytes:
    if hasattr(raw, "to_bytes") and not isinstance(raw, (bytes, int)):
        return raw.to_bytes()
    return bytes(raw)


class SingleActionSchedule:
    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def script(self) -> ScriptRef:
        raw = self._session.get(SINGLE_ACTION_SCHEDULE, self.obis, 2)
        try:
            return ScriptRef(obis_text(bytes(raw[0])), int(raw[1]))
        except (TypeError, IndexError, ValueError) as exc:
            raise MalformedReply(f"schedule {self.obis} executed_script {raw!r} is malformed ({exc})") from None

    def execution_times(self) -> list[ExecutionTime]:
        raw = self._session.get(SINGLE_ACTION_SCHEDULE, self.obis, 4)
        try:
            return [ExecutionTime(_octets(item[0]), _octets(item[1])) for item in raw]
        except (TypeError, IndexError, ValueError) as exc:
            raise MalformedReply(f"schedule {self.obis} execution_time {raw!r} is malformed ({exc})") from None

    def set_execution_times(self, times: list[ExecutionTime]) -> None:
        self.write_execution_times(Typed(DataType.ARRAY, [t.typed() for t in times]))

    def write_execution_times(self, value: Typed) -> None:
        """Any value, of any type (the refusal tests write wrong ones)."""
        self._session.set(SINGLE_ACTION_SCHEDULE, self.obis, 4, value)

    def set_script(self, script: ScriptRef) -> None:
        self._session.set(SINGLE_ACTION_SCHEDULE, self.obis, 2, Typed(DataType.STRUCTURE, [
            Typed(DataType.OCTET_STRING, obis_bytes(script.script_table)),
            Typed(DataType.LONG_UNSIGNED, script.selector)]))
