"""Each review-D mutant (revd-*: aspects 2, 7, 8, 12) differs from the conforming meter in its one declared
way, observed directly on the emulator's objects beside a conforming meter driven the same way."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import MUTANTS, axdr
from smmc_bench.fixtures.meter.axdr import Data, DataType
from smmc_bench.fixtures.meter.cosem_objects import CosemError
from smmc_bench.fixtures.meter.model import MeterModel
from smmc_bench.fixtures.meter.mutants import review_d
from smmc_bench.fixtures.meter.selective_access import ByRange

START = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)  # a Monday, 08:00 local (UTC-4)


def model(name: str | None) -> MeterModel:
    return MeterModel(VirtualClock(START), "EMU1", 0.0, 240, 1, load_w=1000.0,
                      replacements=MUTANTS[name].replacements if name else None)


def refused(call) -> bool:
    try:
        call()
    except CosemError:
        return True
    return False


def daily_rows_by_range(m):
    daily = m.daily_values
    daily.fill(3)
    first, last = daily.rows[0][0], daily.rows[-1][0]
    return len(daily.select(2, ByRange(daily.capture_objects[0], first, last)).value)


def daily_rows_after_ten_captures(m):
    daily = m.daily_values
    for day in range(10):
        daily._capture(START + timedelta(days=day))
    return len(daily.rows), daily.get(8).value


def daily_status_after_clock_change(m):
    daily = m.daily_values
    daily.clock_changed()
    daily._capture(START)
    return daily.rows[-1][1]


def daily_boundary_after_time_zone_write(m):
    daily = m.daily_values
    daily._last_boundary(START)
    m.clock.set(3, Data(DataType.LONG, 0))  # local = UTC now
    return daily._last_boundary(START)


def daily_status_two_days_after_outage(m):
    daily = m.daily_values
    m.set_supply(0.0, 50.0)
    m.bench_clock.sleep(60)
    m.set_supply(230.0, 50.0)
    daily._capture(START)
    daily._capture(START + timedelta(days=1))
    return [status for _, status, _ in daily.rows]


def first_mask(m):
    return m.register_activation.masks()[0]


def mask_names(m):
    return [name for name, _ in m.register_activation.masks()]


def hour_period_refused(m):
    return refused(lambda: m.demand.register._set_period(axdr.double_long_unsigned(3600)))


def current_average_after_five_minutes(m):
    register = m.demand.register
    register.clock_changed()  # start_time = the last boundary (12:00), energy from now
    register._start_wh = register._energy_now()
    m.bench_clock.sleep(300)
    return round(register.current_average_w())


def period_after_write_and_clock_set(m):
    register = m.demand.register
    register._set_period(axdr.double_long_unsigned(300))
    m.clock._shift(10)  # a time sync inside the running period
    register._close(START + timedelta(minutes=15))  # the running period's end
    return register.period_s


def maximum_stamp_after_higher_period(m):
    maximum = m.demand.maximum
    maximum.period_closed(100.0, START)
    maximum.period_closed(200.0, START + timedelta(minutes=15))
    return maximum.value_w, maximum.capture_time


def maximum_stamp_after_reset(m):
    maximum = m.demand.maximum
    maximum.period_closed(100.0, START)
    maximum._reset_method(axdr.integer(0))
    return maximum.value_w, maximum.capture_time


def outage(m, seconds: float) -> None:
    m.set_supply(0.0, 50.0)
    m.bench_clock.sleep(seconds)
    m.set_supply(230.0, 50.0)


def codes_after(m, seconds: float):
    before = len(m.standard_log.entries)
    outage(m, seconds)
    return [code for _, code in m.standard_log.entries[before:]]


def codes_after_long_and_short(m):
    return codes_after(m, 300), codes_after(m, 5)


def power_down_stamp_seconds(m):
    m.bench_clock.sleep(37)  # the loss at 12:00:37
    before = len(m.standard_log.entries)
    outage(m, 300)
    return [(code, when.second) for when, code in m.standard_log.entries[before:]]


def last_long_failure_duration(m):
    outage(m, 300)
    return m.last_long_failure_s, [seconds for _, seconds in m.power_failure_log.entries]


def customer_data_of_32_octets(m):
    return refused(lambda: m.billing.customer_data.set(2, axdr.octet_string(b"N" * 32))), m.billing.customer_data.text


def counter_after_100_closes(m):
    for _ in range(100):
        m.billing.profile.end_of_billing()
    return m.billing.profile.counter, m.billing.profile.rows[-1][2]


def unknown_script(m):
    was_refused = refused(lambda: m.billing.script_table._execute(axdr.long_unsigned(2)))
    return was_refused, len(m.billing.profile.rows), m.billing.profile.counter


PROBES = {
    "revd-daily-range-excludes-to-time": (daily_rows_by_range, 3),
    "revd-daily-buffer-wraps-at-a-week": (daily_rows_after_ten_captures, (10, 62)),
    "revd-daily-no-clock-adjusted-bit": (daily_status_after_clock_change, None),
    "revd-daily-midnight-factory-time-zone": (daily_boundary_after_time_zone_write,
                                              datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)),
    "revd-daily-power-down-bit-sticky": (daily_status_two_days_after_outage, [0x80, 0]),
    "revd-regact-mask-indexes-from-zero": (first_mask, (b"T1", [1])),
    "revd-regact-stale-duplicate-mask": (mask_names, [b"T1", b"T2", b"T3", b"T4"]),
    "revd-demand-hour-period-refused": (hour_period_refused, False),
    "revd-demand-current-average-over-elapsed": (current_average_after_five_minutes, 333),
    "revd-demand-pending-period-lost-at-clock-set": (period_after_write_and_clock_set, 300),
    "revd-max-demand-keeps-first-stamp": (maximum_stamp_after_higher_period,
                                          (200.0, START + timedelta(minutes=15))),
    "revd-max-demand-reset-keeps-capture-time": (maximum_stamp_after_reset, (0.0, None)),
    "revd-power-up-coded-1-after-long-outage": (codes_after_long_and_short, ([1, 2], [1, 2])),
    "revd-power-down-stamped-to-the-minute": (power_down_stamp_seconds, [(1, 37), (2, 37)]),
    "revd-last-failure-duration-not-updated": (last_long_failure_duration, (300, [300])),
    "revd-customer-data-32-octets-refused": (customer_data_of_32_octets, (False, b"N" * 32)),
    "revd-billing-counter-wraps-at-100": (counter_after_100_closes, (100, 100)),
    "revd-unknown-script-refused-but-billed": (unknown_script, (True, 0, 0)),
}
PROBED_MUTANTS = set(PROBES)


def test_every_review_d_mutant_has_a_probe():
    assert PROBED_MUTANTS == {m.name for m in review_d.MUTANTS}
    assert all(MUTANTS[name].aspect in (2, 7, 8, 12) for name in PROBED_MUTANTS)


@pytest.mark.parametrize("name", sorted(PROBES))
def test_review_d_mutant_differs_from_conforming_meter(name):
    observe, expected = PROBES[name]
    conforming, mutated = observe(model(None)), observe(model(name))
    if expected is not None:
        assert conforming == expected
    assert mutated != conforming


def test_review_d_one_path_mutants_keep_the_other_path():
    """The defects planted on one path only leave the other path conforming."""
    assert codes_after_long_and_short(model("revd-power-up-coded-1-after-long-outage"))[1] == [1, 2]
    assert last_long_failure_duration(model("revd-last-failure-duration-not-updated"))[1] == [300]
    assert customer_data_of_32_octets(model(None))[0] is False
    assert refused(lambda: model("revd-customer-data-32-octets-refused").billing.customer_data.set(
        2, axdr.octet_string(b"N" * 31))) is False
