"""The emulated meter's time-of-use objects: booking, refusals, special days, activation."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter, axdr, cosem_time
from smmc_bench.fixtures.meter.cosem_objects import CosemError

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)  # Monday 08:00 local (deviation 240)


@pytest.fixture
def meter():
    meter = EmulatedMeter(clock=VirtualClock(START), initial_clock_offset=0.0)
    meter.model.tariffs.reschedule()
    yield meter
    meter.model.tariffs.stop()


def registers(meter) -> list[int]:
    with meter.model.lock:
        return [r.get(2).value for r in meter.model.tariffs.registers]


def test_tariff_registers_add_up_to_the_total_over_a_week(meter):
    meter.bench_clock.sleep(7 * 86400 + 1234)
    assert sum(registers(meter)) == meter.energy.wh
    assert all(value > 0 for value in registers(meter))


def test_default_calendar_switches_on_its_hours(meter):
    assert meter.model.tariffs.current == 2  # 08:00
    meter.bench_clock.sleep(10 * 3600 - 1)
    assert meter.model.tariffs.current == 2  # 17:59:59
    meter.bench_clock.sleep(2)
    assert meter.model.tariffs.current == 3  # 18:00:01


def _day_table(hour: int, selector: int):
    return axdr.array([axdr.structure(axdr.unsigned(1), axdr.array([axdr.structure(
        axdr.octet_string(bytes([hour, 0, 0, 0xFF])), axdr.octet_string(bytes([0, 0, 10, 0, 100, 255])),
        axdr.long_unsigned(selector))]))])


@pytest.mark.parametrize("value", [_day_table(24, 1), _day_table(0, 5), _day_table(0, 0), axdr.unsigned(1)])
def test_invalid_day_profiles_are_refused(meter, value):
    calendar = meter.model.tariffs.calendar
    before = calendar.passive
    with pytest.raises(CosemError):
        calendar.set(9, value)
    assert calendar.passive == before


@pytest.mark.parametrize("raw", [
    bytes([0x07, 0xE9, 4, 31, 0xFF, 0, 0, 0, 0xFF, 0, 240, 0]),  # 31 April
    bytes([0x07, 0xE9, 2, 29, 0xFF, 0, 0, 0, 0xFF, 0, 240, 0]),  # 29 February 2025
    bytes([0x07, 0xE9, 3, 11, 0xFF, 24, 0, 0, 0xFF, 0, 240, 0]),  # hour 24
])
def test_invalid_activation_times_are_refused(meter, raw):
    calendar = meter.model.tariffs.calendar
    with pytest.raises(CosemError):
        calendar.set(10, axdr.octet_string(raw))
    assert calendar.activation_time() is None


def test_special_day_insert_and_delete(meter):
    special = meter.model.tariffs.special_days
    entry = axdr.structure(axdr.long_unsigned(7), axdr.octet_string(bytes([0xFF, 0xFF, 3, 11, 0xFF])),
                           axdr.unsigned(2))
    with meter.model.lock:
        special.invoke(1, entry)
    meter.bench_clock.sleep(86400)  # Tuesday 11 March, every year: rest-day profile
    assert meter.model.tariffs.current == 4
    with meter.model.lock:
        special.invoke(2, axdr.long_unsigned(7))
    assert meter.model.tariffs.current == 2
    assert special.get(2).value == []


def test_activation_by_time_logs_event_9_once(meter):
    calendar = meter.model.tariffs.calendar
    with meter.model.lock:
        calendar.set(6, axdr.octet_string(b"P"))
        calendar.set(10, axdr.octet_string(cosem_time.encode(START + timedelta(hours=1), 240)))
    meter.bench_clock.sleep(3599)
    assert calendar.active[0] != b"P"
    meter.bench_clock.sleep(2)
    assert calendar.active[0] == b"P"
    meter.bench_clock.sleep(86400)
    assert [code for _, code in meter.model.standard_log.entries].count(9) == 1
