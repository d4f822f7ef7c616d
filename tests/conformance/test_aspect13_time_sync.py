"""Aspect 13 (art. 3-11): remote time synchronisation of the meter.

Use case: the head-end reads the meter's clock (IC 8), sets it from the bench's
reference time with the round trip compensated, and the meter keeps the new
time, logs the adjustment (events 4 old time / 5 new time) and refuses an
invalid time without changing its clock.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from smmc_bench.cosem.common import seconds_between
from smmc_bench.drivers.dlms import CosemDateTime
from smmc_bench.drivers.dlms.errors import ServiceError

pytestmark = [pytest.mark.smmc_aspect(13), pytest.mark.smmc_ntd("3-11")]

HEAD_END = "Head-end (bench)"
METER = "Meter"
REFERENCE = "Reference clock (bench)"


def deviation_from_reference(meter, bench_clock) -> float:
    """Meter time minus reference time, with half the round trip credited to the request."""
    sent = bench_clock.now()
    reading = meter.clock.read()
    reference = sent + timedelta(seconds=meter.clock.last_round_trip / 2)
    return seconds_between(reading.time, reference)


def synchronise(meter, bench_clock) -> None:
    """SET clock.time to the reference time the meter will see when the request arrives."""
    meter.clock.read()  # one exchange to learn the round trip
    one_way = timedelta(seconds=meter.clock.last_round_trip / 2)
    meter.clock.write(bench_clock.now() + one_way, meter.clock.time_zone())


def test_clock_reports_valid_time(meter, bench_clock, usecase):
    with usecase.step("1", HEAD_END, METER, "GET clock.time and clock.status"):
        reading = meter.clock.read()
        status = meter.clock.status()
    usecase.expect("clock.time status invalid-value bit", reading.invalid, False, article="3-11")
    usecase.expect("clock.status invalid-value bit", bool(status & 0x01), False, article="3-11")
    with usecase.step("2", REFERENCE, HEAD_END, "deviation of the meter clock before synchronisation"):
        usecase.measure("clock deviation before sync (informative)", deviation_from_reference(meter, bench_clock),
                        unit="s", article="3-11")


def test_clock_sync_within_tolerance(meter, bench_clock, usecase):
    tolerance = meter.limits.clock_sync_tolerance
    offset = meter.limits.clock_desync_offset
    # A clock already on time would pass a meter that ignores the SET: put it off first.
    with usecase.step("0", HEAD_END, METER, f"precondition: SET clock.time = reference + {offset.value:g} s"):
        meter.clock.write(bench_clock.now() + timedelta(seconds=offset.value), meter.clock.time_zone())
    with usecase.step("1", REFERENCE, HEAD_END, "reference time; round trip measured with GET clock.time"):
        before = deviation_from_reference(meter, bench_clock)
    usecase.measure("clock deviation before sync (informative)", before, unit="s", article="3-11")
    with usecase.step("2", HEAD_END, METER, "SET clock.time = reference + one-way delay"):
        synchronise(meter, bench_clock)
    with usecase.step("3", HEAD_END, METER, "GET clock.time; deviation from reference"):
        after = deviation_from_reference(meter, bench_clock)
    usecase.measure("|clock deviation after sync|", abs(after), limit=tolerance)


def test_clock_set_in_utc_keeps_the_instant(meter, bench_clock, usecase):
    """A date-time carries its own deviation: the reference written as UTC (deviation 0) sets the same
    instant as when written in the meter's zone."""
    tolerance = meter.limits.clock_sync_tolerance
    offset = meter.limits.clock_desync_offset
    with usecase.step("0", HEAD_END, METER, f"precondition: SET clock.time = reference + {offset.value:g} s"):
        meter.clock.write(bench_clock.now() + timedelta(seconds=offset.value), meter.clock.time_zone())
    with usecase.step("1", HEAD_END, METER, "SET clock.time = reference + one-way delay, deviation 0 (UTC)"):
        meter.clock.read()
        meter.clock.write(bench_clock.now() + timedelta(seconds=meter.clock.last_round_trip / 2), 0)
    with usecase.step("2", HEAD_END, METER, "GET clock.time; deviation from reference"):
        after = deviation_from_reference(meter, bench_clock)
    usecase.measure("|clock deviation after a sync written in UTC|", abs(after), limit=tolerance)


