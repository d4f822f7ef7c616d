"""Aspect 10 (arts 4-21, 5-3): remote programming of the meter, the load profile's capture period.

Use case (Remote Programming of Smart Meter): the utility changes a parameter
through the head-end; the meter stores it, reports it back, applies it when it
should (a new capture period at its own next boundary, not at the write and not
a period late, each new row holding the energy the bench's source delivered in
its interval) and logs the change (event 47). A value out of range or of the
wrong type is refused and changes nothing; the public client may not write.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from smmc_bench.cosem.common import seconds_between
from smmc_bench.cosem.disconnect import restore_connected
from smmc_bench.cosem.profile_generic import (
    CaptureObject,
    DeliveredEnergy,
    Interval,
    MeterTime,
    boundary_after,
    load_profile_at_default_period,
)
from smmc_bench.drivers.dlms import DataType, Typed
from smmc_bench.drivers.dlms.errors import AssociationRejected, ServiceError
from smmc_bench.safety.restore import restore_all

pytestmark = [pytest.mark.smmc_aspect(10), pytest.mark.smmc_ntd("4-21"), pytest.mark.smmc_feature("load_profile")]

HEAD_END = "Head-end (bench)"
CUSTOMER = "Customer client (bench, public SAP)"
METER = "Meter"
AC_SOURCE = "AC source (bench)"
LOAD = "Load (bench)"


@pytest.fixture
def load_profile(meter, bench_clock):
    with load_profile_at_default_period(meter, bench_clock) as view:
        yield view


def period_changes(meter, before) -> list:
    code = meter.profile.readings.parameter_change_event
    return [e for e in meter.standard_event_log.new_since(before) if e.code == code]


def rows_after(rows: list[Interval], moment: datetime) -> list[str]:
    return [r.time.isoformat() for r in rows if r.time > moment]


def test_capture_period_takes_effect_at_its_next_boundary(meter, load_profile, ac_source, load, bench_clock,
                                                          usecase):
    readings = meter.profile.readings
    limits = readings.limits
    old, new = int(limits.capture_period.value), int(limits.programmed_capture_period.value)
    watched, delay = max(2, int(limits.programmed_periods_watched.value)), limits.capture_delay.value
    tolerance = meter.limits.event_timestamp_tolerance
    view, log = load_profile.generic, meter.standard_event_log
    current = max(readings.parameters.load_currents_a)
    delivered = DeliveredEnergy()
    with usecase.step("0", LOAD, METER, f"precondition: breaker connected; load draws {current:g} A"):
        if meter.profile.has("disconnector"):
            dc = meter.disconnect_control
            restore_connected(dc, meter.profile.disconnector.control_modes, dc.control_mode())
        load.set_current(current)
        load.on()
        volts = float(ac_source.measure().voltage_v)
    clock = MeterTime(meter, bench_clock)
    # Written a third of a new period after an old boundary: the new period's next boundary comes first,
    # the old period's next one later, so "at once", "on time" and "a period late" all look different.
    old_boundary = boundary_after(clock.now() + timedelta(seconds=delay), old)
    write_at = old_boundary + timedelta(seconds=new / 3)
    due = old_boundary + timedelta(seconds=new)
    with usecase.step("0.1", HEAD_END, METER, f"precondition: capture_period {old} s; wait until "
                                              f"{write_at:%H:%M:%S} (meter time); GET standard event log"):
        clock.sleep_until(write_at)
        before_log = log.entries()
        written_from = meter.clock.read().time
    with usecase.step("1", HEAD_END, METER, f"SET capture_period = {new}; GET it back"):
        view.set_capture_period(new)
        written_to = meter.clock.read().time
        usecase.expect("capture_period read back (s)", view.capture_period(), new, article="4-21")
    with usecase.step("2", HEAD_END, METER, "GET standard event log"):
        changes = period_changes(meter, before_log)
    event = readings.parameter_change_event
    usecase.expect(f"event {event} (parameters changed) logged once", len(changes), 1, article="5-3")
    late = max(seconds_between(changes[0].time, written_to), seconds_between(written_from, changes[0].time), 0.0)
    usecase.measure(f"event {event} stamp outside the write's time window", late, limit=tolerance)
    with usecase.step("3", HEAD_END, METER, f"GET buffer just before {due:%H:%M:%S}, the new period's first "
                                            "boundary"):
        clock.sleep_until(due - timedelta(seconds=min(delay, new / 3) / 2))
        early = rows_after(load_profile.read(), written_from - timedelta(seconds=1))
    usecase.expect(f"rows captured between the write and {due:%H:%M:%S} (none: not before the boundary)",
                   early, [], article="4-21")
    boundaries = [due + timedelta(seconds=new * k) for k in range(watched)]
    bench_at = {}
    with usecase.step("4", AC_SOURCE, METER, f"source measures at each new boundary {boundaries[0]:%H:%M:%S} .. "
                                             f"{boundaries[-1]:%H:%M:%S}; {delay:g} s later GET buffer"):
        for boundary in boundaries:
            bench_at[boundary] = clock.sleep_until(boundary)
            delivered.sample(bench_at[boundary], float(ac_source.measure().power_w))
        bench_clock.sleep(delay)
        rows = [r for r in load_profile.read() if r.time > written_from - timedelta(seconds=1)]
    usecase.expect(f"rows after the write: every {new} s from {due:%H:%M:%S}", [r.time.isoformat() for r in rows],
                   [t.isoformat() for t in boundaries], article="4-21")
    # Each row holds the register at its own boundary: a row captured late (a timer started at the write)
    # but stamped on the boundary shows as an interval short of what the source delivered, the next one long.
    accuracy, resolution = limits.energy_accuracy.value / 100, limits.energy_resolution.value
    least_wh = current * volts * new / 3600 / 2
    for before, row in zip(rows, rows[1:]):
        if before.time not in bench_at or row.time not in bench_at:
            continue  # a row off the boundaries is judged above
        source_wh = delivered.wh_between(bench_at[before.time], bench_at[row.time])
        usecase.measure(f"energy the source delivered {before.time:%H:%M:%S}..{row.time:%H:%M:%S} (Wh)", source_wh,
                        low=least_wh, unit="Wh", article=limits.energy_accuracy.article)
        allowed = accuracy * source_wh + 2 * resolution
        usecase.measure(f"interval ending {row.time:%H:%M:%S}: meter delta {row.energy - before.energy:g} - "
                        f"{source_wh:.1f} Wh delivered (Wh)", row.energy - before.energy - source_wh,
                        low=-allowed, high=allowed, unit="Wh", article=limits.energy_accuracy.article)


def refusal(call) -> str:
    """The refusal's diagnosis, or '' when the meter accepted."""
    try:
        call()
    except ServiceError as exc:
        return exc.diagnosis or "refused"
    return ""


