"""COSEM views for the supply-side tests: limiter, push setup, power-failure log,
alarm register and filter, instantaneous values; and the procedures those
tests share (reassociating after an outage, bringing the breaker back).

Named attributes and methods over a DLMS session, so a test reads like its
use case. Built on bench.cosem (Register, EventLog, DisconnectControl).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from bench.restore import BenchLimitation
from bench.cosem import (
    ControlState, DisconnectControl, EventLog, Register, expected_transition,
)
from drivers.dlms import CosemDateTime, DataType, DlmsSession, Typed
from drivers.dlms.errors import LinkError, MalformedReply

log = logging.getLogger(__name__)

DATA = 1
PROFILE_GENERIC = 7
PUSH_SETUP = 40
LIMITER = 71


def obis_text(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def obis_bytes(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def _date_time(raw: Any, what: str) -> datetime:
    if isinstance(raw, CosemDateTime):
        return raw.to_datetime()
    if not isinstance(raw, bytes):
        raise MalformedReply(f"{what} is {type(raw).__name__}, expected a 12-byte date-time")
    try:
        return CosemDateTime.from_bytes(raw).to_datetime()
    except ValueError as exc:
        raise MalformedReply(f"{what} {raw.hex()} is not a date-time: {exc}") from None


class DataValue:
    """IC 1 Data holding an unsigned integer of a known A-XDR type (alarm register, filter, counters)."""

    def __init__(self, session: DlmsSession, obis: str, value_type: DataType = DataType.DOUBLE_LONG_UNSIGNED) -> None:
        self._session, self.obis, self.value_type = session, obis, value_type

    def read(self) -> int:
        value = self._session.get(DATA, self.obis, 2)
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedReply(f"data {self.obis} value is {value!r}, expected an integer")
        return value

    def write(self, value: int) -> None:
        self._session.set(DATA, self.obis, 2, Typed(self.value_type, value))


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
        return rows

    def new_since(self, before: list[PowerFailure]) -> list[PowerFailure]:
        """Rows appended since `before` (matched by position, as EventLog.new_since)."""
        now = self.entries()
        for dropped in range(len(before) + 1):
            kept = before[dropped:]
            if now[: len(kept)] == kept:
                return now[len(kept):]
        return now


@dataclass(frozen=True)
class PushObject:
    class_id: int
    obis: str
    attribute: int


class PushSetup:
    """IC 40 Push setup: what it pushes, where to, and the push method."""

    TCP = 0
    AXDR_APDU = 0

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def object_list(self) -> list[PushObject]:
        raw = self._session.get(PUSH_SETUP, self.obis, 2)
        try:
            return [PushObject(int(item[0]), obis_text(bytes(item[1])), int(item[2])) for item in raw]
        except (TypeError, IndexError, ValueError) as exc:
            raise MalformedReply(f"push setup {self.obis} push_object_list {raw!r} is malformed ({exc})") from None

    def destination(self) -> str:
        raw = self._session.get(PUSH_SETUP, self.obis, 3)
        try:
            return bytes(raw[1]).decode("ascii")
        except (TypeError, IndexError, ValueError, UnicodeDecodeError) as exc:
            raise MalformedReply(f"push setup {self.obis} send_destination {raw!r} is malformed ({exc})") from None

    def set_destination(self, destination: str) -> None:
        """TCP, 'host:port', A-XDR encoded xDLMS APDU (as a head-end configures a meter to push to it)."""
        self._session.set(PUSH_SETUP, self.obis, 3, Typed(DataType.STRUCTURE, [
            Typed(DataType.ENUM, self.TCP), Typed(DataType.OCTET_STRING, destination.encode("ascii")),
            Typed(DataType.ENUM, self.AXDR_APDU)]))

    def push(self) -> None:
        self._session.action(PUSH_SETUP, self.obis, 1, Typed(DataType.INTEGER, 0))

    def values(self, data: Any, objects: list[PushObject]) -> dict[tuple[int, str, int], Any]:
        """A notification body read through the push object list: (class, obis, attribute) -> value."""
        if not isinstance(data, list) or len(data) != len(objects):
            raise MalformedReply(f"pushed body {data!r} does not match the push object list of "
                                 f"{len(objects)} objects")
        return {(o.class_id, o.obis, o.attribute): value for o, value in zip(objects, data)}


@dataclass(frozen=True)
class EmergencyProfile:
    profile_id: int
    activation: datetime | None
    duration_s: int


class Limiter:
    """IC 71 Limiter."""

    def __init__(self, session: DlmsSession, obis: str, threshold_type: DataType) -> None:
        self._session, self.obis, self.threshold_type = session, obis, threshold_type

    def _get(self, attribute: int) -> Any:
        return self._session.get(LIMITER, self.obis, attribute)

    def _set(self, attribute: int, value: Typed) -> None:
        self._session.set(LIMITER, self.obis, attribute, value)

    def monitored_value(self) -> tuple[int, str, int]:
        raw = self._get(2)
        return int(raw[0]), obis_text(bytes(raw[1])), int(raw[2])

    def threshold_active(self) -> int:
        return int(self._get(3))

    def threshold_normal(self) -> int:
        return int(self._get(4))

    def threshold_emergency(self) -> int:
        return int(self._get(5))

    def min_over_threshold_duration(self) -> int:
        return int(self._get(6))

    def min_under_threshold_duration(self) -> int:
        return int(self._get(7))

    def set_threshold_normal(self, value: int) -> None:
        self._set(4, Typed(self.threshold_type, int(value)))

    def set_threshold_emergency(self, value: int) -> None:
        self._set(5, Typed(self.threshold_type, int(value)))

    def set_min_over_threshold_duration(self, seconds: int) -> None:
        self._set(6, Typed(DataType.DOUBLE_LONG_UNSIGNED, int(seconds)))

    def set_min_under_threshold_duration(self, seconds: int) -> None:
        self._set(7, Typed(DataType.DOUBLE_LONG_UNSIGNED, int(seconds)))

    def emergency_profile(self) -> EmergencyProfile:
        raw = self._get(8)
        try:
            stamp = raw[1].to_bytes() if isinstance(raw[1], CosemDateTime) else bytes(raw[1])
            value = CosemDateTime.from_bytes(stamp, validate=False)
            activation = None if value.year == 0xFFFF else value.to_datetime()
            return EmergencyProfile(int(raw[0]), activation, int(raw[2]))
        except (TypeError, IndexError, ValueError) as exc:
            raise MalformedReply(f"limiter {self.obis} emergency_profile {raw!r} is malformed ({exc})") from None

    def set_emergency_profile(self, profile_id: int, activation: datetime | CosemDateTime, duration_s: int,
                              deviation_minutes: int = 0) -> None:
        stamp = (activation if isinstance(activation, CosemDateTime)
                 else CosemDateTime.from_datetime(activation, deviation_minutes))
        self._set(8, Typed(DataType.STRUCTURE, [
            Typed(DataType.LONG_UNSIGNED, profile_id), Typed(DataType.OCTET_STRING, stamp.to_bytes()),
            Typed(DataType.DOUBLE_LONG_UNSIGNED, int(duration_s))]))

    def raw_emergency_profile(self) -> Any:
        return self._get(8)

    def restore_emergency_profile(self, raw: Any) -> None:
        stamp = raw[1].to_bytes() if isinstance(raw[1], CosemDateTime) else bytes(raw[1])
        self._set(8, Typed(DataType.STRUCTURE, [
            Typed(DataType.LONG_UNSIGNED, int(raw[0])), Typed(DataType.OCTET_STRING, stamp),
            Typed(DataType.DOUBLE_LONG_UNSIGNED, int(raw[2]))]))

    def emergency_group_ids(self) -> list[int]:
        return [int(g) for g in self._get(9)]

    def set_emergency_group_ids(self, ids: list[int]) -> None:
        self._set(9, Typed(DataType.ARRAY, [Typed(DataType.LONG_UNSIGNED, g) for g in ids]))

    def emergency_profile_active(self) -> bool:
        return bool(self._get(10))


class SupplyObjects:
    """The meter's supply-side objects over the test's session, as its profile names them."""

    def __init__(self, meter) -> None:
        session, profile = meter.session, meter.profile.supply
        objects = profile.objects
        value_type = DataType[profile.alarms.value_type.upper()]
        self.limiter = Limiter(session, objects.limiter, DataType[profile.limiter.threshold_type.upper()])
        self.power_failure_log = PowerFailureLog(session, objects.power_failure_log)
        self.power_failure_count = DataValue(session, objects.power_failure_count, DataType.LONG_UNSIGNED)
        self.alarm_register = DataValue(session, objects.alarm_register, value_type)
        self.alarm_filter = DataValue(session, objects.alarm_filter, value_type)
        self.alarm_push = PushSetup(session, objects.alarm_push_setup)
        self.voltage = Register(session, objects.instantaneous_voltage)
        self.current = Register(session, objects.instantaneous_current)
        self.active_power = Register(session, objects.instantaneous_active_power)
        self.power_event_log = EventLog(session, objects.power_event_log)
        self.limiter_event_log = EventLog(session, objects.limiter_event_log)


# -- procedures the supply-side tests share ------------------------------------------------

def write_limiter_settings(limiter: Limiter, limits) -> None:
    """The profile's test thresholds and durations (SupplyLimits) into the limiter."""
    limiter.set_threshold_normal(round(limits.limiter_threshold.value))
    limiter.set_threshold_emergency(round(limits.limiter_emergency_threshold.value))
    limiter.set_min_over_threshold_duration(round(limits.limiter_min_over_threshold_duration.value))
    limiter.set_min_under_threshold_duration(round(limits.limiter_min_under_threshold_duration.value))


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


