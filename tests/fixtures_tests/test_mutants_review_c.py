"""Each review-C mutant (revc-*: aspects 8, 9, 10, 12) differs from the conforming meter in its one
declared way, observed directly on the emulator's objects beside a conforming meter driven the same way."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import MUTANTS, EmulatedMeter, axdr
from smmc_bench.fixtures.meter.axdr import Data, DataType
from smmc_bench.fixtures.meter.cosem_objects import CosemError
from smmc_bench.fixtures.meter.mutants import review_c
from tests.fixtures_tests.test_mutants_firmware import Probe, image

# Meter clock offset 0, time zone UTC-4 (deviation 240): 12:00 UTC is 08:00 local, Monday 10 March 2025.
START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
ANY_DAY = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0xFF])


def build(mutant: str | None) -> EmulatedMeter:
    return EmulatedMeter(clock=VirtualClock(START), initial_clock_offset=0.0, mutant=mutant)


def run(meter: EmulatedMeter, steps: list[tuple[float, float]]) -> None:
    """(seconds, amps): hold each current that long."""
    for seconds, amps in steps:
        meter.model.set_load_demand(amps)
        meter.bench_clock.sleep(seconds)


def refused(call) -> bool:
    try:
        call()
    except CosemError:
        return True
    return False


# -- aspect 8 ----------------------------------------------------------------------------------------
def demand_scaler(mutant):
    return build(mutant).model.demand.register.get(4).value[0].value


def demand_capture_time(mutant):
    meter = build(mutant)
    meter.model.demand.start()
    run(meter, [(901, 4.0)])
    return meter.model.demand.register.capture_time


def demand_current_average(mutant):
    """Half way through a period at constant load: current_average_value is half the period's average."""
    meter = build(mutant)
    meter.model.demand.start()
    run(meter, [(450, 4.0)])
    return round(meter.model.demand.register.get(2).value / 10 / 100)


def demand_after_reset(mutant):
    meter = build(mutant)
    meter.model.demand.start()
    run(meter, [(901, 4.0)])
    meter.model.demand.register.invoke(1, axdr.integer(0))
    return meter.model.demand.register.get(3).value, meter.model.demand.register.capture_time


def maximum_stamp(mutant):
    meter = build(mutant)
    meter.model.demand.start()
    run(meter, [(901, 4.0)])
    return meter.model.demand.maximum.capture_time


def maximum_after_reset(mutant):
    meter = build(mutant)
    meter.model.demand.start()
    run(meter, [(901, 4.0)])
    meter.model.demand.maximum.invoke(1, axdr.integer(0))
    return meter.model.demand.maximum.value_w, meter.model.demand.maximum.capture_time


# -- aspect 9 ----------------------------------------------------------------------------------------
def first_gap(mutant):
    p = Probe(mutant)
    data = image()
    assert p.initiate(data) == ""
    p.blocks(data, [0, 1, 3])
    return p.first()


def resent_block(mutant):
    p = Probe(mutant)
    data = image()
    bad = image(corrupt=True)
    assert p.initiate(data) == ""
    p.blocks(bad, range(p.count(data)))  # block 0 of the corrupted image holds the flipped octet
    p.blocks(data, [0])
    return p.verify()


def to_activate_after_failure(mutant):
    p = Probe(mutant)
    p.load(image())
    assert p.verify() == ""
    p.load(image(corrupt=True))
    p.verify()
    return len(p.transfer.get(7).value)


def _scheduled_activation(mutant, ahead_s: float, wait_s: float):
    p = Probe(mutant)
    p.meter.start()
    try:
        p.load(image())
        p.verify()
        local = (p.model.clock.now() - timedelta(minutes=p.model.clock.time_zone)).replace(tzinfo=None, microsecond=0)
        due = local + timedelta(seconds=ahead_s)
        with p.model.lock:
            p.model.firmware.schedule.set(4, axdr.array([axdr.structure(
                axdr.octet_string(bytes([due.hour, due.minute, due.second, 0])),
                axdr.octet_string(due.year.to_bytes(2, "big") + bytes([due.month, due.day, 0xFF])))]))
        p.bench.sleep(wait_s)
        return p.identifier(), [c for c in p.codes() if c in (17, 18)]
    finally:
        p.meter.stop()


def scheduled_codes(mutant):
    return _scheduled_activation(mutant, 300, 310)


def scheduled_early(mutant):
    """An activation 5 h ahead (local): nothing has run 1 h later."""
    return _scheduled_activation(mutant, 5 * 3600, 3600)[0]


# -- aspect 10 ---------------------------------------------------------------------------------------
def times_value(*entries: tuple[bytes, bytes]) -> Data:
    return axdr.array([axdr.structure(axdr.octet_string(t), axdr.octet_string(d)) for t, d in entries])