def state(load_profile) -> tuple[int, list[str]]:
    return load_profile.generic.capture_period(), [r.time.isoformat() for r in load_profile.read()]


def check_nothing_changed(meter, load_profile, before: tuple[int, list[str]], before_log, what: str, usecase) -> None:
    period, rows = state(load_profile)
    usecase.expect(f"after {what}: capture_period unchanged", period, before[0], article="4-21")
    usecase.expect(f"after {what}: rows lost from the buffer", [r for r in before[1] if r not in rows], [],
                   article="4-21")
    usecase.expect(f"after {what}: event {meter.profile.readings.parameter_change_event} logged",
                   len(period_changes(meter, before_log)), 0, article="5-3")


def test_invalid_capture_periods_are_refused(meter, load_profile, bench_clock, usecase):
    log = meter.standard_event_log
    limits = meter.profile.readings.limits
    period = int(meter.profile.readings.limits.capture_period.value)
    wrong_types = [Typed(DataType.LONG_UNSIGNED, period), Typed(DataType.DOUBLE_LONG, period),
                   Typed(DataType.OCTET_STRING, period.to_bytes(4, "big")), Typed(DataType.VISIBLE_STRING, b"900")]
    attempts = [(f"{value} s (out of range)", Typed(DataType.DOUBLE_LONG_UNSIGNED, value))
                for value in meter.profile.readings.parameters.invalid_capture_periods]
    attempts += [(f"{value.type.name.lower()} {value.value!r} (wrong type)", value) for value in wrong_types]
    with usecase.step("0", HEAD_END, METER, "GET capture_period, buffer (one row at least), standard event log"):
        # An empty buffer would show nothing lost whatever the meter did with it.
        if not load_profile.read():
            bench_clock.sleep(limits.capture_period.value + limits.capture_delay.value)
        before, before_log = state(load_profile), log.entries()
    usecase.expect("rows in the buffer before the refused writes", bool(before[1]), True, article="4-21")
    for index, (what, value) in enumerate(attempts, start=1):
        with usecase.step(str(index), HEAD_END, METER, f"SET capture_period = {what}; GET it, buffer, event log"):
            refused = refusal(lambda: load_profile.generic.write_capture_period(value))
            usecase.expect(f"capture_period = {what} refused", bool(refused), True, article="4-21")
            check_nothing_changed(meter, load_profile, before, before_log, what, usecase)


