"""Aspect 8 (arts 4-17-6, 4-10-8): demand management and tariff notification.

Use case (Time-of-use pricing / tariff programming): the utility sends the
meter a new tariff calendar; the head-end writes it as the passive calendar of
the activity calendar (IC 20) with its activation time and special days (IC
11); at that time the meter makes it active, logs event 9, and from then books
the energy it meters to the tariff register (1-0:1.8.t) the calendar names for
each hour. The bench checks the activation on both sides of its time, and over
simulated days with a known load compares each tariff register with the
energy the AC source delivered in that tariff's hours.
"""
from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta, timezone

import pytest
from smmc_bench.cosem.common import seconds_between
from smmc_bench.cosem.tariffs import TouPlan
from smmc_bench.drivers.dlms import CosemDateTime
from smmc_bench.plugin.tariffs import SPECIAL_INDEX, tou  # noqa: F401 (fixture)

pytestmark = [pytest.mark.smmc_aspect(8), pytest.mark.smmc_ntd("4-17-6"), pytest.mark.smmc_feature("tou_calendar")]

HEAD_END = "Head-end (bench)"
METER = "Meter"
AC_SOURCE = "AC source (bench)"
def synchronise(meter, bench_clock) -> int:
    """Set the meter clock to the reference time (the tariff hours are judged against it); its deviation."""
    deviation = meter.clock.time_zone()
    meter.clock.write(bench_clock.now(), deviation)
    return deviation


def local(utc: datetime, deviation: int) -> datetime:
    return (utc - timedelta(minutes=deviation)).replace(tzinfo=None)


def utc_of(local_time: datetime, deviation: int) -> datetime:
    return (local_time + timedelta(minutes=deviation)).replace(tzinfo=timezone.utc)


def sleep_until(bench_clock, when: datetime) -> None:
    wait = (when - bench_clock.now()).total_seconds()
    if wait > 0:
        bench_clock.sleep(wait)


def plan(meter, name: bytes, days: dict, week=(1, 1, 1, 1, 1, 2, 2)) -> TouPlan:
    return TouPlan(name, days, week, meter.profile.tariffs.objects.tariff_script_table)


def test_passive_calendar_activates_at_its_time(meter, tou, bench_clock, usecase):
    section = tou.section
    tolerance = section.limits.switch_tolerance
    events = meter.standard_event_log
    # Precondition: a flat calendar on tariff 1 is active, so nothing but the activation moves the tariff.
    baseline = plan(meter, b"A" + secrets.token_hex(3).encode(), {1: [(time(0), 1)], 2: [(time(0), 1)]})
    new = plan(meter, b"B" + secrets.token_hex(3).encode(), {1: [(time(0), 2)], 2: [(time(0), 2)]})
    with usecase.step("0", HEAD_END, METER, "precondition: SET clock to the reference time; SET passive flat "
                                            "tariff-1 calendar; ACTION activate_passive_calendar"):
        deviation = synchronise(meter, bench_clock)
        tou.calendar.write_passive(baseline)
        tou.calendar.activate_passive_calendar()
        old_name = tou.calendar.active_name()
        indicator_before = tou.indicator.read()
    usecase.expect("baseline calendar active", old_name, baseline.name, article="4-17-6")
    usecase.expect("tariff indicator on the baseline calendar", indicator_before, 1, article="4-17-6")
    due = (bench_clock.now() + timedelta(seconds=section.parameters.activation_delay_s)).replace(microsecond=0)
    # The head-end names the activation instant with a deviation other than the meter's (UTC, or one hour
    # off when the meter keeps UTC): a date-time with its deviation given is one instant (Blue Book 4.1.6.1),
    # whatever time zone the meter itself keeps.
    written_deviation = 0 if deviation not in (0, -0x8000) else -60
    with usecase.step("1", HEAD_END, METER, "SET passive season/week/day tables, activate_passive_calendar_time "
                                            f"(deviation {written_deviation} min)"):
        before = events.entries()
        tou.calendar.write_passive(new)
        tou.calendar.set_activation_time(CosemDateTime.from_datetime(due, written_deviation))
        usecase.expect("passive calendar name read back", tou.calendar.passive_name(), new.name, article="4-17-6")
    with usecase.step("2", HEAD_END, METER, "before the due time: GET active calendar name, tariff indicator"):
        sleep_until(bench_clock, due - timedelta(seconds=2 * tolerance.value))
        early_name, early_indicator = tou.calendar.active_name(), tou.indicator.read()
        early_events = [e for e in events.new_since(before) if e.code == section.events.tou_activated]
    usecase.expect("active calendar before its time", early_name, old_name, article="4-17-6")
    usecase.expect("tariff indicator before its time", early_indicator, indicator_before, article="4-17-6")
    usecase.expect("event 9 before its time", len(early_events), 0, article="4-17-6")
    with usecase.step("3", HEAD_END, METER, "after the due time: GET active calendar, indicator, event log"):
        sleep_until(bench_clock, due + timedelta(seconds=tolerance.value))
        late_name, late_indicator = tou.calendar.active_name(), tou.indicator.read()
        added = [e for e in events.new_since(before) if e.code == section.events.tou_activated]
    usecase.expect("active calendar after its time", late_name, new.name, article="4-17-6")
    usecase.expect("tariff indicator after its time", late_indicator, 2, article="4-17-6")
    usecase.expect("event 9 (TOU activated) logged once", len(added), 1, article="4-17-6")
    usecase.measure("event 9 stamp vs the activation time", abs(seconds_between(due, added[0].time)),
                    limit=tolerance)


