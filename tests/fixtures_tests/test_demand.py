"""The emulated meter's demand register (IC 5) and maximum demand (IC 4): period averages of
the metered power, aligned boundaries, the period written, resets."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter, axdr, cosem_time
from smmc_bench.fixtures.meter.cosem_objects import CosemError

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def meter():
    meter = EmulatedMeter(clock=VirtualClock(START), initial_clock_offset=0.0)
    meter.model.demand.start()
    yield meter
    meter.model.demand.stop()


def watts(obj, attribute: int) -> float:
    return obj.get(attribute).value / 10


def stamp(obj, attribute: int) -> datetime:
    return cosem_time.decode_for_set(bytes(obj.get(attribute).value), 240)


def power(meter) -> float:
    return meter.model._power_w()


def test_last_average_is_the_period_energy_over_the_period(meter):
    demand = meter.model.demand.register
    meter.model.set_load_demand(4.0)
    p1 = power(meter)
    meter.bench_clock.sleep(900 + 1)  # through 12:15
    assert watts(demand, 3) == pytest.approx(p1, abs=0.1)
    assert stamp(demand, 6) == START + timedelta(seconds=900)
    assert stamp(demand, 7) == START + timedelta(seconds=900)
    meter.bench_clock.sleep(449)  # 12:22:30, half the period: a quarter at 1 A
    meter.model.set_load_demand(1.0)
    p2 = power(meter)
    assert watts(demand, 2) == pytest.approx(p1 / 2, abs=0.2)
    meter.bench_clock.sleep(451)
    assert watts(demand, 3) == pytest.approx((p1 + p2) / 2, abs=0.2)
    maximum = meter.model.demand.maximum
    assert watts(maximum, 2) == pytest.approx(p1, abs=0.1)
    assert stamp(maximum, 5) == START + timedelta(seconds=900)


def test_new_period_takes_effect_at_the_next_boundary(meter):
    demand = meter.model.demand.register
    meter.bench_clock.sleep(100)
    demand.set(8, axdr.double_long_unsigned(300))
    assert demand.get(8).value == 300
    meter.bench_clock.sleep(700)  # 12:13:20: no boundary at 12:05 or 12:10
    assert demand.get(6).value == cosem_time.not_specified()
    meter.bench_clock.sleep(101)  # 12:15:01
    assert stamp(demand, 6) == START + timedelta(seconds=900)
    meter.bench_clock.sleep(300)  # 12:20:01
    assert stamp(demand, 6) == START + timedelta(seconds=1200)


@pytest.mark.parametrize("period", [0, 7, 59, 7200])
def test_out_of_range_period_is_refused(meter, period):
    demand = meter.model.demand.register
    with pytest.raises(CosemError):
        demand.set(8, axdr.double_long_unsigned(period))
    assert demand.get(8).value == 900


def test_billing_resets_maximum_demand_which_then_follows_new_periods(meter):
    meter.model.set_load_demand(6.0)
    high = power(meter)
    meter.bench_clock.sleep(901)
    maximum = meter.model.demand.maximum
    assert watts(maximum, 2) > 1000
    meter.model.billing.script_table.methods[1](axdr.long_unsigned(1))
    assert watts(maximum, 2) == 0
    meter.model.set_load_demand(1.0)
    meter.bench_clock.sleep(900)
    low = power(meter)
    # The period holds the last second of high load; the integrator samples the load on its own
    # thread, so up to one more second of it may land in the period on a loaded machine.
    assert (high + 899 * low) / 900 - 0.1 <= watts(maximum, 2) <= (2 * high + 898 * low) / 900 + 0.1
    assert stamp(maximum, 5) == START + timedelta(seconds=1800)