def test_public_client_cannot_write_the_capture_period(meter, load_profile, link_access, usecase):
    log = meter.standard_event_log
    other = int(meter.profile.readings.limits.programmed_capture_period.value)
    with usecase.step("0", HEAD_END, METER, "GET capture_period, buffer, standard event log"):
        before, before_log = state(load_profile), log.entries()
    with usecase.step("1", CUSTOMER, METER, f"AARQ as the public client; SET capture_period = {other}"):
        session = link_access.session(meter.profile.clients.public_sap)  # the bench's own session waits
        try:
            session.connect()
            refused = refusal(lambda: session.set(7, meter.profile.readings.objects.load_profile, 4,
                                                  Typed(DataType.DOUBLE_LONG_UNSIGNED, other)))
        except AssociationRejected as exc:  # no association, no write (the association is aspect 3's subject)
            refused = f"association refused: {exc.diagnosis}"
        link_access.resume()
    usecase.expect("the public client's write refused", bool(refused), True, article="4-21")
    with usecase.step("2", HEAD_END, METER, "GET capture_period, buffer, standard event log"):
        check_nothing_changed(meter, load_profile, before, before_log, "the public client's write", usecase)


def test_capture_objects_change_clears_the_buffer(meter, load_profile, bench_clock, usecase):
    """Blue Book IC 7: new capture_objects reset the buffer; an object the meter cannot capture is refused, and
    so is a load profile without the clock (art. 4-10: every interval is read with its capture time, and reads
    by range restrict on the clock column). The clock's position among the columns is free: the Blue Book
    fixes no order, and the bench finds each column by its capture object."""
    limits = meter.profile.readings.limits
    view, log = load_profile.generic, meter.standard_event_log
    change = meter.profile.readings.parameter_change_event
    with usecase.step("0", HEAD_END, METER, "GET capture_objects, buffer (one row at least), event log"):
        original = view.capture_objects()
        layout = load_profile.layout()
        if not load_profile.read():
            bench_clock.sleep(limits.capture_period.value + limits.capture_delay.value)
        before, before_log = state(load_profile), log.entries()
    kept = [original[layout["clock"]], original[layout["energy"]]]
    unknown = CaptureObject(3, "1.0.99.99.99.255", 2)  # no such register in any profile
    try:
        with usecase.step("1", HEAD_END, METER, "SET capture_objects with an object the meter does not have"):
            refused = refusal(lambda: view.set_capture_objects([*kept, unknown]))
        usecase.expect("capture_objects naming an unknown object refused", bool(refused), True, article="4-21")
        usecase.expect("capture_objects after the refusal", view.capture_objects(), original, article="4-21")
        check_nothing_changed(meter, load_profile, before, before_log, "the refused capture_objects", usecase)
        timeless = [original[layout["status"]], original[layout["energy"]]]
        with usecase.step("1.1", HEAD_END, METER, "SET capture_objects = {status, energy} (no clock); GET it, "
                                                  "buffer, event log"):
            refused = refusal(lambda: view.set_capture_objects(timeless))
        usecase.expect("capture_objects without the clock refused", bool(refused), True, article="4-10")
        usecase.expect("capture_objects after the refusal (no clock)", view.capture_objects(), original,
                       article="4-21")
        check_nothing_changed(meter, load_profile, before, before_log, "the capture_objects without the clock",
                              usecase)
        with usecase.step("2", HEAD_END, METER, "SET capture_objects = {clock, energy}; GET it back, "
                                                "entries_in_use, event log"):
            view.set_capture_objects(kept)
            usecase.expect("capture_objects read back", view.capture_objects(), kept, article="4-21")
            usecase.expect("entries_in_use right after the change (buffer cleared)", view.entries_in_use(), 0,
                           article="4-21")
            usecase.expect(f"event {change} logged", len(period_changes(meter, before_log)), 1, article="5-3")
        clock = MeterTime(meter, bench_clock)
        boundary = boundary_after(clock.now(), int(limits.capture_period.value))
        with usecase.step("3", HEAD_END, METER, f"wait until {boundary:%H:%M} (the next boundary); GET buffer"):
            clock.sleep_until(boundary + timedelta(seconds=limits.capture_delay.value))
            rows = view.buffer()
        usecase.expect("rows captured after the change", len(rows), 1, article="4-21")
        usecase.expect("values per row (one per capture object)", [len(row) for row in rows], [len(kept)],
                       article="4-21")
    finally:
        restore_all(f"meter {meter.id} load profile capture objects",
                    [("capture_objects", lambda: view.set_capture_objects(original))])
    with usecase.step("4", HEAD_END, METER, "SET capture_objects back; GET it"):
        usecase.expect("capture_objects put back", view.capture_objects(), original, article="4-21")
