"""Each scheduled-programming mutant (aspect 10: single action schedule, register monitor, push destination)
differs from the conforming meter in its one declared way, observed directly on the emulator's objects, beside
a conforming meter driven the same way in virtual time."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import MUTANTS, EmulatedMeter, axdr
from smmc_bench.fixtures.meter.axdr import Data, DataType
from smmc_bench.fixtures.meter.cosem_objects import CosemError
from smmc_bench.fixtures.meter.meter import PUBLIC_CLIENT_SAP
from smmc_bench.fixtures.meter.mutants import schedule

# Meter clock offset 0, time zone UTC-4 (deviation 240): 12:00 UTC is 08:00 local.
START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
ANY_DAY = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0xFF])


def build(mutant: str | None) -> EmulatedMeter:
    meter = EmulatedMeter(clock=VirtualClock(START), mutant=mutant, initial_clock_offset=0.0)
    meter.model.billing_schedule.start()
    return meter


def times_value(*entries: tuple[bytes, bytes]) -> Data:
    return axdr.array([axdr.structure(axdr.octet_string(t), axdr.octet_string(d)) for t, d in entries])


def refused(obj, attribute: int, value: Data) -> bool:
    try:
        obj.set(attribute, value)
    except CosemError:
        return True
    return False


def billing_minutes(meter) -> list[str]:
    return [when.strftime("%H:%M:%S") for when, _, _ in meter.model.billing.profile.rows]


def scheduled_run(meter):
    """08:10 local (12:10 UTC) written at 12:00: rows at 12:08, 12:12 and 12:30, and the time read back."""
    sched = meter.model.billing_schedule
    sched.set(4, times_value((bytes([8, 10, 0, 0xFF]), ANY_DAY)))
    samples = []
    for until in (8 * 60, 12 * 60, 30 * 60):
        meter.bench_clock.sleep(until - (meter.bench_clock.now() - START).total_seconds())
        samples.append(billing_minutes(meter))
    return samples, sched.get(4).value[0].value[0].value


def execution_time_checks(meter):
    sched = meter.model.billing_schedule
    return (refused(sched, 4, times_value((bytes([24, 0, 0, 0xFF]), ANY_DAY))),
            refused(sched, 4, times_value((bytes([1, 0, 0, 0xFF]), bytes([0xFF, 0xFF, 13, 1, 0xFF])))))


def monitor_crossing(meter):
    """Threshold 1500 W written at 1320 W (6 A at 220 V); then 1386 W (6.3 A, under it) and 1650 W (7.5 A)."""
    monitor, pushes = meter.model.power_monitor, []
    meter.model.push_setup.trigger = lambda delay_s=0.0: pushes.append(delay_s)  # counted, not sent
    meter.set_load_demand(6.0)
    monitor.set(2, axdr.array([Data(DataType.DOUBLE_LONG, 1500)]))
    meter.set_load_demand(6.3)
    below = list(monitor.fired)
    meter.set_load_demand(7.5)
    return below, list(monitor.fired), monitor.get(2).value[0].value, len(pushes)


def monitor_checks(meter):
    monitor = meter.model.power_monitor
    return refused(monitor, 2, axdr.array([Data(DataType.DOUBLE_LONG, -1)])), [t.value for t in monitor.get(2).value]


def push_destinations(meter):
    """Destination A written, then B: where the push goes, and what reads back."""
    push = meter.model.push_setup
    for text in (b"127.0.0.1:4001", b"127.0.0.1:4002"):
        push.set(3, axdr.structure(axdr.enum(0), axdr.octet_string(text), axdr.enum(0)))
    return push._delivery_destination(), push.get(3).value[1].value


def push_transport(meter):
    push = meter.model.push_setup
    return refused(push, 3, axdr.structure(axdr.enum(200), axdr.octet_string(b"127.0.0.1:4001"), axdr.enum(0)))


def public_access(meter):
    access = meter.clients[PUBLIC_CLIENT_SAP].access
    model = meter.model
    return [access.attribute_access(obj, attribute).name for obj, attribute in
            ((model.billing_schedule, 4), (model.power_monitor, 2), (model.push_setup, 3))]


PROBES = {
    "schedule-runs-late": scheduled_run,
    "schedule-runs-early": scheduled_run,
    "schedule-keeps-old-time": scheduled_run,
    "schedule-time-not-stored": scheduled_run,
    "schedule-runs-at-the-write": scheduled_run,
    "schedule-time-unchecked": execution_time_checks,
    "monitor-threshold-low": monitor_crossing,
    "monitor-ignores-writes": monitor_crossing,
    "monitor-threshold-not-stored": monitor_crossing,
    "monitor-action-not-run": monitor_crossing,
    "monitor-negative-accepted": monitor_checks,
    "push-destination-not-used": push_destinations,
    "push-transport-unchecked": push_transport,
    "schedule-public-write-accepted": public_access,
}
# What the conforming meter does, so a probe cannot pass by both meters being wrong alike.
CONFORMING = {
    scheduled_run: ([[], ["12:10:00"], ["12:10:00"]], bytes([8, 10, 0, 0xFF])),
    execution_time_checks: (True, True),
    monitor_crossing: ([], [(0, "up")], 1500, 1),
    monitor_checks: (True, [9000]),
    push_destinations: ("127.0.0.1:4002", b"127.0.0.1:4002"),
    push_transport: True,
    public_access: ["NO_ACCESS"] * 3,
}
PROBED_MUTANTS = set(PROBES)


def test_every_schedule_mutant_has_a_probe():
    assert PROBED_MUTANTS == {m.name for m in schedule.MUTANTS}
    assert all(MUTANTS[name].aspect == 10 for name in PROBED_MUTANTS)


@pytest.mark.parametrize("name", sorted(PROBES))
def test_schedule_mutant_defect_is_observable(name):
    observe = PROBES[name]
    conforming = observe(build(None))
    assert conforming == CONFORMING[observe]
    assert observe(build(name)) != conforming


def test_schedule_follows_a_wildcard_date_and_the_meter_clock():
    """Day 1 of every month at 00:00 local: the next run is 1 April 04:00 UTC, whatever the day now."""
    meter = build(None)
    assert meter.model.billing_schedule.next_due() == datetime(2025, 4, 1, 4, 0, tzinfo=timezone.utc)
    meter.model.clock.invoke(6, axdr.long(-60))  # shift_time: the due instant in bench time moves with it
    assert meter.model.billing_schedule.next_due() == datetime(2025, 4, 1, 4, 0, tzinfo=timezone.utc)


def test_powered_down_schedule_runs_nothing():
    meter = build(None)
    meter.model.billing_schedule.set(4, times_value((bytes([8, 10, 0, 0xFF]), ANY_DAY)))
    meter.model.set_supply(0.0, 50.0)
    meter.bench_clock.sleep(20 * 60)
    meter.model.set_supply(220.0, 50.0)
    assert billing_minutes(meter) == []