def test_clock_adjustment_logs_events_4_and_5(meter, bench_clock, usecase):
    log, codes = meter.standard_event_log, meter.events
    tolerance = meter.limits.event_timestamp_tolerance
    offset = meter.limits.clock_desync_offset
    # Old and new time must differ, or an event stamped with the wrong one would pass.
    with usecase.step("0", HEAD_END, METER, f"precondition: SET clock.time = reference + {offset.value:g} s"):
        meter.clock.write(bench_clock.now() + timedelta(seconds=offset.value), meter.clock.time_zone())
    with usecase.step("1", HEAD_END, METER, "GET standard event log; GET clock.time (old time)"):
        before = log.entries()
        old_time = meter.clock.read().time
    with usecase.step("2", HEAD_END, METER, "SET clock.time = reference time"):
        synchronise(meter, bench_clock)
    with usecase.step("3", HEAD_END, METER, "GET clock.time (new time); GET standard event log"):
        new_time = meter.clock.read().time
        added = log.new_since(before)
    logged = [e.code for e in added]
    usecase.expect("event 'clock adjusted (old time)' logged",
                   codes.clock_adjusted_old_time in logged, True, article="3-11")
    usecase.expect("event 'clock adjusted (new time)' logged",
                   codes.clock_adjusted_new_time in logged, True, article="3-11")
    old_event = next(e for e in added if e.code == codes.clock_adjusted_old_time)
    new_event = next(e for e in added if e.code == codes.clock_adjusted_new_time)
    usecase.expect("old-time event logged before new-time event",
                   added.index(old_event) < added.index(new_event), True, article="3-11")
    usecase.measure("|old-time event stamp - meter time before set|",
                    abs(seconds_between(old_event.time, old_time)), limit=tolerance)
    usecase.measure("|new-time event stamp - meter time after set|",
                    abs(seconds_between(new_event.time, new_time)), limit=tolerance)
    usecase.measure("|old-time event stamp - (reference + desync offset)|",
                    abs(seconds_between(old_event.time, bench_clock.now()) - offset.value), limit=tolerance)


@pytest.mark.smmc_feature("clock_shift_time")
def test_shift_time_moves_clock(meter, bench_clock, usecase):
    step = int(meter.limits.clock_shift_step.value)
    with usecase.step("1", HEAD_END, METER, "GET clock.time; deviation from reference"):
        before = deviation_from_reference(meter, bench_clock)
    with usecase.step("2", HEAD_END, METER, f"ACTION clock.shift_time({step} s)"):
        meter.clock.shift_time(step)
    with usecase.step("3", HEAD_END, METER, "GET clock.time; deviation from reference"):
        after = deviation_from_reference(meter, bench_clock)
    usecase.measure("|observed shift - requested shift|", abs((after - before) - step),
                    limit=meter.limits.clock_shift_tolerance)
    with usecase.step("4", HEAD_END, METER, f"ACTION clock.shift_time({-step} s) to undo"):
        meter.clock.shift_time(-step)
    with usecase.step("5", HEAD_END, METER, "GET clock.time; the undo must bring the deviation back"):
        undone = deviation_from_reference(meter, bench_clock)
    usecase.measure("|deviation after undo - deviation before|", abs(undone - before),
                    limit=meter.limits.clock_shift_tolerance)


def invalid_date_times(now: CosemDateTime) -> dict[str, CosemDateTime]:
    """Date-times the meter must refuse: each field out of range, and a day the month does not have."""
    def at(month: int, day: int, hour: int) -> CosemDateTime:
        return CosemDateTime(year=now.year, month=month, day=day, weekday=0xFF, hour=hour, minute=0, second=0,
                             hundredths=0, deviation=now.deviation, status=0)
    return {"month 13": at(13, 1, 12), "31 April": at(4, 31, 12), "hour 24": at(6, 1, 24)}


def test_invalid_time_rejected_and_clock_unchanged(meter, bench_clock, usecase):
    tolerance = meter.limits.clock_sync_tolerance
    with usecase.step("1", HEAD_END, METER, "GET clock.time; deviation from reference"):
        before = deviation_from_reference(meter, bench_clock)
        now = meter.clock.read().raw
    for number, (label, invalid) in enumerate(invalid_date_times(now).items(), start=2):
        with usecase.step(str(number), HEAD_END, METER, f"SET clock.time = {label} (invalid date-time)"):
            try:
                meter.clock.write_raw(invalid)
                refused = ""
            except ServiceError as exc:
                refused = exc.diagnosis
        usecase.expect(f"{label}: refused by the meter", bool(refused), True, article="3-11")
        with usecase.step(f"{number}.1", HEAD_END, METER, "GET clock.time; deviation from reference"):
            after = deviation_from_reference(meter, bench_clock)
        usecase.measure(f"{label}: |clock change caused by the refused SET|", abs(after - before), limit=tolerance)