def day_of_month(mutant):
    """Execution 08:10 local on day 10 of any month (today): a billing row at 12:10 UTC today."""
    meter = build(mutant)
    meter.model.billing_schedule.start()
    meter.model.billing_schedule.set(4, times_value((bytes([8, 10, 0, 0xFF]), bytes([0xFF, 0xFF, 0xFF, 10, 0xFF]))))
    meter.bench_clock.sleep(20 * 60)
    return len(meter.model.billing.profile.rows)


def refused_times(mutant):
    sched = build(mutant).model.billing_schedule
    before = sched.get(4).value
    good, bad = (bytes([9, 0, 0, 0xFF]), ANY_DAY), (bytes([24, 0, 0, 0xFF]), ANY_DAY)
    assert refused(lambda: sched.set(4, times_value(good, bad)))
    return sched.get(4).value == before


def _monitor(mutant, threshold: int, amps: list[float]):
    meter = build(mutant)
    monitor = meter.model.power_monitor
    meter.model.push_setup.trigger = lambda delay_s=0.0: None  # counted by monitor.fired, not sent
    meter.set_load_demand(5.0)
    monitor.set(2, axdr.array([Data(DataType.DOUBLE_LONG, threshold)]))
    powers = []
    for a in amps:
        meter.set_load_demand(a)
        powers.append(int(meter.model.power_register.get(2).value))
    return list(monitor.fired), powers


def monitor_just_above(mutant):
    """Threshold 1500 W; the power goes 50 W over it and back to 50 W under."""
    probe = _monitor(None, 1500, [7.0])
    per_amp = probe[1][0] / 7.0
    return _monitor(mutant, 1500, [1550 / per_amp, 1450 / per_amp])[0]


def monitor_at_threshold(mutant):
    """Threshold written equal to the power measured at 7 A: no crossing (equal is not above)."""
    power = _monitor(None, 1500, [7.0])[1][0]
    return _monitor(mutant, power, [5.0, 7.0])[0]


# -- aspect 12 ---------------------------------------------------------------------------------------
def billing_row_energy(mutant):
    meter = build(mutant)
    run(meter, [(1800, 4.0)])
    meter.model.billing.script_table.invoke(1, axdr.long_unsigned(1))
    row = meter.model.billing.profile.get(2).value[-1].value
    return row[1].value == meter.model.energy_register.get(2).value


def maximum_after_billing(mutant):
    meter = build(mutant)
    meter.model.demand.start()
    run(meter, [(901, 4.0)])
    meter.model.billing.script_table.invoke(1, axdr.long_unsigned(1))
    return meter.model.demand.maximum.value_w


PROBES = {
    "revc-demand-scaler-zero": demand_scaler,
    "revc-demand-capture-time-second-early": demand_capture_time,
    "revc-demand-current-average-over-elapsed": demand_current_average,
    "revc-demand-reset-keeps-last-average": demand_after_reset,
    "revc-max-demand-stamped-at-period-start": maximum_stamp,
    "revc-max-demand-reset-keeps-stamp": maximum_after_reset,
    "revc-fw-first-not-transferred-is-count": first_gap,
    "revc-fw-resent-block-ignored": resent_block,
    "revc-fw-failed-verify-keeps-to-activate-info": to_activate_after_failure,
    "revc-fw-scheduled-activation-logs-17": scheduled_codes,
    "revc-fw-scheduled-activation-in-utc": scheduled_early,
    "revc-schedule-day-of-month-from-zero": day_of_month,
    "revc-schedule-refused-times-partly-stored": refused_times,
    "revc-monitor-dead-band": monitor_just_above,
    "revc-monitor-equal-is-above": monitor_at_threshold,
    "revc-billing-row-energy-whole-kwh": billing_row_energy,
    "revc-billing-script-skips-demand-reset": maximum_after_billing,
}
EXPECTED = {  # what the conforming meter shows, where a fixed value says it
    "revc-demand-scaler-zero": -1,
    "revc-demand-current-average-over-elapsed": 4,  # ~440 W at half period (880 W average): 4 x 100 W
    "revc-fw-first-not-transferred-is-count": 2,
    "revc-fw-resent-block-ignored": "",
    "revc-fw-failed-verify-keeps-to-activate-info": 0,
    "revc-schedule-day-of-month-from-zero": 1,
    "revc-schedule-refused-times-partly-stored": True,
    "revc-monitor-at-threshold": [],
    "revc-billing-row-energy-whole-kwh": True,
    "revc-billing-script-skips-demand-reset": 0.0,
}
PROBED_MUTANTS = set(PROBES)


def test_every_review_c_mutant_has_a_probe():
    assert PROBED_MUTANTS == {m.name for m in review_c.MUTANTS}
    assert all(MUTANTS[name].aspect in (8, 9, 10, 12) for name in PROBED_MUTANTS)


@pytest.mark.parametrize("name", sorted(PROBES))
def test_review_c_mutant_differs_from_conforming_meter(name):
    observe = PROBES[name]
    conforming, mutated = observe(None), observe(name)
    if name in EXPECTED:
        assert conforming == EXPECTED[name]
    assert mutated != conforming
