"""Aspect 2 (arts 3-3, 4-10): daily values, the day the head-end exports to the MDM.

The bench drives a known load at its own source for `daily_days` days of meter
time, a different current each day and an outage on the second, reads the
energy register right after each local midnight, then the meter's daily values,
whole and by range (the MDM's export). It judges: one row at each local midnight
of the window (the clock minus the time zone's deviation), none missing, none
doubled, none off midnight; the read by range returns the window's rows, both
edges included; each day's energy delta against what the source delivered that
day; each row against the register read at that midnight; the power-down status
bit on the row closing the day of the outage and on no other row.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from smmc_bench.cosem.common import seconds_between
from smmc_bench.cosem.disconnect import restore_connected
from smmc_bench.cosem.profile_generic import DeliveredEnergy, LoadProfile, MeterTime
from smmc_bench.drivers.dlms.errors import DlmsError
from smmc_bench.procedures import reassociate

pytestmark = [pytest.mark.smmc_aspect(2), pytest.mark.smmc_ntd("4-10"), pytest.mark.smmc_feature("daily_values")]

HEAD_END = "Head-end (bench)"
METER = "Meter"
AC_SOURCE = "AC source (bench)"
LOAD = "Load (bench)"
DAY_S = 86400


def next_local_midnight(moment: datetime, deviation_minutes: int) -> datetime:
    """The first local midnight after `moment` (aware UTC), local time being UTC minus the deviation (IC 8)."""
    shift = timedelta(minutes=deviation_minutes)
    local = moment - shift
    return local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1) + shift


def power(ac_source) -> float:
    return float(ac_source.measure().power_w)


def test_daily_values_close_each_day_with_the_energy_delivered(meter, ac_source, load, bench_clock, usecase):
    readings = meter.profile.readings
    limits, bits, currents = readings.limits, readings.status_bits, readings.parameters.load_currents_a
    days = int(limits.daily_days.value)
    if days < 2:
        pytest.fail("profile: readings.limits.daily_days must be at least 2 (the outage is on the second day)")
    objects = meter.profile.objects
    view = LoadProfile(meter.session, readings.objects.daily_values, objects.clock, readings.objects.profile_status,
                       objects.active_energy_import)
    settle = limits.capture_delay.value
    delivered = DeliveredEnergy()
    with usecase.step("0", HEAD_END, METER, "GET daily values capture_period and the clock's time zone; breaker "
                                            f"connected; load draws {currents[0]:g} A"):
        usecase.expect("daily values capture_period (s)", view.generic.capture_period(), DAY_S, article="4-10")
        deviation = meter.clock.time_zone()
        if meter.profile.has("disconnector"):
            dc = meter.disconnect_control
            restore_connected(dc, meter.profile.disconnector.control_modes, dc.control_mode())
        load.set_current(currents[0])
        load.on()
        volts = float(ac_source.measure().voltage_v)
        clock = MeterTime(meter, bench_clock)
        midnights = [next_local_midnight(clock.now() + timedelta(seconds=settle), deviation)]
        midnights += [midnights[0] + timedelta(days=d) for d in range(1, days + 1)]
    bench_at: dict[datetime, float] = {}
    register: dict[datetime, tuple[float, float]] = {}  # midnight -> (register value, bench instant read)

    def close_day(midnight: datetime) -> None:
        bench_at[midnight] = clock.sleep_until(midnight)
        delivered.sample(bench_at[midnight], power(ac_source))
        bench_clock.sleep(settle)
        value, _ = meter.active_energy_import.read()
        register[midnight] = (value, bench_clock.monotonic())
        delivered.sample(register[midnight][1], power(ac_source))

    outage_day = 2
    with usecase.step("1", HEAD_END, METER, f"at local midnight {midnights[0]:%Y-%m-%d %H:%M} UTC: GET active "
                                            f"energy import"):
        close_day(midnights[0])
    with usecase.step("2", AC_SOURCE, METER, f"{days} days: the load steps through {currents} A at each midday; "
                                             f"the supply is cut for {limits.outage_length.value:g} s at 06:00 "
                                             f"of day {outage_day}; GET active energy import after each midnight"):
        for day in range(1, days + 1):
            start = midnights[day - 1]
            if day == outage_day:
                clock.sleep_until(start + timedelta(hours=6))
                delivered.sample(bench_clock.monotonic(), power(ac_source))
                result = ac_source.dropout(limits.outage_length.value, bench_clock)
                delivered.cut(result.started_at, result.ended_at)
                try:
                    reassociate(meter.session, bench_clock, meter.profile.supply.limits.restart_time.value)
                except DlmsError as exc:
                    raise AssertionError(f"meter did not answer after the outage: {exc.diagnosis}") from None
                clock.measure()  # the meter's clock ran through the outage on its own
                delivered.sample(bench_clock.monotonic(), power(ac_source))
            clock.sleep_until(start + timedelta(hours=12))
            delivered.sample(bench_clock.monotonic(), power(ac_source))
            load.set_current(currents[day % len(currents)])
            delivered.sample(bench_clock.monotonic(), power(ac_source))
            close_day(midnights[day])
    with usecase.step("3", HEAD_END, METER, f"GET daily values buffer; GET it by range {midnights[0]:%Y-%m-%d %H:%M}"
                                            f"..{midnights[-1]:%Y-%m-%d %H:%M} (the MDM's export), and one second "
                                            "inside each edge"):
        everything = view.read()
        rows = [row for row in everything if midnights[0] <= row.time <= midnights[-1]]
        by_range = view.by_range(midnights[0], midnights[-1])
        narrowed = view.by_range(midnights[0] + timedelta(seconds=1), midnights[-1] - timedelta(seconds=1))
    # Selective access by range (Blue Book IC 7: from_value <= clock <= to_value): both edges belong to the window.
    usecase.expect("rows read by range (both edges included) = the buffer's rows of the window",
                   [(r.time.isoformat(), r.status, r.energy) for r in by_range],
                   [(r.time.isoformat(), r.status, r.energy) for r in rows], article="4-10")
    usecase.expect("rows read by range one second inside each edge",
                   [r.time.isoformat() for r in narrowed],
                   [r.time.isoformat() for r in rows if midnights[0] < r.time < midnights[-1]], article="4-10")

    times = [row.time for row in everything if midnights[0] - timedelta(hours=1) <= row.time <= midnights[-1]]
    usecase.expect("rows in the window off local midnight", [t.isoformat() for t in times if t not in midnights],
                   [], article="4-10")
    usecase.expect("local midnights with no row", [t.isoformat() for t in midnights if t not in times], [],
                   article="4-10")
    usecase.expect("midnights with more than one row", sorted({t.isoformat() for t in times if times.count(t) > 1}),
                   [], article="4-10")
    if [row.time for row in rows] != midnights:
        return  # the energy of a day needs its two rows; the expectations above already fail
    closing_outage_day = midnights[outage_day]
    wrong = [f"{row.time:%Y-%m-%d %H:%M} status {row.status & bits.all():#04x}" for row in rows[1:]
             if row.status & bits.all() != (bits.power_down if row.time == closing_outage_day else 0)]
    usecase.expect(f"rows whose declared status bits differ from what the bench caused (power down "
                   f"{bits.power_down:#04x} on the row closing day {outage_day} only)", wrong, [], article="4-10")

    accuracy, resolution = limits.energy_accuracy.value / 100, limits.energy_resolution.value
    least_wh = min(currents) * volts * DAY_S / 3600 / 2  # a breaker left open would make every delta agree at 0
    series_metered, series_delivered = [], []
    for day, (before, row) in enumerate(zip(rows, rows[1:]), start=1):
        source_wh = delivered.wh_between(bench_at[before.time], bench_at[row.time])
        metered = row.energy - before.energy
        series_metered.append((float(day), metered))
        series_delivered.append((float(day), source_wh))
        allowed = accuracy * source_wh + 2 * resolution
        usecase.measure(f"day {day}: energy the source delivered (Wh)", source_wh, low=least_wh, unit="Wh",
                        article=limits.energy_accuracy.article)
        usecase.measure(f"day {day}: daily delta {metered:g} - delivered {source_wh:.1f} Wh", metered - source_wh,
                        low=-allowed, high=allowed, unit="Wh", article=limits.energy_accuracy.article)
    usecase.record_series("daily energy, meter's daily values (x: day)", "Wh", series_metered, article="4-10")
    usecase.record_series("daily energy, delivered at the source (x: day)", "Wh", series_delivered)
    for row in rows:
        value, read_at = register[row.time]
        lag_wh = delivered.wh_between(bench_at[row.time], read_at)  # the register was read `settle` s later
        allowed = accuracy * lag_wh + 2 * resolution
        usecase.measure(f"row {row.time:%Y-%m-%d %H:%M}: energy - register at that midnight (read lag corrected, Wh)",
                        row.energy - (value - lag_wh), low=-allowed, high=allowed, unit="Wh",
                        article=limits.energy_accuracy.article)
    usecase.measure("window of daily values judged (h)", seconds_between(midnights[-1], midnights[0]) / 3600,
                    low=24.0 * days, high=24.0 * days, unit="h", article="4-10")


def daily_view(meter) -> LoadProfile:
    readings, objects = meter.profile.readings, meter.profile.objects
    return LoadProfile(meter.session, readings.objects.daily_values, objects.clock, readings.objects.profile_status,
                       objects.active_energy_import)


@pytest.mark.smmc_fills_logs  # a clock set a day for profile_entries + 2 days: two events each
def test_daily_values_keep_profile_entries_days_oldest_dropped_first(meter, bench_clock, usecase):
    """The daily values hold profile_entries days (at least the profile's daily_entries): the bench fills them by
    setting the clock just before one past local midnight after another (profile_entries + 2 days), then judges
    entries_in_use, the rows kept (the newest days, the oldest dropped first) and, as each day closed after a
    clock set, the clock-adjusted status bit on every row. The clock is put back on the reference time and
    checked; the rows stepped through lie in the past, before any window another test judges."""
    readings = meter.profile.readings
    limits, bits = readings.limits, readings.status_bits
    view = daily_view(meter)
    lead, settle = limits.clock_adjustment.value, limits.capture_delay.value
    with usecase.step("0", HEAD_END, METER, "GET daily values profile_entries; GET clock time zone"):
        capacity = view.generic.profile_entries()
        deviation = meter.clock.time_zone()
    usecase.measure("daily values profile_entries (days kept)", capacity, low=limits.daily_entries.value,
                    unit="days", article=limits.daily_entries.article)
    days = capacity + 2
    if days > limits.daily_wrap_days.value:
        pytest.skip(f"filling profile_entries {capacity} takes {days} days, more than the profile's daily_wrap_days "
                    f"{limits.daily_wrap_days.value:g}")
    first = next_local_midnight(bench_clock.now() - timedelta(days=days + 1), deviation)
    midnights = [first + timedelta(days=k) for k in range(days)]
    try:
        with usecase.step("1", HEAD_END, METER, f"{days} times, from {midnights[0]:%Y-%m-%d} on: SET clock "
                                                f"{lead:g} s before that day's local midnight; wait until "
                                                f"{settle:g} s after it"):
            for midnight in midnights:
                meter.clock.write(midnight - timedelta(seconds=lead), deviation)
                clock = MeterTime(meter, bench_clock)
                if seconds_between(midnight, clock.now()) < settle:
                    pytest.fail(f"the clock set to {lead:g} s before midnight left less than {settle:g} s "
                                f"(meter time {clock.now().isoformat()}): the bench cannot step the days")
                clock.sleep_until(midnight + timedelta(seconds=settle))
        with usecase.step("2", HEAD_END, METER, "GET daily values buffer, entries_in_use"):
            rows = view.read()
            in_use = view.generic.entries_in_use()
    finally:
        with usecase.step("3", HEAD_END, METER, "SET clock to the reference time (undo the steps); GET clock"):
            meter.clock.write(bench_clock.now(), deviation)
            offset = MeterTime(meter, bench_clock).offset_s
    usecase.measure("|clock - reference| after the undo", abs(offset), limit=meter.limits.clock_sync_tolerance)
    usecase.expect("entries_in_use once full", in_use, capacity, article="4-10")
    usecase.expect("entries_in_use = rows in the buffer", in_use, len(rows), article="4-10")
    usecase.expect("rows kept (the newest days, the oldest dropped first)", [r.time.isoformat() for r in rows],
                   [t.isoformat() for t in midnights[-capacity:]], article="4-10")
    wrong = [f"{r.time:%Y-%m-%d %H:%M} status {r.status & bits.all():#04x}" for r in rows
             if r.status & bits.all() != bits.clock_adjusted]
    usecase.expect(f"rows whose declared status bits are not clock adjusted ({bits.clock_adjusted:#04x}) alone "
                   "(each closes a day in which the bench set the clock)", wrong, [], article="4-10")


def test_daily_values_follow_a_time_zone_write(meter, bench_clock, usecase):
    """The daily values close at the meter's local midnight: after a write of the clock's time zone, at the new
    local midnight and not at the old one. The bench sets the clock shortly before a past day's midnights (rows
    of the past stay out of the windows other tests judge) and judges the rows the meter adds meanwhile. Time
    zone and clock are put back and checked."""
    limits = meter.profile.readings.limits
    lead, settle = limits.clock_adjustment.value, limits.capture_delay.value
    step = int(limits.daily_time_zone_step.value)
    view = daily_view(meter)
    with usecase.step("0", HEAD_END, METER, "GET clock time zone"):
        original = meter.clock.time_zone()
    wanted = original + step if original + step <= 720 else original - step
    past = bench_clock.now() - timedelta(days=2)
    new_midnight = next_local_midnight(past + timedelta(minutes=step), wanted)
    old_midnight = new_midnight + timedelta(minutes=original - wanted)
    earlier, later = min(new_midnight, old_midnight), max(new_midnight, old_midnight)
    try:
        with usecase.step("1", HEAD_END, METER, f"GET daily values buffer; SET clock time zone {wanted} (was "
                                                f"{original}); GET it; SET clock {lead:g} s before "
                                                f"{earlier:%Y-%m-%d %H:%M} UTC"):
            held = view.read()
            meter.clock.set_time_zone(wanted)
            usecase.expect("time zone read back", meter.clock.time_zone(), wanted, article="3-11")
            meter.clock.write(earlier - timedelta(seconds=lead), wanted)
            clock = MeterTime(meter, bench_clock)
        with usecase.step("2", HEAD_END, METER, f"wait until {settle:g} s after {later:%H:%M} UTC; GET daily values "
                                                "buffer"):
            clock.sleep_until(later + timedelta(seconds=settle))
            rows = view.read()
    finally:
        with usecase.step("3", HEAD_END, METER, f"SET clock time zone {original}; SET clock to the reference time; "
                                                "GET both"):
            meter.clock.set_time_zone(original)
            meter.clock.write(bench_clock.now(), original)
            restored, offset = meter.clock.time_zone(), MeterTime(meter, bench_clock).offset_s
    usecase.expect("time zone put back", restored, original, article="3-11")
    usecase.measure("|clock - reference| after the undo", abs(offset), limit=meter.limits.clock_sync_tolerance)
    # The rows added meanwhile: the buffer is the rows held before (a full one less its oldest) and then the new
    # ones; rows of equal content (a day stepped through twice) are told apart by position, not content.
    before = [(r.time, r.status, r.energy) for r in held]
    after = [(r.time, r.status, r.energy) for r in rows]
    kept = next(k for k in range(min(len(before), len(after)), -1, -1) if after[:k] == before[len(before) - k:])
    added = rows[kept:]
    usecase.expect(f"rows added between the clock set and {settle:g} s after the later of the old "
                   f"({old_midnight:%H:%M} UTC) and the new ({new_midnight:%H:%M} UTC) local midnight",
                   [r.time.isoformat() for r in added], [new_midnight.isoformat()], article="4-10")
