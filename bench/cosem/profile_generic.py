"""Profile generic (IC 7) as the readings tests see it: the buffer whole, by range and by
entry, capture period, entries in use and capacity; and a load profile's rows as
intervals (capture time, status, energy) found by its capture objects, not by position.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterator

from smmc_bench.cosem.common import (
    CLOCK,
    PROFILE_GENERIC,
    _date_time,
    obis_bytes,
    obis_text,
    seconds_between,
)
from smmc_bench.cosem.register import Register
from smmc_bench.drivers.dlms import CosemDateTime, DataType, DlmsSession, Typed
from smmc_bench.drivers.dlms.errors import MalformedReply
from smmc_bench.procedures import reassociate_for_restore
from smmc_bench.report import meter_data
from smmc_bench.safety.restore import restore_all

RANGE_SELECTOR, ENTRY_SELECTOR = 1, 2


@dataclass(frozen=True)
class CaptureObject:
    class_id: int
    obis: str
    attribute: int
    data_index: int = 0


@dataclass(frozen=True)
class Interval:
    time: datetime  # aware UTC, as the meter stamped it
    status: int
    energy: float  # in the energy register's unit, scaled


class ProfileGeneric:
    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def _get(self, attribute: int, access: tuple[int, Typed] | None = None) -> Any:
        return self._session.get(PROFILE_GENERIC, self.obis, attribute, access)

    def capture_objects(self) -> list[CaptureObject]:
        raw = self._get(3)
        try:
            return [CaptureObject(int(c[0]), obis_text(bytes(c[1])), int(c[2]), int(c[3])) for c in raw]
        except (TypeError, IndexError, ValueError) as exc:
            raise MalformedReply(f"profile {self.obis} capture_objects {raw!r} are not "
                                 f"{{class_id, logical_name, attribute, data_index}} ({exc})") from None

    def set_capture_objects(self, objects: list[CaptureObject]) -> None:
        self._session.set(PROFILE_GENERIC, self.obis, 3, Typed(DataType.ARRAY, [
            Typed(DataType.STRUCTURE, [Typed(DataType.LONG_UNSIGNED, c.class_id),
                                       Typed(DataType.OCTET_STRING, obis_bytes(c.obis)),
                                       Typed(DataType.INTEGER, c.attribute),
                                       Typed(DataType.LONG_UNSIGNED, c.data_index)]) for c in objects]))

    def capture_period(self) -> int:
        return int(self._get(4))

    def set_capture_period(self, seconds: int) -> None:
        self.write_capture_period(Typed(DataType.DOUBLE_LONG_UNSIGNED, seconds))

    def write_capture_period(self, value: Typed) -> None:
        """Any value, of any type (the refusal tests write wrong ones)."""
        self._session.set(PROFILE_GENERIC, self.obis, 4, value)

    def entries_in_use(self) -> int:
        return int(self._get(7))

    def profile_entries(self) -> int:
        return int(self._get(8))

    def set_profile_entries(self, entries: int) -> None:
        self._session.set(PROFILE_GENERIC, self.obis, 8, Typed(DataType.DOUBLE_LONG_UNSIGNED, entries))

    def buffer(self) -> list[list[Any]]:
        return self._rows(self._get(2), "buffer")

    def by_range(self, restricting: CaptureObject, start: datetime, end: datetime, deviation: int = 0) -> list:
        """Rows whose restricting column lies in [start, end] (Blue Book range_descriptor, all columns)."""
        descriptor = Typed(DataType.STRUCTURE, [
            Typed(DataType.STRUCTURE, [Typed(DataType.LONG_UNSIGNED, restricting.class_id),
                                       Typed(DataType.OCTET_STRING, obis_bytes(restricting.obis)),
                                       Typed(DataType.INTEGER, restricting.attribute),
                                       Typed(DataType.LONG_UNSIGNED, restricting.data_index)]),
            Typed(DataType.OCTET_STRING, CosemDateTime.from_datetime(start, deviation).to_bytes()),
            Typed(DataType.OCTET_STRING, CosemDateTime.from_datetime(end, deviation).to_bytes()),
            Typed(DataType.ARRAY, []),
        ])
        return self._rows(self._get(2, (RANGE_SELECTOR, descriptor)), f"range {start:%H:%M}..{end:%H:%M}")

    def by_entry(self, first: int, last: int, first_column: int = 1, last_column: int = 0) -> list:
        """Entries first..last (1 = the oldest, last 0 = the newest), columns first..last (0 = the last)."""
        descriptor = Typed(DataType.STRUCTURE, [
            Typed(DataType.DOUBLE_LONG_UNSIGNED, first), Typed(DataType.DOUBLE_LONG_UNSIGNED, last),
            Typed(DataType.LONG_UNSIGNED, first_column), Typed(DataType.LONG_UNSIGNED, last_column)])
        return self._rows(self._get(2, (ENTRY_SELECTOR, descriptor)), f"entries {first}..{last}")

    def _rows(self, raw: Any, what: str) -> list[list[Any]]:
        if not isinstance(raw, list) or not all(isinstance(row, list) for row in raw):
            raise MalformedReply(f"profile {self.obis} {what} is not an array of structures: {raw!r:.120}")
        return raw


class LoadProfile:
    """A profile generic whose columns include the clock, a status and an energy register."""

    def __init__(self, session: DlmsSession, obis: str, clock_obis: str, status_obis: str, energy_obis: str) -> None:
        self.generic = ProfileGeneric(session, obis)
        self.obis = obis
        self._names = {"clock": (CLOCK, clock_obis), "status": (1, status_obis), "energy": (3, energy_obis)}
        self._energy = Register(session, energy_obis)
        self._layout: dict[str, int] | None = None
        self._scale: float | None = None

    def layout(self) -> dict[str, int]:
        """Column of each of clock, status and energy (value attribute 2), from the capture objects."""
        if self._layout is None:
            objects = self.generic.capture_objects()
            layout = {}
            for name, (class_id, obis) in self._names.items():
                column = next((i for i, c in enumerate(objects)
                               if c.class_id == class_id and c.obis == obis and c.attribute == 2), None)
                if column is None:
                    raise MalformedReply(f"profile {self.obis} does not capture {name} {obis} "
                                         f"(capture objects {[(c.class_id, c.obis, c.attribute) for c in objects]})")
                layout[name] = column
            self._layout = layout
        return self._layout

    def clock_column(self) -> CaptureObject:
        return CaptureObject(CLOCK, self._names["clock"][1], 2, 0)

    def scale(self) -> float:
        """Energy column scaler (the register's scaler_unit: the profile captures its value attribute)."""
        if self._scale is None:
            raw = self._energy._session.get(3, self._energy.obis, 3)
            try:
                self._scale = 10.0 ** int(raw[0])
            except (TypeError, IndexError, ValueError):
                raise MalformedReply(f"register {self._energy.obis} scaler_unit {raw!r}") from None
        return self._scale

    def intervals(self, rows: list[list[Any]]) -> list[Interval]:
        layout, scale = self.layout(), self.scale()
        result = []
        for index, row in enumerate(rows):
            try:
                result.append(Interval(_date_time(row[layout["clock"]], f"row {index} clock"),
                                       int(row[layout["status"]]), float(row[layout["energy"]]) * scale))
            except (TypeError, IndexError, ValueError) as exc:
                raise MalformedReply(f"profile {self.obis} row {index} {row!r} is not "
                                     f"(clock, status, energy) in its capture objects' order ({exc})") from None
        for interval in result:
            meter_data.note("load_profile", self.obis, interval.time,
                            {"status": interval.status, "energy": interval.energy})
        return result

    def read(self) -> list[Interval]:
        return self.intervals(self.generic.buffer())

    def by_range(self, start: datetime, end: datetime) -> list[Interval]:
        return self.intervals(self.generic.by_range(self.clock_column(), start, end))

    def by_entry(self, first: int, last: int) -> list[Interval]:
        return self.intervals(self.generic.by_entry(first, last))


def load_profile_of(meter) -> LoadProfile:
    objects = meter.profile.readings.objects
    return LoadProfile(meter.session, objects.load_profile, meter.profile.objects.clock, objects.profile_status,
                       meter.profile.objects.active_energy_import)


@contextmanager
def load_profile_at_default_period(meter, bench_clock) -> Iterator[LoadProfile]:
    """The load profile at the profile's capture period (written if the meter had another), put back after."""
    view = load_profile_of(meter)
    period = int(meter.profile.readings.limits.capture_period.value)
    original = view.generic.capture_period()
    if original != period:
        view.generic.set_capture_period(period)
    try:
        yield view
    finally:
        def put_back() -> None:
            if not meter.session.is_associated:
                reassociate_for_restore(meter.session, bench_clock, meter.profile.supply.limits.restart_time.value)
            if view.generic.capture_period() != original:
                view.generic.set_capture_period(original)
        restore_all(f"meter {meter.id} load profile", [("capture period", put_back)])


class MeterTime:
    """Meter time against the bench's: the offset measured over DLMS, measured again after each change."""

    def __init__(self, meter, bench_clock) -> None:
        self._meter, self._bench = meter, bench_clock
        self.offset_s = meter_clock_offset(meter.clock, bench_clock)

    def measure(self) -> float:
        self.offset_s = meter_clock_offset(self._meter.clock, self._bench)
        return self.offset_s

    def now(self) -> datetime:
        return self._bench.now() + timedelta(seconds=self.offset_s)

    def bench_s(self, meter_moment: datetime) -> float:
        """The bench monotonic instant at which the meter's clock shows `meter_moment`."""
        return self._bench.monotonic() + seconds_between(meter_moment, self.now())

    def sleep_until(self, meter_moment: datetime) -> float:
        """Wait until the meter's clock shows `meter_moment`; the bench instant reached."""
        self._bench.sleep(max(0.0, self.bench_s(meter_moment) - self._bench.monotonic()))
        return self._bench.monotonic()


def meter_clock_offset(clock, bench_clock) -> float:
    """Meter time minus bench reference time (s), half the round trip credited to the request."""
    sent = bench_clock.now()
    reading = clock.read()
    return seconds_between(reading.time, sent + timedelta(seconds=clock.last_round_trip / 2))


def boundary_after(moment: datetime, period_s: int) -> datetime:
    """The first capture boundary strictly after `moment` (boundaries are whole periods from midnight UTC+deviation
    aligned on the meter's day; for periods dividing an hour the deviation does not matter)."""
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (moment - midnight).total_seconds()
    return midnight + timedelta(seconds=(int(elapsed // period_s) + 1) * period_s)


class DeliveredEnergy:
    """The energy the bench's AC source delivered: its measured power at bench instants (monotonic s),
    linear between samples, and zero through the spans the bench itself cut the supply.

    A test samples right before and after every change it makes (load step, cut), so that a
    linear span never hides a step."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self.cuts: list[tuple[float, float]] = []

    def sample(self, at_s: float, power_w: float) -> None:
        if self.samples and at_s < self.samples[-1][0]:
            raise ValueError("samples must come in bench-time order")
        self.samples.append((at_s, power_w))

    def cut(self, start_s: float, end_s: float) -> None:
        self.cuts.append((start_s, end_s))

    def wh_between(self, start_s: float, end_s: float) -> float:
        """Energy (Wh) delivered between two bench instants inside the sampled span."""
        if not self.samples or start_s < self.samples[0][0] - 1e-6 or end_s > self.samples[-1][0] + 1e-6:
            raise ValueError(f"{start_s:.3f}..{end_s:.3f} s lies outside the sampled span")
        joules = 0.0
        for (t0, p0), (t1, p1) in zip(self.samples, self.samples[1:]):
            a, b = max(t0, start_s), min(t1, end_s)
            if b <= a:
                continue
            cut = next(((c0, c1) for c0, c1 in self.cuts if t0 <= c0 and c1 <= t1), None)
            if cut is not None:  # the power held before the cut, nothing during it, the new power after
                joules += p0 * max(0.0, min(b, cut[0]) - a) + p1 * max(0.0, b - max(a, cut[1]))
                continue

            def power(t: float) -> float:
                return p0 if t1 == t0 else p0 + (p1 - p0) * (t - t0) / (t1 - t0)
            joules += (power(a) + power(b)) / 2 * (b - a)
        return joules / 3600.0


# -- account move (aspect 12) ---------------------------------------------------------------
SCRIPT_TABLE = 9


@dataclass(frozen=True)
class BillingRow:
    time: datetime
    energy: float  # scaled, the energy register's unit
    counter: int


class BillingProfile:
    """A profile generic whose columns include the clock, the energy register and the billing period counter."""

    def __init__(self, session: DlmsSession, obis: str, clock_obis: str, energy_obis: str, counter_obis: str) -> None:
        self.generic = ProfileGeneric(session, obis)
        self.obis = obis
        self._session = session
        self._wanted = {"clock": (CLOCK, clock_obis), "energy": (3, energy_obis), "counter": (1, counter_obis)}
        self._energy_obis = energy_obis

    def read(self) -> list[BillingRow]:
        objects = self.generic.capture_objects()
        columns = {}
        for name, (class_id, obis) in self._wanted.items():
            columns[name] = next((i for i, c in enumerate(objects)
                                  if c.class_id == class_id and c.obis == obis and c.attribute == 2), None)
            if columns[name] is None:
                raise MalformedReply(f"billing profile {self.obis} does not capture {name} {obis}")
        raw = self._session.get(3, self._energy_obis, 3)
        try:
            scale = 10.0 ** int(raw[0])
        except (TypeError, IndexError, ValueError):
            raise MalformedReply(f"register {self._energy_obis} scaler_unit {raw!r}") from None
        rows = []
        for index, row in enumerate(self.generic.buffer()):
            try:
                rows.append(BillingRow(_date_time(row[columns["clock"]], f"billing row {index} clock"),
                                       float(row[columns["energy"]]) * scale, int(row[columns["counter"]])))
            except (TypeError, IndexError, ValueError) as exc:
                raise MalformedReply(f"billing profile {self.obis} row {index} {row!r}: {exc}") from None
        for billing in rows:
            meter_data.note("billing", self.obis, billing.time, {"energy": billing.energy, "counter": billing.counter})
        return rows


class ScriptTable:
    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def execute(self, script_id: int) -> None:
        self._session.action(SCRIPT_TABLE, self.obis, 1, Typed(DataType.LONG_UNSIGNED, script_id))

    def script_ids(self) -> list[int]:
        """The script identifiers the table holds (attribute 2 scripts: {script_identifier, actions})."""
        raw = self._session.get(SCRIPT_TABLE, self.obis, 2)
        try:
            return [int(script[0]) for script in raw]
        except (TypeError, IndexError, ValueError) as exc:
            raise MalformedReply(f"script table {self.obis} scripts {raw!r} are not {{script_identifier, "
                                 f"actions}} entries ({exc})") from None


class OctetStringData:
    """IC 1 Data holding an octet string (e.g. customer data)."""

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def read(self) -> bytes:
        raw = self._session.get(1, self.obis, 2)
        if not isinstance(raw, bytes):
            raise MalformedReply(f"data {self.obis} value is {type(raw).__name__}, expected an octet-string")
        return raw

    def write(self, value: bytes) -> None:
        self._session.set(1, self.obis, 2, Typed(DataType.OCTET_STRING, value))
