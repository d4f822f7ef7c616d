"""Each daily-values mutant differs from the conforming meter in its one declared way, observed directly on
the emulator's daily values profile over two days of virtual time with an outage on the second."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter
from smmc_bench.fixtures.meter.load_profile import STATUS_POWER_DOWN
from smmc_bench.fixtures.meter.mutants import daily

# Meter clock offset 0, time zone UTC-4 (deviation 240): local midnight is 04:00 UTC.
START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
PROBED_MUTANTS = [mutant.name for mutant in daily.MUTANTS]


def two_days(mutant: str | None) -> list[tuple[datetime, int, int]]:
    clock = VirtualClock(START)
    meter = EmulatedMeter(clock=clock, mutant=mutant, initial_clock_offset=0.0)
    meter.model.daily_values.start()
    meter.set_load_demand(5.0)
    clock.sleep(24 * 3600)  # past the first local midnight (04:00 UTC on the 11th), to 12:00 on the 11th
    meter.set_supply(0.0)
    clock.sleep(300)
    meter.set_supply(230.0)
    clock.sleep(24 * 3600)  # past the next midnight (04:00 UTC on the 12th)
    meter.model.daily_values.stop()
    return list(meter.model.daily_values.rows)


@pytest.fixture(scope="module")
def conforming():
    return two_days(None)


def test_the_conforming_meter_closes_each_local_midnight(conforming):
    assert [when for when, _, _ in conforming] == [datetime(2025, 3, 11, 4, tzinfo=timezone.utc),
                                                    datetime(2025, 3, 12, 4, tzinfo=timezone.utc)]
    assert [status for _, status, _ in conforming] == [0, STATUS_POWER_DOWN]
    assert 0 < conforming[0][2] < conforming[1][2]


@pytest.mark.parametrize("name", PROBED_MUTANTS)
def test_each_mutant_differs_in_its_declared_way(name, conforming):
    rows = two_days(name)
    if name == "daily-values-at-utc-midnight":
        assert [when.hour for when, _, _ in rows] == [0, 0]
    elif name == "daily-values-energy-one-day-late":
        assert rows[1][2] == conforming[0][2]
    elif name == "daily-values-no-power-down-bit":
        assert [status for _, status, _ in rows] == [0, 0]
    elif name == "daily-values-no-row-after-outage":
        assert [when for when, _, _ in rows] == [conforming[0][0]]
    elif name == "daily-values-stamped-end-of-day":
        assert [when for when, _, _ in rows] == [when - timedelta(seconds=1) for when, _, _ in conforming]
    elif name == "daily-values-whole-kwh":
        assert all(wh % 1000 == 0 for _, _, wh in rows) and rows != conforming
    else:
        pytest.fail(f"no probe for {name}")
