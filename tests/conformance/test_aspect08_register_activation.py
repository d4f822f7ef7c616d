"""Aspect 8 (arts 4-17-6, 4-10-8): register activation (IC 6) names the tariff register being booked.

The meter switches its tariff registers by the active mask of its register activation object.
The bench activates a calendar of its own, then through a simulated day with a known load, in
each tariff period, judges the active mask against the bench's own model of the calendar and
against the registers that really grew: the register the mask activates grows by what the source
delivered, no other does. Before that, the object's structure: every tariff register assigned,
each tariff's mask activating exactly its one register, no mask name listed twice.
"""
from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta

import pytest
from smmc_bench.cosem.register_activation import RegisterActivation
from smmc_bench.cosem.tariffs import TouPlan
from smmc_bench.drivers.dlms.errors import MalformedReply
from smmc_bench.plugin.tariffs import tou  # noqa: F401 (fixture)

pytestmark = [pytest.mark.smmc_aspect(8), pytest.mark.smmc_ntd("4-17-6"), pytest.mark.smmc_feature("tou_calendar"),
              pytest.mark.smmc_feature("register_activation")]

HEAD_END = "Head-end (bench)"
METER = "Meter"
AC_SOURCE = "AC source (bench)"


def local(utc: datetime, deviation: int) -> datetime:
    return (utc - timedelta(minutes=deviation)).replace(tzinfo=None)


def utc_of(local_time: datetime, deviation: int) -> datetime:
    from datetime import timezone
    return (local_time + timedelta(minutes=deviation)).replace(tzinfo=timezone.utc)


def sleep_until(bench_clock, when: datetime) -> None:
    wait = (when - bench_clock.now()).total_seconds()
    if wait > 0:
        bench_clock.sleep(wait)


def test_active_mask_names_the_register_being_booked(meter, tou, ac_source, load, bench_clock, usecase):
    section = tou.section
    limits = section.limits
    tolerance = limits.switch_tolerance.value
    tariff_registers = list(section.objects.tariff_registers)
    activation = RegisterActivation(meter.session, section.objects.register_activation)
    drawn = meter.profile.supply.limits.test_load_current.value
    with usecase.step("0", HEAD_END, METER, "GET register_assignment, mask_list"):
        assigned, entries = activation.register_assignment(), activation.mask_entries()
    masks = dict(entries)
    # active_mask names one mask of mask_list: a name listed twice leaves the head-end guessing which applies.
    names = [name for name, _ in entries]
    usecase.expect("mask names listed more than once in mask_list",
                   sorted({f"{name!r}: {[idx for n, idx in entries if n == name]}" for name in names
                           if names.count(name) > 1}), [], article="4-17-6")
    usecase.expect("tariff registers missing from register_assignment",
                   [r for r in tariff_registers if r not in assigned], [], article="4-17-6")
    activated = {name: [assigned[i - 1] if 0 < i <= len(assigned) else f"index {i}" for i in indexes]
                 for name, indexes in masks.items()}
    usecase.expect("tariff registers no single-register mask activates",
                   [r for r in tariff_registers if [r] not in activated.values()], [], article="4-17-6")
    with usecase.step("1", HEAD_END, METER, f"SET clock to the reference time; SET passive tables; ACTION "
                                            f"activate_passive_calendar; load draws {drawn:g} A"):
        deviation = meter.clock.time_zone()
        meter.clock.write(bench_clock.now(), deviation)
        plan = TouPlan(b"R" + secrets.token_hex(3).encode(),
                       {1: [(time(0), 1), (time(6), 2), (time(12), 3), (time(18), 4)]}, (1,) * 7,
                       section.objects.tariff_script_table)
        tou.calendar.write_passive(plan)
        tou.calendar.activate_passive_calendar()
        load.set_current(drawn)
        load.on()
    now_local = local(bench_clock.now(), deviation)
    start = datetime.combine(now_local.date(), time(now_local.hour)) + timedelta(hours=1)
    segments = plan.segments(start, start + timedelta(days=1))
    wrong_mask: list[str] = []
    with usecase.step("2", AC_SOURCE, METER, f"one simulated day, {len(segments)} tariff periods: GET active_mask "
                                             "and the tariff registers at both ends of each, MEAS power"):
        sleep_until(bench_clock, utc_of(start, deviation))
        for begin, end, tariff in segments:
            what = f"{begin:%H:%M}-{end:%H:%M} (tariff {tariff})"
            expected = [tariff_registers[tariff - 1]]
            sleep_until(bench_clock, utc_of(begin, deviation) + timedelta(seconds=tolerance))
            at_begin, power_begin, t_begin = tou.energies(), ac_source.measure().power_w, bench_clock.monotonic()
            masks_seen = []
            for moment in ("begin", "end"):
                if moment == "end":
                    sleep_until(bench_clock, utc_of(end, deviation) - timedelta(seconds=tolerance))
                try:
                    masks_seen.append(activation.active_registers())
                except MalformedReply as exc:
                    masks_seen.append([exc.diagnosis])
            at_end, power_end, t_end = tou.energies(), ac_source.measure().power_w, bench_clock.monotonic()
            wrong_mask += [f"{what} at its {moment}: {seen}" for moment, seen in zip(("begin", "end"), masks_seen)
                           if seen != expected]
            delivered = (power_begin + power_end) / 2 * (t_end - t_begin) / 3600
            allowed = delivered * limits.tariff_energy_tolerance.value / 100 + limits.tariff_energy_floor.value
            grew = [tariff_registers[i] for i, (a, b) in enumerate(zip(at_begin, at_end)) if b - a > allowed]
            usecase.expect(f"{what}: registers that grew", grew, expected, article="4-10-8")
            usecase.measure(f"{what}: energy delivered (Wh)", delivered, low=allowed, unit="Wh", article="4-10-8")
    usecase.expect("periods whose active mask activates another register than the calendar's tariff", wrong_mask,
                   [], article="4-17-6")
