"""COSEM interface classes as the conformance tests see them: named attributes and
methods over a DLMS session, so a test reads like its use case, never like bytes.

Also the bench's own reference model of the disconnect control state machine
(IEC 62056-6-2, IC 70), independent of the emulator's.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum

from drivers.dlms import CosemDateTime, DataType, DlmsSession, Typed
from drivers.dlms.errors import MalformedReply

CLOCK = 8
DISCONNECT_CONTROL = 70
PROFILE_GENERIC = 7
DATA = 1

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


REGISTER = 3
# A subset of the DLMS unit enumeration (IEC 62056-6-2): the units a bench test reads.
UNITS = {27: "W", 28: "VA", 29: "var", 30: "Wh", 31: "VAh", 32: "varh", 33: "A", 35: "V", 44: "Hz"}


class Register:
    """IC 3: a value with a scaler and a unit."""

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def read(self) -> tuple[float, str]:
        raw = self._session.get(REGISTER, self.obis, 2)
        scaler_unit = self._session.get(REGISTER, self.obis, 3)
        try:
            scaler, unit = int(scaler_unit[0]), int(scaler_unit[1])
            value = float(raw) * 10.0**scaler
        except (TypeError, IndexError, ValueError):
            raise MalformedReply(
                f"register {self.obis}: value {raw!r} with scaler_unit {scaler_unit!r} is not a scaled number"
            ) from None
        return value, UNITS.get(unit, f"unit {unit}")


class ControlState(IntEnum):
    DISCONNECTED = 0
    CONNECTED = 1
    READY_FOR_RECONNECTION = 2


# IC 70 transitions: letter -> (trigger, from state, to state).
TRANSITIONS = {
    "a": ("remote_reconnect", ControlState.DISCONNECTED, ControlState.READY_FOR_RECONNECTION),
    "b": ("remote_disconnect", ControlState.READY_FOR_RECONNECTION, ControlState.DISCONNECTED),
    "c": ("remote_disconnect", ControlState.CONNECTED, ControlState.DISCONNECTED),
    "d": ("remote_reconnect", ControlState.DISCONNECTED, ControlState.CONNECTED),
    "e": ("manual_reconnect", ControlState.READY_FOR_RECONNECTION, ControlState.CONNECTED),
    "f": ("manual_disconnect", ControlState.CONNECTED, ControlState.READY_FOR_RECONNECTION),
    "g": ("local_disconnect", ControlState.CONNECTED, ControlState.READY_FOR_RECONNECTION),
    "h": ("local_reconnect", ControlState.READY_FOR_RECONNECTION, ControlState.CONNECTED),
}

# The transitions each control mode allows (Blue Book, IC 70 attribute 4).
MODE_TRANSITIONS = {
    0: "",
    1: "bcfgde",
    2: "bcfgae",
    3: "bcgde",
    4: "bcgae",
    5: "bcfgdeh",
    6: "bcgdeh",
}


def expected_transition(mode: int, trigger: str, state: ControlState) -> ControlState | None:
    """The state `trigger` leads to from `state` in `mode`, or None when the mode forbids it."""
    for letter in MODE_TRANSITIONS[mode]:
        name, source, target = TRANSITIONS[letter]
        if name == trigger and source == state:
            return target
    return None


class DisconnectControl:
    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def output_state(self) -> bool:
        return bool(self._session.get(DISCONNECT_CONTROL, self.obis, 2))

    def control_state(self) -> ControlState:
        return ControlState(int(self._session.get(DISCONNECT_CONTROL, self.obis, 3)))

    def control_mode(self) -> int:
        return int(self._session.get(DISCONNECT_CONTROL, self.obis, 4))

    def set_control_mode(self, mode: int) -> None:
        self._session.set(DISCONNECT_CONTROL, self.obis, 4, Typed(DataType.ENUM, mode))

    def remote_disconnect(self) -> None:
        self._session.action(DISCONNECT_CONTROL, self.obis, 1, Typed(DataType.INTEGER, 0))

    def remote_reconnect(self) -> None:
        self._session.action(DISCONNECT_CONTROL, self.obis, 2, Typed(DataType.INTEGER, 0))

    def invoke(self, trigger: str) -> None:
        {"remote_disconnect": self.remote_disconnect, "remote_reconnect": self.remote_reconnect}[trigger]()


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


def seconds_between(a: datetime, b: datetime) -> float:
    return (a - b) / timedelta(seconds=1)
