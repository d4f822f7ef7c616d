"""Each readings mutant (aspect 2 load profile, aspect 10 capture-period programming, aspect 12 account
move) differs from the conforming meter in its one declared way, observed directly on the emulator's
objects, beside a conforming meter driven the same way in virtual time."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import MUTANTS, EmulatedMeter, axdr
from smmc_bench.fixtures.meter.association import AccessMode
from smmc_bench.fixtures.meter.axdr import DataType
from smmc_bench.fixtures.meter.cosem_objects import CosemError
from smmc_bench.fixtures.meter.meter import PUBLIC_CLIENT_SAP
from smmc_bench.fixtures.meter.mutants import readings
from smmc_bench.fixtures.meter.selective_access import ByEntry, ByRange

# Meter clock offset 0 and a start on a boundary: every probe knows where the boundaries fall.
START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
PERIOD = 900


def build(mutant: str | None) -> EmulatedMeter:
    meter = EmulatedMeter(clock=VirtualClock(START), mutant=mutant, initial_clock_offset=0.0)
    meter.model.load_profile.start()
    return meter


def run(meter, seconds: float) -> None:
    meter.bench_clock.sleep(seconds)


def rows(meter) -> list[tuple[str, int, int]]:
    return [(when.strftime("%H:%M:%S"), status, wh) for when, status, wh in meter.model.load_profile.rows]


def outage_rows(meter):
    """A 300 s outage inside the second interval, then three more intervals: times and statuses."""
    run(meter, PERIOD + 200)
    meter.model.set_supply(0.0, 50.0)
    run(meter, 300)
    meter.model.set_supply(220.0, 50.0)
    run(meter, 3 * PERIOD)
    return [(when, status) for when, status, _ in rows(meter)]


def clock_shift_rows(meter):
    run(meter, PERIOD + 200)
    meter.model.clock.invoke(6, axdr.long(60))
    run(meter, 2 * PERIOD)
    return [(when, status) for when, status, _ in rows(meter)]


def interval_energies(meter):
    """Energy per interval under a load changed mid-interval, and the register at the last boundary."""
    meter.set_load_demand(2.0)
    run(meter, PERIOD + PERIOD / 2)
    meter.set_load_demand(8.0)
    run(meter, 2 * PERIOD - PERIOD / 2 + 1)
    values = [wh for _, _, wh in rows(meter)]
    return [b - a for a, b in zip(values, values[1:])], values[-1]


def history(meter, count: int = 20):
    meter.model.load_profile.fill(count, end=START + timedelta(hours=5))
    return meter.model.load_profile.rows


def range_read(meter):
    kept = history(meter)
    selected = meter.model.load_profile.select(2, ByRange((8, bytes([0, 0, 1, 0, 0, 255]), 2),
                                                          kept[2][0], kept[6][0]))
    return len(selected.value)


def entry_read(meter):
    history(meter)
    selected = meter.model.load_profile.select(2, ByEntry(2, 5, 1, 0))
    return [axdr.encode(row) for row in selected.value]


def wrap(meter):
    profile = meter.model.load_profile
    profile.set(8, axdr.double_long_unsigned(3))
    run(meter, 5 * PERIOD + 1)
    return [when for when, _, _ in rows(meter)], profile.get(7).value


def entries_in_use(meter):
    history(meter, 5)
    return meter.model.load_profile.get(7).value


def period_change(meter):
    """300 s written 100 s after a boundary: rows in the next 1000 s."""
    run(meter, 100)
    meter.model.load_profile.set(4, axdr.double_long_unsigned(300))
    run(meter, 1000)
    return [when for when, _, _ in rows(meter)]


def refused(meter, value) -> bool:
    try:
        meter.model.load_profile.set(4, value)
    except CosemError:
        return True
    return False


def out_of_range(meter):
    return refused(meter, axdr.double_long_unsigned(7)), refused(meter, axdr.double_long_unsigned(86401))


def wrong_type(meter):
    return refused(meter, axdr.long_unsigned(900)), refused(meter, axdr.Data(DataType.DOUBLE_LONG, 900))


def capture_objects_change(meter):
    """Two rows, then capture objects {clock, energy}; then with an unknown register added: rows and refusal."""
    profile = meter.model.load_profile
    run(meter, 2 * PERIOD + 1)
    clock, _, energy = (axdr.structure(axdr.long_unsigned(c), axdr.octet_string(ln), axdr.integer(a),
                                       axdr.long_unsigned(0)) for c, ln, a in profile.capturable)
    profile.set(3, axdr.array([clock, energy]))
    kept = len(profile.rows)
    unknown = axdr.structure(axdr.long_unsigned(3), axdr.octet_string(bytes([1, 0, 99, 99, 99, 255])),
                             axdr.integer(2), axdr.long_unsigned(0))
    return kept, refused_write(profile, 3, axdr.array([clock, energy, unknown]))


def refused_write(obj, attribute: int, value) -> bool:
    try:
        obj.set(attribute, value)
    except CosemError:
        return True
    return False


def public_access(meter):
    return meter.clients[PUBLIC_CLIENT_SAP].access.attribute_access(meter.model.load_profile, 4)


def change_logged(meter):
    meter.model.parameters.written(meter.model.load_profile, 4)
    return [code for _, code in meter.state.standard_events]


def billing_cycles(meter):
    """Two end-of-billing runs an hour apart at the default 1 kW: rows (energy, counter) and the register."""
    script = meter.model.billing.script_table
    for _ in range(2):
        run(meter, 3600)
        script.invoke(1, axdr.long_unsigned(1))
    return [(wh, count) for _, wh, count in meter.model.billing.profile.rows], meter.model.energy.wh


def customer_data_write(meter):
    data = meter.model.billing.customer_data
    data.set(2, axdr.octet_string(b"NEW-CUSTOMER"))
    meter.model.parameters.written(data, 2)
    try:
        data.set(2, axdr.octet_string(b"X" * 200))
        long_refused = data.text != b"X" * 200
    except CosemError:
        long_refused = True
    return data.get(2).value, long_refused, [code for _, code in meter.state.standard_events]


PROBES = {
    "load-profile-gap-after-power-down": outage_rows,
    "load-profile-power-down-bit-missing": outage_rows,
    "load-profile-status-sticky": outage_rows,
    "load-profile-clock-invalid-always": outage_rows,
    "load-profile-clock-adjusted-wrong-bit": clock_shift_rows,
    "load-profile-value-shifted": interval_energies,
    "load-profile-energy-column-low": interval_energies,
    "load-profile-range-drops-to-edge": range_read,
    "load-profile-range-drops-from-edge": range_read,
    "load-profile-entry-off-by-one": entry_read,
    "load-profile-buffer-not-wrapping": wrap,
    "load-profile-entries-in-use-wrong": entries_in_use,
    "capture-period-applied-late": period_change,
    "capture-period-applied-at-once": period_change,
    "capture-period-out-of-range-accepted": out_of_range,
    "capture-period-wrong-type-accepted": wrong_type,
    "capture-objects-change-keeps-buffer": capture_objects_change,
    "capture-objects-unknown-accepted": capture_objects_change,
    "capture-period-public-write-accepted": public_access,
    "capture-period-change-not-logged": change_logged,
    "billing-clears-energy": billing_cycles,
    "billing-clears-history": billing_cycles,
    "billing-counter-stuck": billing_cycles,
    "billing-row-stale-energy": billing_cycles,
    "customer-data-write-ignored": customer_data_write,
    "customer-data-length-unchecked": customer_data_write,
    "customer-data-change-not-logged": customer_data_write,
}
# What the conforming meter does, so a probe cannot pass by both meters being wrong alike.
CONFORMING = {
    outage_rows: [("12:15:00", 0), ("12:30:00", 0x80), ("12:45:00", 0), ("13:00:00", 0)],
    clock_shift_rows: [("12:15:00", 0), ("12:30:00", 0x20), ("12:45:00", 0)],
    range_read: 5,
    wrap: (["12:45:00", "13:00:00", "13:15:00"], 3),
    entries_in_use: 5,
    period_change: ["12:05:00", "12:10:00", "12:15:00"],
    out_of_range: (True, True),
    wrong_type: (True, True),
    public_access: AccessMode.NO_ACCESS,
    capture_objects_change: (0, True),
    change_logged: [47],
    billing_cycles: ([(1000, 1), (2000, 2)], 2000),
    customer_data_write: (b"NEW-CUSTOMER", True, [47]),
}
PROBED_MUTANTS = set(PROBES)


def test_every_readings_mutant_has_a_probe():
    assert PROBED_MUTANTS == {m.name for m in readings.MUTANTS}
    assert all(MUTANTS[name].aspect in (2, 10, 12) for name in PROBED_MUTANTS)


@pytest.mark.parametrize("name", sorted(PROBES))
def test_readings_mutant_defect_is_observable(name):
    observe = PROBES[name]
    conforming = observe(build(None))
    if observe in CONFORMING:
        assert conforming == CONFORMING[observe]
    assert observe(build(name)) != conforming


def test_conforming_interval_energies_follow_the_load_and_end_at_the_register():
    meter = build(None)
    deltas, last = interval_energies(meter)
    # 2 A (440 W) then 8 A (1760 W) from 12:22:30: 55 + 220 Wh, then 440 Wh.
    assert deltas == pytest.approx([275, 440], abs=1)
    assert abs(last - meter.model.energy.wh) <= 1