def test_energy_goes_to_the_tariff_of_its_hours(meter, tou, ac_source, load, bench_clock, usecase):
    section = tou.section
    limits, days = section.limits, section.parameters.scenario_days
    tolerance = limits.switch_tolerance.value
    drawn = meter.profile.supply.limits.test_load_current.value
    with usecase.step("0", HEAD_END, METER, f"precondition: SET clock to the reference time; load draws {drawn:g} A"):
        deviation = synchronise(meter, bench_clock)
        # A known load of the test's own: with nothing drawn every register stays put and proves nothing.
        load.set_current(drawn)
        load.on()
    now_local = local(bench_clock.now(), deviation)
    start = datetime.combine(now_local.date(), time(now_local.hour)) + timedelta(hours=1)
    # A working day in the scenario is made a special day (rest-day profile): it must be honoured.
    special = next(d for d in (start.date() + timedelta(days=i) for i in range(1, 8)) if d.weekday() < 5)
    scenario = plan(meter, b"E" + secrets.token_hex(3).encode(), {
        1: [(time(0), 1), (time(7), 2), (time(17, 30), 3), (time(21), 1)],
        2: [(time(0), 4)],
    })
    scenario = TouPlan(scenario.name, scenario.days, scenario.week, scenario.script_table, {special: 2})
    with usecase.step("1", HEAD_END, METER, "SET passive tables; ACTION special_days.insert; "
                                            "ACTION activate_passive_calendar"):
        tou.calendar.write_passive(scenario)
        tou.special_days.insert(SPECIAL_INDEX, special, 2)
        tou.calendar.activate_passive_calendar()
        usecase.expect("active calendar", tou.calendar.active_name(), scenario.name, article="4-17-6")
    total_before, _ = meter.active_energy_import.read()
    registers_before = tou.energies()
    delivered_total = 0.0
    lowest_power = float("inf")
    segments = scenario.segments(start, start + timedelta(days=days))
    margin = section.parameters.switch_margin_s
    previous = None  # (reads, power, bench time, tariff, switch in UTC) at the end of the segment before
    with usecase.step("2", AC_SOURCE, METER, f"{days} simulated days, {len(segments)} tariff periods: "
                                             "GET tariff registers and tariff indicator inside each period "
                                             f"(the last {margin:g} s before its end), MEAS power"):
        sleep_until(bench_clock, utc_of(start, deviation))
        for begin, end, tariff in segments:
            what = f"{begin:%a %d %H:%M}-{end:%a %d %H:%M} (tariff {tariff}{', special day' if begin.date() == special else ''})"
            sleep_until(bench_clock, utc_of(begin, deviation) + timedelta(seconds=tolerance))
            at_begin, power_begin, t_begin = tou.energies(), ac_source.measure().power_w, bench_clock.now()
            indicator_begin = tou.indicator.read()
            if previous is not None:
                # Across the switch, with no read in between: the energy before it is the old tariff's.
                at_prev, power_prev, t_prev, old, switch = previous
                power = (power_prev + power_begin) / 2
                share = {old: power * seconds_between(switch, t_prev) / 3600, tariff: 0.0}
                share[tariff] += power * seconds_between(t_begin, switch) / 3600
                across = power * seconds_between(t_begin, t_prev) / 3600
                allowed = (power * tolerance / 3600 + across * limits.tariff_energy_tolerance.value / 100
                           + limits.tariff_energy_floor.value)
                for index, (a, b) in enumerate(zip(at_prev, at_begin), start=1):
                    usecase.measure(f"switch {old}->{tariff} at {begin:%a %d %H:%M}: tariff {index} register vs "
                                    "energy delivered on its side of the switch (Wh)",
                                    abs((b - a) - share.get(index, 0.0)), high=allowed, unit="Wh", article="4-10-8")
            sleep_until(bench_clock, utc_of(end, deviation) - timedelta(seconds=max(margin, tolerance)))
            at_end, power_end, t_end = tou.energies(), ac_source.measure().power_w, bench_clock.now()
            indicator_end = tou.indicator.read()
            previous = (at_end, power_end, t_end, tariff, utc_of(end, deviation))
            lowest_power = min(lowest_power, power_begin, power_end)
            delivered = (power_begin + power_end) / 2 * seconds_between(t_end, t_begin) / 3600
            delivered_total += delivered
            usecase.expect(f"{what}: tariff indicator (start, end)", (indicator_begin, indicator_end),
                           (tariff, tariff), article="4-17-6")
            allowed = delivered * limits.tariff_energy_tolerance.value / 100 + limits.tariff_energy_floor.value
            for index, (a, b) in enumerate(zip(at_begin, at_end), start=1):
                expected = delivered if index == tariff else 0.0
                usecase.measure(f"{what}: tariff {index} register vs energy delivered (Wh)", abs((b - a) - expected),
                                high=allowed, unit="Wh", article="4-10-8")
    usecase.measure("lowest power at the source during the scenario", lowest_power,
                    low=drawn * ac_source.nominal_voltage / 2, unit="W", article="4-10-8")
    with usecase.step("3", HEAD_END, METER, "GET total import and tariff registers"):
        total_after, _ = meter.active_energy_import.read()
        registers_after = tou.energies()
    usecase.measure("sum of tariff register deltas vs total import delta (Wh)",
                    abs(sum(registers_after) - sum(registers_before) - (total_after - total_before)),
                    high=len(registers_after), unit="Wh", article="4-10-8")
