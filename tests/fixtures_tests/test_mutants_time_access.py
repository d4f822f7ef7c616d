"""Direct probes for the time and access mutants: each defect is observable on the meter model.

A probe returns what the conforming meter and the mutant must disagree on, so a
mutant that changes nothing shows up here as a failing test.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import MUTANTS, EmulatedMeter, axdr

START = datetime(2025, 3, 10, 12, 7, 40, tzinfo=timezone.utc)


def build(mutant: str | None) -> EmulatedMeter:
    return EmulatedMeter(clock=VirtualClock(START), mutant=mutant, initial_clock_offset=0.0)


def probe_shift(seconds: int):
    def probe(meter):
        before = meter.clock.offset_s
        meter.clock.invoke(6, axdr.long(seconds))
        return round(meter.clock.offset_s - before)
    return probe


def probe_free_run(meter):
    """Meter time gained against the bench's reference over one simulated day."""
    before = meter.clock.offset_s
    meter.bench_clock.sleep(timedelta(days=1).total_seconds())
    return round(meter.clock.offset_s - before)


def probe_event_4_old_time(meter):
    old = meter.clock.now()
    meter.clock.invoke(6, axdr.long(300))
    stamps = {code: when for when, code in meter.state.standard_events}
    return round((stamps[4] - old).total_seconds()), round((stamps[5] - old).total_seconds())


def probe_time_zone(meter):
    meter.clock.set(3, axdr.long(-180))
    return meter.clock.get(3).value


def probe_quarter(meter):
    """At 12:07:40 the nearest quarter is 12:00... of meter local time: check the minute landed on."""
    meter.clock.invoke(6, axdr.long(+ 6 * 60))  # now 12:13:40 bench-relative: nearest quarter is :15
    meter.clock.invoke(1, axdr.integer(0))
    return meter.clock.now().minute


PROBES = {
    "clock-shift-back-ignored": (probe_shift(-300), -300),
    "clock-shift-absolute": (probe_shift(-300), -300),
    "clock-drifts-200ppm": (probe_free_run, 0),
    "clock-event4-stamped-new": (probe_event_4_old_time, (0, 300)),
    "clock-time-zone-ignored": (probe_time_zone, -180),
    "clock-quarter-rounds-down": (probe_quarter, 15),
}

PROBED_MUTANTS = set(PROBES)


@pytest.mark.parametrize("name", sorted(PROBES))
def test_time_access_mutant_is_observable(name):
    assert MUTANTS[name].aspect in (1, 5, 13)
    probe, conforming_value = PROBES[name]
    assert probe(build(None)) == conforming_value
    assert probe(build(name)) != conforming_value


def test_drifting_mutant_gains_about_17_seconds_a_day():
    assert probe_free_run(build("clock-drifts-200ppm")) == 17
