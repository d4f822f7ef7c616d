"""Aspect 2 (arts 3-3, 4-10): bulk meter readings from the load profile.

Use case (Bulk Meter Readings): the head-end reads the load profile every few
hours (by range, a 4-hour window) and exports a day (24 hours) to the MDM. The
bench drives a known load at its own source through N hours of meter time,
with an outage and two clock adjustments in it (one forward, one back), and judges the intervals against
what it delivered: rows on the period boundaries, none missing or duplicated,
each interval's energy against the source's power x bench time, the status
bits where (and only where) the bench caused them; then reads by range and by
entry and checks they return exactly the buffer's rows, edges included.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from smmc_bench.cosem.common import seconds_between
from smmc_bench.cosem.disconnect import restore_connected
from smmc_bench.cosem.profile_generic import (
    DeliveredEnergy,
    Interval,
    MeterTime,
    boundary_after,
    load_profile_at_default_period,
)
from smmc_bench.drivers.dlms.errors import DlmsError
from smmc_bench.procedures import reassociate
from smmc_bench.safety.restore import restore_all

pytestmark = [pytest.mark.smmc_aspect(2), pytest.mark.smmc_ntd("4-10"), pytest.mark.smmc_feature("load_profile")]

HEAD_END = "Head-end (bench)"
METER = "Meter"
AC_SOURCE = "AC source (bench)"
LOAD = "Load (bench)"


@pytest.fixture
def load_profile(meter, bench_clock):
    with load_profile_at_default_period(meter, bench_clock) as view:
        yield view


@dataclass
class Scenario:
    first: datetime  # first boundary of the window (meter time)
    last: datetime
    bench_at: dict[datetime, float] = field(default_factory=dict)  # boundary -> bench monotonic instant
    power_down_row: datetime | None = None
    clock_adjusted_rows: list[datetime] = field(default_factory=list)  # one per shift: forward, then back
    register: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # value/bench s at the start and end
    clock_shifted_s: float = 0.0  # the bench's net clock adjustment (the back shift undoes the forward one)
    volts: float = 0.0  # the source's voltage at the start
    unit: str = "Wh"


def power(ac_source) -> float:
    return float(ac_source.measure().power_w)


def run_day(meter, load_profile, ac_source, load, bench_clock, usecase, delivered: DeliveredEnergy,
            scenario: Scenario) -> Scenario:
    """Drive the known load through the scenario; sample the source around every change the bench makes."""
    readings = meter.profile.readings
    limits, currents = readings.limits, readings.parameters.load_currents_a
    period = int(limits.capture_period.value)
    intervals = int(limits.scenario_duration.value // period)
    step_intervals = max(1, int(limits.load_step.value // period))
    # A clock moved forward and one moved back both make the next row "clock adjusted"; the back shift
    # also puts the meter's clock where it was.
    outage_at, adjust_at = max(2, intervals // 3), max(3, 2 * intervals // 3)
    adjust_back_at = max(adjust_at + 1, 5 * intervals // 6)
    shifts = {adjust_at: limits.clock_adjustment.value, adjust_back_at: -limits.clock_adjustment.value}
    settle = limits.capture_delay.value
    clock = MeterTime(meter, bench_clock)
    with usecase.step("0", LOAD, METER, f"precondition: capture period {period} s; breaker connected; load draws "
                                        f"{currents[0]:g} A"):
        if meter.profile.has("disconnector"):
            dc = meter.disconnect_control
            restore_connected(dc, meter.profile.disconnector.control_modes, dc.control_mode())
        load.set_current(currents[0])
        load.on()
        scenario.volts = float(ac_source.measure().voltage_v)
        first = boundary_after(clock.now() + timedelta(seconds=settle), period)
    scenario.first, scenario.last = first, first + timedelta(seconds=period * intervals)
    with usecase.step("1", HEAD_END, METER, f"at {first:%H:%M} (meter time): GET active energy import"):
        scenario.bench_at[first] = clock.sleep_until(first)
        delivered.sample(scenario.bench_at[first], power(ac_source))
        bench_clock.sleep(settle)
        start_value, scenario.unit = meter.active_energy_import.read()
        start_at = bench_clock.monotonic()
    with usecase.step("2", AC_SOURCE, METER, f"{intervals} intervals of {period} s: load stepped through "
                                             f"{currents} A every {step_intervals} interval(s); an outage in "
                                             f"interval {outage_at}, the clock shifted "
                                             f"{limits.clock_adjustment.value:+g} s in interval {adjust_at} and "
                                             f"{-limits.clock_adjustment.value:+g} s in interval {adjust_back_at}"):
        for k in range(1, intervals + 1):
            begin = first + timedelta(seconds=period * (k - 1))
            if k == outage_at or k in shifts:
                clock.sleep_until(begin + timedelta(seconds=period / 4))
                delivered.sample(bench_clock.monotonic(), power(ac_source))
                if k == outage_at:
                    cut_supply(meter, ac_source, bench_clock, limits.outage_length.value, delivered)
                    clock.measure()  # the meter's clock ran through the outage on its own
                    scenario.power_down_row = begin + timedelta(seconds=period)
                else:
                    scenario.clock_shifted_s += shifts[k]
                    adjust_clock(meter, clock, shifts[k], usecase)
                    scenario.clock_adjusted_rows.append(begin + timedelta(seconds=period))
                delivered.sample(bench_clock.monotonic(), power(ac_source))
            if k > 1 and (k - 1) % step_intervals == 0:
                clock.sleep_until(begin + timedelta(seconds=period / 2))
                delivered.sample(bench_clock.monotonic(), power(ac_source))
                load.set_current(currents[(k - 1) // step_intervals % len(currents)])
                delivered.sample(bench_clock.monotonic(), power(ac_source))
            end = begin + timedelta(seconds=period)
            scenario.bench_at[end] = clock.sleep_until(end)
            delivered.sample(scenario.bench_at[end], power(ac_source))
    with usecase.step("3", HEAD_END, METER, f"at {scenario.last:%H:%M} (meter time): GET active energy import"):
        bench_clock.sleep(settle)
        end_value, _ = meter.active_energy_import.read()
        end_at = bench_clock.monotonic()
        delivered.sample(end_at, power(ac_source))
    scenario.register = (start_value, start_at, end_value, end_at)
    return scenario


def cut_supply(meter, ac_source, bench_clock, seconds: float, delivered: DeliveredEnergy) -> None:
    result = ac_source.dropout(seconds, bench_clock)
    delivered.cut(result.started_at, result.ended_at)
    try:
        reassociate(meter.session, bench_clock, meter.profile.supply.limits.restart_time.value)
    except DlmsError as exc:  # a meter that does not come back is judged here, not by the bench's errors
        raise AssertionError(f"meter did not answer within {meter.profile.supply.limits.restart_time.value:g} s "
                             f"of the supply's return: {exc.diagnosis}") from None


def adjust_clock(meter, clock: MeterTime, seconds: float, usecase) -> None:
    before = clock.measure()
    if meter.profile.has("clock_shift_time"):
        meter.clock.shift_time(int(seconds))
    else:
        meter.clock.write(clock.now() + timedelta(seconds=seconds), meter.clock.time_zone())
    shifted = clock.measure() - before
    usecase.measure(f"|clock shift observed - asked ({seconds:g} s)|", abs(shifted - seconds),
                    limit=meter.limits.clock_shift_tolerance)


def rows_in(intervals: list[Interval], first: datetime, last: datetime) -> list[Interval]:
    return [row for row in intervals if first <= row.time <= last]


def test_load_profile_day_matches_the_energy_delivered(meter, load_profile, ac_source, load, bench_clock, usecase):
    readings = meter.profile.readings
    limits, bits = readings.limits, readings.status_bits
    period = int(limits.capture_period.value)
    delivered = DeliveredEnergy()
    with usecase.step("0", HEAD_END, METER, "GET load profile capture_period"):
        usecase.expect("capture_period (s)", load_profile.generic.capture_period(), period, article="4-10")
    scenario = Scenario(datetime.min, datetime.min)
    try:
        scenario = run_day(meter, load_profile, ac_source, load, bench_clock, usecase, delivered, scenario)
        with usecase.step("4", HEAD_END, METER, "GET load profile buffer"):
            rows = rows_in(load_profile.read(), scenario.first, scenario.last)
    finally:
        if scenario.clock_shifted_s:
            undo = scenario.clock_shifted_s
            with usecase.step("4.1", HEAD_END, METER, f"undo the clock shift left over ({-undo:g} s); GET clock"):
                restore_all(f"meter {meter.id} clock", [
                    ("clock shifted back", lambda: adjust_clock(meter, MeterTime(meter, bench_clock), -undo, usecase))])
    times = [row.time for row in rows]
    expected = [scenario.first + timedelta(seconds=period * k) for k in range(len(scenario.bench_at))]
    usecase.expect("rows off the period boundaries", [t.isoformat() for t in times if t not in expected], [],
                   article="4-10")
    usecase.expect("boundaries with no row", [t.isoformat() for t in expected if t not in times], [],
                   article="4-10")
    usecase.expect("boundaries with more than one row",
                   sorted({t.isoformat() for t in times if times.count(t) > 1}), [], article="4-10")
    usecase.expect("rows in time order", times == sorted(times), True, article="4-10")

    # Status: the row closing the outage's interval says power down, each one closing a clock shift's
    # interval (forward and back) says clock adjusted; no row of the test's own intervals carries a declared
    # bit otherwise.
    wanted = {scenario.power_down_row: bits.power_down,
              **{row: bits.clock_adjusted for row in scenario.clock_adjusted_rows}}
    wrong = [f"{row.time:%d %H:%M} status {row.status & bits.all():#04x}, expected {wanted.get(row.time, 0):#04x}"
             for row in rows[1:] if row.status & bits.all() != wanted.get(row.time, 0)]
    usecase.expect("rows whose declared status bits differ from what the bench caused", wrong, [], article="4-10")

    # Energy: every interval against what the source delivered over the same meter-time interval.
    accuracy, resolution = limits.energy_accuracy.value / 100, limits.energy_resolution.value
    worst = (0.0, 0.0, 0.0, rows[0].time)
    metered_series, delivered_series = [], []
    for before, row in zip(rows, rows[1:]):
        source_wh = delivered.wh_between(scenario.bench_at[before.time], scenario.bench_at[row.time])
        hours = seconds_between(before.time, rows[0].time) / 3600
        metered_series.append((hours, row.energy - before.energy))
        delivered_series.append((hours, source_wh))
        deviation = (row.energy - before.energy) - source_wh
        allowed = accuracy * source_wh + 2 * resolution
        if abs(deviation) / allowed > abs(worst[0]) / max(worst[1], 1e-9):
            worst = (deviation, allowed, source_wh, row.time)
    usecase.record_series("interval energy, meter's load profile (x: hours)", "Wh", metered_series, article="4-10")
    usecase.record_series("interval energy, delivered at the source (x: hours)", "Wh", delivered_series)
    deviation, allowed, source_wh, when = worst
    usecase.measure(f"worst interval: ending {when:%d %H:%M}, meter delta - {source_wh:.1f} Wh delivered (Wh)",
                    deviation, low=-allowed, high=allowed, unit="Wh", article=limits.energy_accuracy.article)
    day_wh = delivered.wh_between(scenario.bench_at[scenario.first], scenario.bench_at[scenario.last])
    # A breaker that stayed open would make every comparison hold at zero: the load must really have drawn.
    least_wh = min(readings.parameters.load_currents_a) * scenario.volts * limits.scenario_duration.value / 3600 / 2
    usecase.measure("energy the source delivered over the window (Wh)", day_wh, low=least_wh, unit="Wh",
                    article=limits.energy_accuracy.article)
    interval_sum = rows[-1].energy - rows[0].energy
    allowed = accuracy * day_wh + 2 * resolution
    usecase.measure(f"sum of interval deltas {interval_sum:g} - delivered {day_wh:.1f} Wh", interval_sum - day_wh,
                    low=-allowed, high=allowed, unit="Wh", article=limits.energy_accuracy.article)
    start_value, start_at, end_value, end_at = scenario.register
    usecase.expect("energy register unit", scenario.unit, "Wh", article="3-3")
    register_wh = delivered.wh_between(start_at, end_at)
    usecase.measure(f"register delta {end_value - start_value:g} - delivered {register_wh:.1f} Wh",
                    end_value - start_value - register_wh, low=-allowed, high=allowed, unit="Wh",
                    article=limits.energy_accuracy.article)
    # The rows against the register itself: the register read a little after the first and last boundary.
    read_lag_wh = (delivered.wh_between(scenario.bench_at[scenario.last], end_at)
                   - delivered.wh_between(scenario.bench_at[scenario.first], start_at))
    usecase.measure("sum of interval deltas - register delta (read lags corrected, Wh)",
                    interval_sum - (end_value - start_value - read_lag_wh),
                    low=-(accuracy * day_wh + 4 * resolution), high=accuracy * day_wh + 4 * resolution,
                    unit="Wh", article=limits.energy_accuracy.article)


def ensure_history(meter, load_profile, bench_clock, usecase, hours: float) -> list[Interval]:
    """Wait until the buffer holds `hours` plus two periods of contiguous rows; return the buffer."""
    period = int(meter.profile.readings.limits.capture_period.value)
    needed = int(hours * 3600 // period) + 3
    capacity = load_profile.generic.profile_entries()
    if capacity < needed:
        pytest.skip(f"profile_entries {capacity} holds less than {hours:g} h of {period} s rows")
    rows = load_profile.read()
    missing = needed - len(rows)
    if missing > 0:
        with usecase.step("0.1", HEAD_END, METER, f"wait {missing} periods for {hours:g} h of history"):
            bench_clock.sleep(missing * period + meter.profile.readings.limits.capture_delay.value)
            rows = load_profile.read()
    return rows


def test_reads_by_range_return_exactly_the_window(meter, load_profile, bench_clock, usecase):
    windows = meter.profile.readings.parameters.range_windows_h
    with usecase.step("0", HEAD_END, METER, f"GET the whole buffer (at least {max(windows)} h of rows)"):
        full = ensure_history(meter, load_profile, bench_clock, usecase, max(windows))
    end = full[-2].time  # the newest row may still be joined by another while the bench reads
    for hours in windows:
        start = end - timedelta(hours=hours)
        with usecase.step(f"{hours}h", HEAD_END, METER, f"GET buffer by range {start:%d %H:%M}..{end:%d %H:%M}"):
            inside = load_profile.by_range(start, end)
            narrowed = load_profile.by_range(start + timedelta(seconds=1), end - timedelta(seconds=1))
        expected = [row for row in full if start <= row.time <= end]
        usecase.expect(f"{hours} h range: rows (edges {start:%H:%M} and {end:%H:%M} included)",
                       [(r.time.isoformat(), r.status, r.energy) for r in inside],
                       [(r.time.isoformat(), r.status, r.energy) for r in expected], article="3-3")
        usecase.expect(f"{hours} h range one second inside each edge: rows",
                       [r.time.isoformat() for r in narrowed],
                       [r.time.isoformat() for r in expected if start < r.time < end], article="3-3")


def test_reads_by_entry_return_exactly_the_entries(meter, load_profile, bench_clock, usecase):
    with usecase.step("0", HEAD_END, METER, "GET the whole buffer, entries_in_use, profile_entries"):
        full = ensure_history(meter, load_profile, bench_clock, usecase, 2)
        in_use, capacity = load_profile.generic.entries_in_use(), load_profile.generic.profile_entries()
    usecase.expect("entries_in_use = rows in the buffer", in_use, len(full), article="4-10")
    usecase.expect("entries_in_use <= profile_entries", in_use <= capacity, True, article="4-10")
    n = len(full)
    # to_entry past the newest (Blue Book: the rows up to the newest), and the usual windows.
    for first, last, expected in ((1, 1, full[:1]), (2, 5, full[1:5]), (n - 3, 0, full[n - 4:]), (n, n, full[-1:]),
                                  (n - 1, n + 5, full[n - 2:])):
        with usecase.step(f"{first}-{last}", HEAD_END, METER, f"GET buffer by entry {first}..{last}"):
            got = load_profile.by_entry(first, last)
        usecase.expect(f"entries {first}..{last or 'newest'}",
                       [(r.time.isoformat(), r.status, r.energy) for r in got],
                       [(r.time.isoformat(), r.status, r.energy) for r in expected], article="3-3")
    column = load_profile.layout()["energy"] + 1
    with usecase.step("col", HEAD_END, METER, f"GET buffer by entry 2..3, column {column} only (energy)"):
        energy_only = load_profile.generic.by_entry(2, 3, column, column)
    usecase.expect("entries 2..3, energy column only",
                   [[value * load_profile.scale() for value in row] for row in energy_only],
                   [[r.energy] for r in full[1:3]], article="3-3")
    status = load_profile.layout()["status"] + 1
    if status < column:  # a column in the middle: from and to both matter
        with usecase.step("col2", HEAD_END, METER, f"GET buffer by entry 2..3, column {status} only (status)"):
            status_only = load_profile.generic.by_entry(2, 3, status, status)
        usecase.expect("entries 2..3, status column only", [list(row) for row in status_only],
                       [[r.status] for r in full[1:3]], article="3-3")


@pytest.mark.smmc_feature("load_profile_entries_writable")
def test_buffer_wraps_at_profile_entries(meter, load_profile, bench_clock, usecase):
    limits = meter.profile.readings.limits
    period, small = int(limits.capture_period.value), int(limits.wrapped_profile_entries.value)
    view = load_profile.generic
    original = view.profile_entries()
    clock = MeterTime(meter, bench_clock)
    try:
        with usecase.step("1", HEAD_END, METER, f"SET profile_entries = {small}; GET it back"):
            view.set_profile_entries(small)
            usecase.expect("profile_entries read back", view.profile_entries(), small, article="4-10")
        last = boundary_after(clock.now(), period) + timedelta(seconds=period * (small + 1))
        with usecase.step("2", HEAD_END, METER, f"wait until {last:%H:%M} ({small + 2} boundaries); GET buffer, "
                                                "entries_in_use"):
            clock.sleep_until(last + timedelta(seconds=limits.capture_delay.value))
            rows = load_profile.read()
            in_use = view.entries_in_use()
        expected = [last - timedelta(seconds=period * k) for k in range(small - 1, -1, -1)]
        usecase.expect("entries_in_use once full", in_use, small, article="4-10")
        usecase.expect("rows kept (the newest, oldest dropped first)", [r.time.isoformat() for r in rows],
                       [t.isoformat() for t in expected], article="4-10")
    finally:
        restore_all(f"meter {meter.id} profile_entries", [("profile_entries", lambda: view.set_profile_entries(original))])
    with usecase.step("3", HEAD_END, METER, f"SET profile_entries = {original} (put back); GET it"):
        usecase.expect("profile_entries put back", view.profile_entries(), original, article="4-10")