def test_shift_time_limits_are_those_of_the_blue_book(meter, bench_clock, usecase):
    """shift_time takes -900..900 s (IC 8): both ends are applied and undone, one second more is refused."""
    tolerance = meter.limits.clock_shift_tolerance
    with usecase.step("1", HEAD_END, METER, "GET clock.time; deviation from reference"):
        before = deviation_from_reference(meter, bench_clock)
    for number, shift in enumerate((900, -900), start=2):
        with usecase.step(str(number), HEAD_END, METER, f"ACTION clock.shift_time({shift} s)"):
            meter.clock.shift_time(shift)
            moved = deviation_from_reference(meter, bench_clock)
        usecase.measure(f"|observed - requested| for shift_time({shift})", abs((moved - before) - shift),
                        limit=tolerance)
        with usecase.step(f"{number}.1", HEAD_END, METER, f"ACTION clock.shift_time({-shift} s) to undo"):
            meter.clock.shift_time(-shift)
            before = deviation_from_reference(meter, bench_clock)
    with usecase.step("4", HEAD_END, METER, "ACTION clock.shift_time(901 s), out of range"):
        try:
            meter.clock.shift_time(901)
            refused = ""
        except ServiceError as exc:
            refused = exc.diagnosis
        after = deviation_from_reference(meter, bench_clock)
    usecase.expect("shift_time(901) refused", bool(refused), True, article="3-11")
    usecase.measure("|clock change caused by the refused shift|", abs(after - before), limit=tolerance)


def test_clock_keeps_time_in_free_run(meter, bench_clock, usecase):
    duration, drift = meter.limits.clock_free_run_duration, meter.limits.clock_free_run_drift
    with usecase.step("1", HEAD_END, METER, "SET clock.time = reference time; deviation from reference"):
        synchronise(meter, bench_clock)
        start = deviation_from_reference(meter, bench_clock)
    with usecase.step("2", REFERENCE, REFERENCE, f"the clock runs free for {duration.value:g} {duration.unit}"):
        bench_clock.sleep(duration.value)
    with usecase.step("3", HEAD_END, METER, "GET clock.time; deviation from reference"):
        end = deviation_from_reference(meter, bench_clock)
    usecase.measure(f"|deviation gained in {duration.value:g} s of free run|", abs(end - start), limit=drift)


@pytest.mark.smmc_feature("clock_adjust_to_quarter")
@pytest.mark.parametrize("past_quarter_s, rounds", [(460, "up"), (440, "down")], ids=["7m40s", "7m20s"])
def test_adjust_to_quarter_rounds_to_the_nearest_quarter(meter, bench_clock, usecase, past_quarter_s, rounds):
    tolerance = meter.limits.clock_shift_tolerance
    reference = bench_clock.now().replace(second=0, microsecond=0)
    hour = reference - timedelta(minutes=reference.minute % 15)  # a quarter, in UTC and any whole-hour zone
    nearest = hour + timedelta(minutes=15 if rounds == "up" else 0)
    try:
        with usecase.step("1", HEAD_END, METER, f"SET clock.time = a quarter + {past_quarter_s} s"):
            meter.clock.write(hour + timedelta(seconds=past_quarter_s), meter.clock.time_zone())
            written_at = bench_clock.monotonic()
        with usecase.step("2", HEAD_END, METER, "ACTION clock.adjust_to_quarter"):
            meter.clock.adjust_to_quarter()
            acted_at = bench_clock.monotonic()
        with usecase.step("3", HEAD_END, METER, f"GET clock.time: the quarter {rounds}, plus the time since"):
            reading = meter.clock.read().time
            since = bench_clock.monotonic() - acted_at
        usecase.measure(f"|clock - nearest quarter ({rounds}) - elapsed|",
                        abs(seconds_between(reading, nearest) - since), limit=tolerance)
    finally:
        synchronise(meter, bench_clock)


def test_time_zone_written_reads_back(meter, bench_clock, usecase):
    with usecase.step("1", HEAD_END, METER, "GET clock.time_zone; deviation from reference"):
        original = meter.clock.time_zone()
        before = deviation_from_reference(meter, bench_clock)
    wanted = original + 60 if original <= 660 else original - 60
    try:
        with usecase.step("2", HEAD_END, METER, f"SET clock.time_zone = {wanted}"):
            meter.clock.set_time_zone(wanted)
        with usecase.step("3", HEAD_END, METER, "GET clock.time_zone; deviation from reference"):
            usecase.expect("time_zone read back", meter.clock.time_zone(), wanted, article="3-11")
            after = deviation_from_reference(meter, bench_clock)
        # The zone changes how local time is shown, never the instant the clock keeps.
        usecase.measure("|change of the clock's instant caused by the time-zone write|", abs(after - before),
                        limit=meter.limits.clock_sync_tolerance)
    finally:
        with usecase.step("4", HEAD_END, METER, f"SET clock.time_zone = {original}; GET it"):
            meter.clock.set_time_zone(original)
            usecase.expect("time_zone restored", meter.clock.time_zone(), original, article="3-11")
