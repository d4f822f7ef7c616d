"""Each review-B mutant (revb-*: aspects 2, 8, 10, 12, 13) differs from the conforming meter in its one
declared way, observed directly on the emulator's objects beside a conforming meter driven the same way."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import MUTANTS, axdr, cosem_time
from smmc_bench.fixtures.meter.axdr import Data, DataType
from smmc_bench.fixtures.meter.cosem_objects import CosemError
from smmc_bench.fixtures.meter.model import MeterModel
from smmc_bench.fixtures.meter.mutants import review_b
from smmc_bench.fixtures.meter.selective_access import ByEntry

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


def columns_2_to_2(m):
    m.load_profile.fill(5)
    return len(m.load_profile.select(2, ByEntry(1, 1, 2, 2)).value[0].value)


def entries_3_to_99(m):
    m.load_profile.fill(5)
    return len(m.load_profile.select(2, ByEntry(3, 99, 1, 0)).value)


def status_after_shift_back(m):
    m.load_profile.start()
    m.bench_clock.sleep(1000)
    m.clock._shift(-60)
    m.bench_clock.sleep(900)
    return [row[1] for row in m.load_profile.rows]


def rows_after_refused_period(m):
    m.load_profile.fill(5)
    assert refused(lambda: m.load_profile._set_period(axdr.double_long_unsigned(7)))
    return len(m.load_profile.rows)


def energy_first_capture_objects(m):
    lp = m.load_profile
    objects = axdr.array([axdr.structure(axdr.long_unsigned(c), axdr.octet_string(ln), axdr.integer(a),
                                         axdr.long_unsigned(0)) for c, ln, a in reversed(lp.capturable)])
    return refused(lambda: lp._set_capture_objects(objects))


def first_row_after_period_write(m):
    m.set_load_demand(10)
    m.load_profile.start()
    m.bench_clock.sleep(1000)  # 12:16:40: the new period's first boundary is 12:20:00
    m.load_profile._set_period(axdr.double_long_unsigned(300))
    m.bench_clock.sleep(400)
    return [(row[0].strftime("%H:%M:%S"), row[2]) for row in m.load_profile.rows]


def tariff_energy_without_reads(m):
    m.tariffs.reschedule()
    m.set_load_demand(10)
    m.bench_clock.sleep(60)
    m.tariffs.book()
    before = list(m.tariffs.booked_wh)
    m.bench_clock.sleep(12 * 3600)  # 08:01 to 20:01 local: T2 until 18:00, then T3
    m.tariffs.book()
    return [round(b - a) for a, b in zip(before, m.tariffs.booked_wh)]


def indicator_on_special_day(m):
    m.tariffs.special_days._insert(axdr.structure(axdr.long_unsigned(1), axdr.octet_string(b"\xff\xff\x03\x02\xff"),
                                                  axdr.unsigned(2)))
    return m.tariffs.indicator.get(2).value, m.tariffs.current


def activation_written_in_utc(m):
    m.tariffs.calendar._write_activation(axdr.octet_string(cosem_time.encode(START + timedelta(hours=1), 0)))
    return m.tariffs._due()


def billing_rows_when_full(m):
    for _ in range(30):
        m.billing.profile.end_of_billing()
    return [row[2] for row in m.billing.profile.rows][-1]


def billing_row_counter(m):
    m.billing.profile.end_of_billing()
    return m.billing.profile.rows[-1][2], m.billing.profile.counter


def customer_data_after_too_long(m):
    assert refused(lambda: m.billing.customer_data.set(2, axdr.octet_string(b"X" * 200)))
    return m.billing.customer_data.text


def clock_set_in_utc(m):
    m.clock.set(2, axdr.octet_string(cosem_time.encode(START + timedelta(minutes=5), 0)))
    return round((m.clock.now() - START).total_seconds())


def shift_900(m):
    return refused(lambda: m.clock._shift_time(Data(DataType.LONG, 900)))


def utc_after_time_zone_write(m):
    m.clock.set(3, Data(DataType.LONG, 300))
    return round((m.clock.now() - START).total_seconds())


def clock_after_31_april(m):
    raw = bytearray(cosem_time.encode(START, 240))
    raw[2], raw[3], raw[4] = 4, 31, 0xFF
    assert refused(lambda: m.clock.set(2, axdr.octet_string(bytes(raw))))
    return m.clock.now().date()


PROBES = {
    "revb-lp-entry-columns-to-value-ignored": (columns_2_to_2, 1),
    "revb-lp-entry-beyond-newest-empty": (entries_3_to_99, 3),
    "revb-lp-clock-adjusted-forward-only": (status_after_shift_back, [0, 0x20]),
    "revb-capture-period-refusal-clears-buffer": (rows_after_refused_period, 5),
    "revb-capture-objects-clock-not-first-accepted": (energy_first_capture_objects, True),
    "revb-capture-period-first-row-late": (first_row_after_period_write, None),
    "revb-tariff-booked-after-switch": (tariff_energy_without_reads, None),
    "revb-tariff-indicator-ignores-special-days": (indicator_on_special_day, (4, 4)),
    "revb-calendar-activation-ignores-deviation": (activation_written_in_utc, START + timedelta(hours=1)),
    "revb-billing-buffer-not-wrapping": (billing_rows_when_full, 30),
    "revb-billing-row-counter-before-increment": (billing_row_counter, (1, 1)),
    "revb-customer-data-refused-but-truncated": (customer_data_after_too_long, b"CUSTOMER-0001"),
    "revb-clock-set-ignores-deviation": (clock_set_in_utc, 300),
    "revb-clock-shift-limit-off-by-one": (shift_900, False),
    "revb-clock-time-zone-write-moves-utc": (utc_after_time_zone_write, 0),
    "revb-clock-refused-day-still-set": (clock_after_31_april, START.date()),
}
PROBED_MUTANTS = set(PROBES)


def test_every_review_b_mutant_has_a_probe():
    assert PROBED_MUTANTS == {m.name for m in review_b.MUTANTS}
    assert all(MUTANTS[name].aspect in (2, 8, 10, 12, 13) for name in PROBED_MUTANTS)


@pytest.mark.parametrize("name", sorted(PROBES))
def test_review_b_mutant_differs_from_conforming_meter(name):
    observe, expected = PROBES[name]
    conforming, mutated = observe(model(None)), observe(model(name))
    if expected is not None:
        assert conforming == expected
    assert mutated != conforming
