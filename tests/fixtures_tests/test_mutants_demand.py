"""Each demand mutant (aspect 8) differs from the conforming meter in its one way.

Probes drive the demand register and maximum demand directly on a virtual clock, beside a conforming meter.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import MUTANTS, EmulatedMeter, axdr
from smmc_bench.fixtures.meter.cosem_objects import CosemError
from smmc_bench.fixtures.meter.mutants import demand

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
DEMAND = sorted(m.name for m in demand.MUTANTS)
PROBED_MUTANTS = set(DEMAND)


def build(mutant: str | None) -> EmulatedMeter:
    meter = EmulatedMeter(clock=VirtualClock(START), initial_clock_offset=0.0, mutant=mutant)
    meter.model.demand.start()
    return meter


def run(meter: EmulatedMeter, steps: list[tuple[float, float]]) -> None:
    """(seconds, amps): hold each current that long."""
    for seconds, amps in steps:
        meter.model.set_load_demand(amps)
        meter.bench_clock.sleep(seconds)


def last_average(meter) -> float:
    return meter.model.demand.register.get(3).value / 10  # as reported


def maximum(meter):
    m = meter.model.demand.maximum
    return m.value_w, m.capture_time


def test_every_demand_mutant_is_probed_here():
    assert DEMAND == sorted(PROBES)
    assert all(MUTANTS[name].aspect == 8 for name in DEMAND)


def _two_periods(meter) -> float:
    run(meter, [(900, 4.0), (901, 1.0)])
    return last_average(meter)


def probe_lags(make):
    return _two_periods(make(None)) < 300 < _two_periods(make("demand-average-lags-one-period"))


def probe_hour(make):
    good, bad = make(None), make("demand-averaged-over-an-hour")
    return abs(_two_periods(good) - 4 * _two_periods(bad)) < 1


def probe_capture_start(make):
    good, bad = make(None), make("demand-capture-time-period-start")
    run(good, [(901, 1.0)])
    run(bad, [(901, 1.0)])
    end = START + timedelta(seconds=900)
    return good.model.demand.register.capture_time == end and bad.model.demand.register.capture_time == START


def _closes_after_change(meter) -> datetime | None:
    register = meter.model.demand.register
    meter.bench_clock.sleep(100)
    register.set(8, axdr.double_long_unsigned(300))
    meter.bench_clock.sleep(700)
    return register.capture_time


def probe_period_immediate(make):
    return (_closes_after_change(make(None)) is None
            and _closes_after_change(make("demand-period-change-immediate")) is not None)


def _accepts(meter, period: int) -> bool:
    try:
        meter.model.demand.register.set(8, axdr.double_long_unsigned(period))
    except CosemError:
        return False
    return True


def probe_out_of_range(make):
    return not _accepts(make(None), 7200) and _accepts(make("demand-period-out-of-range-accepted"), 7200)


def probe_register_counts(make):
    good, bad = make(None), make("demand-from-register-counts")
    run(good, [(901, 0.3)])  # 16.5 Wh in the period: whole Wh lose 0.5 Wh of it
    run(bad, [(901, 0.3)])
    watts = good.model._power_w()
    return abs(last_average(good) - watts) < 0.2 < 1.5 < abs(last_average(bad) - watts)


def probe_peak(make):
    good, bad = make(None), make("max-demand-keeps-peak")
    for meter in (good, bad):
        run(meter, [(675, 1.0), (226, 12.0)])
    peak = good.model._power_w()
    return maximum(good)[0] < peak / 2 and abs(maximum(bad)[0] - peak) < 1


def _after_reset(meter):
    run(meter, [(901, 6.0)])
    meter.model.demand.maximum.methods[1](axdr.integer(0))
    run(meter, [(900, 1.0)])
    return maximum(meter)


def probe_stuck(make):
    return _after_reset(make(None))[0] > 200 and _after_reset(make("max-demand-stuck-after-reset"))[0] == 0


def probe_stamped(make):
    good, bad = make(None), make("max-demand-stamped-every-period")
    for meter in (good, bad):
        run(meter, [(900, 6.0), (901, 1.0)])
    first = START + timedelta(seconds=900)
    return maximum(good)[1] == first and maximum(bad)[1] == first + timedelta(seconds=900)


def _logged_changes(meter) -> int:
    model = meter.model
    model.parameters.written(model.demand.register, 8)
    return sum(1 for _, code in model.standard_log.entries if code == 47)


def probe_not_logged(make):
    return _logged_changes(make(None)) == 1 and _logged_changes(make("demand-period-change-not-logged")) == 0


def probe_public_writable(make):
    from smmc_bench.fixtures.meter.association import AccessMode, ReadOnlyAccess

    meter = make(None)
    mutant = MUTANTS["demand-period-public-writable"].replacements[ReadOnlyAccess](meter.model.public_readable)
    conforming = ReadOnlyAccess(meter.model.public_readable)
    register = meter.model.demand.register
    return (conforming.attribute_access(register, 8) != AccessMode.READ_AND_WRITE
            and mutant.attribute_access(register, 8) == AccessMode.READ_AND_WRITE)


PROBES = {
    "demand-period-change-not-logged": probe_not_logged,
    "demand-period-public-writable": probe_public_writable,
    "demand-average-lags-one-period": probe_lags,
    "demand-averaged-over-an-hour": probe_hour,
    "demand-capture-time-period-start": probe_capture_start,
    "demand-period-change-immediate": probe_period_immediate,
    "demand-period-out-of-range-accepted": probe_out_of_range,
    "demand-from-register-counts": probe_register_counts,
    "max-demand-keeps-peak": probe_peak,
    "max-demand-stuck-after-reset": probe_stuck,
    "max-demand-stamped-every-period": probe_stamped,
}


@pytest.mark.parametrize("name", sorted(PROBES))
def test_mutant_differs_in_its_one_way(name):
    assert PROBES[name](build), f"{name}: the probe does not tell it from the conforming meter"
