"""Time-of-use objects as the conformance tests see them (activity calendar IC 20, special
days IC 11, tariff indicator and registers), and the bench's own reference model of a
calendar: which tariff a plan puts on each local minute, independent of the meter's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from smmc_bench.drivers.dlms import CosemDateTime, DataType, DlmsSession, Typed
from smmc_bench.drivers.dlms.errors import MalformedReply

ACTIVITY_CALENDAR = 20
SPECIAL_DAYS = 11
DATA = 1
NOT_SPECIFIED = 0xFF
EVERY_YEAR_JAN_1 = bytes.fromhex("ffff0101ff000000ff8000ff")  # season start: 1 January of any year


def _octets(value: bytes) -> Typed:
    return Typed(DataType.OCTET_STRING, value)


@dataclass(frozen=True)
class TouPlan:
    """A one-season calendar: day profiles {day_id: [(start, tariff)]}, a week of day ids
    (Monday first), special days {date: day_id}, and the script table its actions name."""

    name: bytes
    days: dict[int, list[tuple[time, int]]]
    week: tuple[int, int, int, int, int, int, int]
    script_table: str
    special: dict[date, int] = field(default_factory=dict)

    # -- the bench's reference model -------------------------------------------------------
    def _actions(self, day: date) -> list[tuple[time, int]]:
        return sorted(self.days[self.special.get(day, self.week[day.weekday()])])

    def tariff_at(self, local: datetime) -> int:
        for back in range(8):
            day = local.date() - timedelta(days=back)
            started = [a for a in self._actions(day) if back or a[0] <= local.time()]
            if started:
                return started[-1][1]
        raise ValueError("the plan has no action in a week")

    def segments(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime, int]]:
        """(from, to, tariff) in local time, one per change of tariff, covering start..end."""
        changes = []
        day = start.date()
        while day <= end.date():
            changes += [datetime.combine(day, t) for t, _ in self._actions(day)]
            day += timedelta(days=1)
        cuts = sorted({start, end, *[c for c in changes if start < c < end]})
        merged: list[tuple[datetime, datetime, int]] = []
        for a, b in zip(cuts, cuts[1:]):
            tariff = self.tariff_at(a)
            if merged and merged[-1][2] == tariff:
                merged[-1] = (merged[-1][0], b, tariff)
            else:
                merged.append((a, b, tariff))
        return merged

    # -- its A-XDR form (IC 20 attributes 7, 8, 9) ------------------------------------------
    def seasons(self) -> Typed:
        return Typed(DataType.ARRAY, [Typed(DataType.STRUCTURE, [
            _octets(b"S1"), _octets(EVERY_YEAR_JAN_1), _octets(b"W1")])])

    def weeks(self) -> Typed:
        return Typed(DataType.ARRAY, [Typed(DataType.STRUCTURE, [
            _octets(b"W1"), *[Typed(DataType.UNSIGNED, d) for d in self.week]])])

    def day_profiles(self) -> Typed:
        script = bytes(int(p) for p in self.script_table.split("."))
        return Typed(DataType.ARRAY, [Typed(DataType.STRUCTURE, [
            Typed(DataType.UNSIGNED, day_id),
            Typed(DataType.ARRAY, [Typed(DataType.STRUCTURE, [
                _octets(bytes([t.hour, t.minute, t.second, NOT_SPECIFIED])), _octets(script),
                Typed(DataType.LONG_UNSIGNED, tariff)]) for t, tariff in actions])])
            for day_id, actions in sorted(self.days.items())])


class ActivityCalendar:
    """IC 20."""

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def _get(self, attribute: int):
        return self._session.get(ACTIVITY_CALENDAR, self.obis, attribute)

    def _name(self, attribute: int) -> bytes:
        value = self._get(attribute)
        if not isinstance(value, bytes):
            raise MalformedReply(f"activity calendar {self.obis} attr {attribute} is {type(value).__name__}, "
                                 "expected an octet-string")
        return value

    def active_name(self) -> bytes:
        return self._name(2)

    def passive_name(self) -> bytes:
        return self._name(6)

    def raw_active(self) -> tuple:
        """Attributes 2..5 as read (to write back as passive)."""
        return tuple(self._get(a) for a in (2, 3, 4, 5))

    def active_day_profiles(self):
        return self._get(5)

    def write_passive(self, plan: TouPlan) -> None:
        self._session.set(ACTIVITY_CALENDAR, self.obis, 6, _octets(plan.name))
        self._session.set(ACTIVITY_CALENDAR, self.obis, 7, plan.seasons())
        self._session.set(ACTIVITY_CALENDAR, self.obis, 8, plan.weeks())
        self._session.set(ACTIVITY_CALENDAR, self.obis, 9, plan.day_profiles())

    def write_passive_typed(self, name: Typed, seasons: Typed, weeks: Typed, days: Typed) -> None:
        for attribute, value in zip((6, 7, 8, 9), (name, seasons, weeks, days)):
            self._session.set(ACTIVITY_CALENDAR, self.obis, attribute, value)

    def set_activation_time(self, when: CosemDateTime) -> None:
        self._session.set(ACTIVITY_CALENDAR, self.obis, 10, _octets(when.to_bytes()))

    def activate_passive_calendar(self) -> None:
        self._session.action(ACTIVITY_CALENDAR, self.obis, 1, Typed(DataType.INTEGER, 0))


class SpecialDays:
    """IC 11."""

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def indexes(self) -> list[int]:
        entries = self._session.get(SPECIAL_DAYS, self.obis, 2)
        try:
            return [int(entry[0]) for entry in entries]
        except (TypeError, IndexError, ValueError):
            raise MalformedReply(f"special days {self.obis} entries {entries!r} are not {{index, date, day_id}}") from None

    def insert(self, index: int, day: date, day_id: int) -> None:
        raw = day.year.to_bytes(2, "big") + bytes([day.month, day.day, day.isoweekday()])
        self._session.action(SPECIAL_DAYS, self.obis, 1, Typed(DataType.STRUCTURE, [
            Typed(DataType.LONG_UNSIGNED, index), _octets(raw), Typed(DataType.UNSIGNED, day_id)]))

    def delete(self, index: int) -> None:
        self._session.action(SPECIAL_DAYS, self.obis, 2, Typed(DataType.LONG_UNSIGNED, index))


class TariffIndicator:
    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def read(self) -> int:
        return int(self._session.get(DATA, self.obis, 2))


def typed_calendar(name, seasons, weeks, days) -> tuple[Typed, Typed, Typed, Typed]:
    """A calendar as read (attributes 2..5, untyped) in its IC 20 A-XDR types, to write back as passive."""
    try:
        return (
            _octets(bytes(name)),
            Typed(DataType.ARRAY, [Typed(DataType.STRUCTURE, [_octets(bytes(f)) for f in s]) for s in seasons]),
            Typed(DataType.ARRAY, [Typed(DataType.STRUCTURE, [_octets(bytes(w[0]))] +
                                         [Typed(DataType.UNSIGNED, int(d)) for d in w[1:]]) for w in weeks]),
            Typed(DataType.ARRAY, [Typed(DataType.STRUCTURE, [
                Typed(DataType.UNSIGNED, int(d[0])),
                Typed(DataType.ARRAY, [Typed(DataType.STRUCTURE, [
                    _octets(bytes(a[0])), _octets(bytes(a[1])), Typed(DataType.LONG_UNSIGNED, int(a[2]))])
                    for a in d[1]])]) for d in days]),
        )
    except (TypeError, IndexError, ValueError):
        raise MalformedReply("activity calendar tables are not shaped as IC 20 says") from None