# Modes where remote_reconnect from 'disconnected' leads straight to 'connected' (transition d).
MODES_WITH_DIRECT_RECONNECT = (1, 3, 5, 6)


def restore_connected(dc: DisconnectControl, supported_modes, final_mode: int,
                      press_reconnect: Callable[[], None] | None = None) -> None:
    """Bring the breaker back to 'connected' through remote methods, then set `final_mode`.

    `press_reconnect` (the emulator's button) closes a breaker a faulty meter left in
    ready_for_reconnection, so one defect does not turn every later test into an ERROR.
    """
    direct = [m for m in MODES_WITH_DIRECT_RECONNECT if m in supported_modes]
    if dc.control_state() is not ControlState.CONNECTED:
        if not direct:
            raise BenchLimitation("the profile's control modes cannot reconnect remotely: reconnect the meter by hand")
        dc.set_control_mode(direct[0])
        if dc.control_state() is ControlState.READY_FOR_RECONNECTION:
            dc.remote_disconnect()  # transition b, so that d can follow
        dc.remote_reconnect()  # transition d
        if dc.control_state() is ControlState.READY_FOR_RECONNECTION and press_reconnect is not None:
            press_reconnect()  # transition e
        state = dc.control_state()
        if state is not ControlState.CONNECTED:
            raise BenchLimitation(f"the meter did not reconnect through mode {direct[0]} (control_state "
                                  f"{state.name}): reconnect it by hand")
    if dc.control_mode() != final_mode:
        dc.set_control_mode(final_mode)


def has_transition(mode: int, trigger: str, state: ControlState) -> bool:
    return expected_transition(mode, trigger, state) is not None


def bench_datetime(clock, monotonic_s: float) -> datetime:
    """The bench's reference time at bench monotonic `monotonic_s`."""
    return clock.now() - timedelta(seconds=clock.monotonic() - monotonic_s)
