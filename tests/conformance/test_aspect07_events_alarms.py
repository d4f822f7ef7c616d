"""Aspect 7 (art. 5-4): events and alarms when the supply fails and returns.

Use cases: Outage (Restoration) Notification; OMS Poll, unicast and multicast.
The bench cuts the meter's supply with the AC source. The meter logs power
down and power up (events 1/2) stamped at the loss and the return, records a
long outage in its power-failure log with its duration, treats a short
interruption as its profile says, registers the power-up alarm and pushes it
to the head-end within the profile's time; after restoration the head-end's
poll of one meter, and of every meter of the bench, is answered.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from smmc_bench.cosem.clock import Clock
from smmc_bench.cosem.common import seconds_between
from smmc_bench.cosem.supply import SupplyObjects
from smmc_bench.drivers.dlms import FrameTrace
from smmc_bench.drivers.dlms.errors import DlmsError
from smmc_bench.drivers.headend import HeadEndListener
from smmc_bench.procedures import Outage, cut_supply, reassociate, reassociate_for_restore
from smmc_bench.safety.restore import restored

pytestmark = [pytest.mark.smmc_aspect(7), pytest.mark.smmc_ntd("5-4")]

AC_SOURCE = "AC source (bench)"
HEAD_END = "Head-end (bench)"
METER = "Meter"
OMS = "OMS"


# The management logical device's wPort (DLMS wrapper, Green Book 7.3.3.4): pushes come from it.
MANAGEMENT_WPORT = 1


def meter_clock_offset(meter, bench_clock) -> float:
    """Meter time minus bench time, half the round trip credited to the request."""
    sent = bench_clock.now()
    reading = meter.clock.read()
    return seconds_between(reading.time, sent + timedelta(seconds=meter.clock.last_round_trip / 2))


def on_meter_clock(moment: datetime, offset_s: float) -> datetime:
    return moment + timedelta(seconds=offset_s)


def outage_with_evidence(meter, ac_source, bench_clock, usecase, seconds: float, step: str) -> Outage:
    """Cut the supply for `seconds`, then associate again (the meter's connections died with it)."""
    limits = meter.profile.supply.limits
    with usecase.step(step, AC_SOURCE, METER, f"supply cut for {seconds:g} s, then restored") as cut:
        outage = cut_supply(ac_source, seconds, bench_clock)
        cut.information += f" [{outage.how}]"  # evidence: cycle-exact or bench-timed
    with usecase.step(f"{step}.1", HEAD_END, METER, "associate again after restoration"):
        try:
            reassociate(meter.session, bench_clock, limits.restart_time.value)
            silent = ""
        except DlmsError as exc:  # a meter that stays silent after an outage fails, it is not a bench error
            silent = exc.diagnosis
    usecase.expect(f"meter answers within {limits.restart_time.value:g} s of the restoration (diagnosis)",
                   silent, "", article="5-4")
    usecase.measure("outage as injected, measured at the source (informative)", outage.duration_s, unit="s",
                    article="5-4")
    if outage.applied_uncertainty_s is not None:
        usecase.measure("uncertainty of the measured outage (informative)", outage.applied_uncertainty_s, unit="s",
                        article="5-4")
    return outage


def test_outage_logs_power_down_and_up_events(meter, ac_source, rack_supply, bench_clock, usecase):
    supply = meter.profile.supply
    objects = SupplyObjects(meter)
    tolerance = meter.limits.event_timestamp_tolerance
    cut = rack_supply.cut(supply.limits.outage_length.value,
                          lambda m: (meter_clock_offset(m, bench_clock), SupplyObjects(m).power_event_log.entries()),
                          before_information="GET clock.time (offset to the bench clock); GET event log")
    (offset, before), outage = cut.before, cut.outage
    with usecase.step("2", HEAD_END, METER, "GET event log"):
        added = objects.power_event_log.new_since(before)
    codes = supply.events
    down = next((e for e in added if e.code == codes.power_down), None)
    up = next((e for e in added if e.code == codes.power_up), None)
    usecase.expect(f"event {codes.power_down} (power down) logged", down is not None, True, article="5-4")
    usecase.expect(f"event {codes.power_up} (power up) logged", up is not None, True, article="5-4")
    usecase.expect("power down logged before power up", added.index(down) < added.index(up), True, article="5-4")
    cut_at = on_meter_clock(outage.started, offset)
    nominal = ac_source.voltage()
    usecase.record_series("source voltage", "V", [(-60.0, nominal), (0.0, 0.0), (outage.duration_s, nominal),
                                                  (outage.duration_s + 60.0, nominal)],
                          markers=[(seconds_between(down.time, cut_at), f"event {codes.power_down}"),
                                   (seconds_between(up.time, cut_at), f"event {codes.power_up}")], article="5-4")
    usecase.measure("|power-down stamp - moment the supply was cut|",
                    abs(seconds_between(down.time, cut_at)), limit=tolerance)
    usecase.measure("|power-up stamp - moment the supply returned|",
                    abs(seconds_between(up.time, on_meter_clock(outage.ended, offset))), limit=tolerance)


@pytest.mark.smmc_feature("power_failure_log")
def test_long_outage_gives_a_power_failure_entry_with_its_duration(meter, rack_supply, bench_clock, usecase):
    supply = meter.profile.supply
    objects = SupplyObjects(meter)
    limits = supply.limits
    if limits.outage_length.value < limits.short_interruption_threshold.value:
        pytest.fail("profile: outage_length must be at least short_interruption_threshold (a long outage)")

    def before_cut(m):
        view = SupplyObjects(m)
        return (meter_clock_offset(m, bench_clock), view.power_failure_log.entries(),
                view.long_power_failure_count.read())

    cut = rack_supply.cut(limits.outage_length.value, before_cut,
                          before_information="GET clock.time (offset to the bench clock); GET power-failure log "
                                             "and the long power-failure counter")
    (offset, before, long_before), outage = cut.before, cut.outage
    with usecase.step("2", HEAD_END, METER, "GET power-failure log, the long power-failure counter and the "
                                            "duration of the last long power failure"):
        added = objects.power_failure_log.new_since(before)
        long_counted = (objects.long_power_failure_count.read() - long_before) % 2**16
        duration_s, duration_unit = objects.long_power_failure_duration.read()
    usecase.expect("new power-failure log entries", len(added), 1, article="5-4")
    usecase.expect("long power failures counted for the outage", long_counted, 1, article="5-4")
    # The duration register (the log's duration column) against the outage the bench injected, not the log alone.
    usecase.expect(f"unit of {supply.objects.long_power_failure_duration} (last long power failure)", duration_unit,
                   "s", article="5-4")
    usecase.measure(f"|{supply.objects.long_power_failure_duration} duration of the last long power failure - "
                    "outage injected|", abs(duration_s - outage.duration_s),
                    limit=limits.power_failure_duration_tolerance)
    entry = added[0]
    usecase.measure("|logged duration - outage injected|", abs(entry.duration_s - outage.duration_s),
                    limit=limits.power_failure_duration_tolerance)
    stamp = supply.power_failure_log.stamp
    expected = outage.started if stamp == "start" else outage.ended
    usecase.measure(f"|entry time - moment the supply {'was cut' if stamp == 'start' else 'returned'}|",
                    abs(seconds_between(entry.time, on_meter_clock(expected, offset))),
                    limit=meter.limits.event_timestamp_tolerance)


@pytest.mark.smmc_feature("power_failure_log")
def test_short_interruption_treated_as_the_profile_says(meter, rack_supply, usecase):
    supply = meter.profile.supply
    objects = SupplyObjects(meter)
    limits, policy, codes = supply.limits, supply.short_interruptions, supply.events
    length = limits.short_interruption_length.value
    if length >= limits.short_interruption_threshold.value:
        pytest.fail("profile: short_interruption_length must be below short_interruption_threshold")

    def before_cut(m):
        view = SupplyObjects(m)
        return (view.power_event_log.entries(), view.power_failure_log.entries(), view.power_failure_count.read(),
                view.long_power_failure_duration.read()[0])

    cut = rack_supply.cut(length, before_cut,
                          before_information="GET event log, power-failure log, power-failure counter, duration of "
                                             "the last long power failure")
    events_before, failures_before, count_before, duration_before = cut.before
    with usecase.step("2", HEAD_END, METER, "GET event log, power-failure log, power-failure counter, duration of "
                                            "the last long power failure"):
        logged = [e.code for e in objects.power_event_log.new_since(events_before)]
        entries = objects.power_failure_log.new_since(failures_before)
        counted = (objects.power_failure_count.read() - count_before) % 2**16
        duration_after = objects.long_power_failure_duration.read()[0]
    usecase.expect("power down/up events logged", codes.power_down in logged and codes.power_up in logged,
                   policy.events_logged, article="5-4")
    usecase.expect("power-failure log entries", len(entries), int(policy.power_failure_log_entry), article="5-4")
    usecase.expect("power failures counted", counted, int(policy.counted), article="5-4")
    if not policy.power_failure_log_entry:  # not a long failure: the last long failure's duration stays
        usecase.expect(f"{supply.objects.long_power_failure_duration} (last long power failure) after the short "
                       "interruption (s)", duration_after, duration_before, article="5-4")


@pytest.mark.smmc_feature("alarm_register")
@pytest.mark.smmc_feature("alarm_push")
def test_alarm_filter_keeps_a_masked_alarm_from_the_head_end(meter, ac_source, head_end, bench_clock, usecase):
    supply = meter.profile.supply
    objects = SupplyObjects(meter)
    bit = 1 << supply.alarms.power_up_bit
    wait = supply.limits.alarm_push_max_delay
    with usecase.step("0", HEAD_END, METER, "SET alarm filter without the power-up bit; SET alarm register = 0"):
        original_filter = objects.alarm_filter.read()
        objects.alarm_filter.write(original_filter & ~bit)
        objects.alarm_register.write(0)
    with restored(f"meter {meter.id} alarm filter", put_back_filter(meter, objects, bench_clock, original_filter)):
        outage_with_evidence(meter, ac_source, bench_clock, usecase, supply.limits.outage_length.value, "1")
        with usecase.step("2", METER, HEAD_END, f"no alarm push for {wait.value:g} s"):
            pushed = head_end.wait_for(timeout_s=wait.value)
        usecase.expect("alarm pushed although the filter masks it", pushed is not None, False, article="5-4")
        with usecase.step("3", HEAD_END, METER, "GET alarm register"):
            registered = bool(objects.alarm_register.read() & bit)
        usecase.expect("power-up alarm in the alarm register", registered,
                       not supply.alarms.filter_masks_register, article="5-4")


@pytest.mark.smmc_feature("alarm_push")
def test_restoration_alarm_pushed_within_time(meter, ac_source, head_end, bench_clock, usecase):
    supply = meter.profile.supply
    objects = SupplyObjects(meter)
    bit = 1 << supply.alarms.power_up_bit
    with usecase.step("0", HEAD_END, METER, "SET alarm filter with the power-up bit; SET alarm register = 0; "
                                            "GET push object list"):
        original_filter = objects.alarm_filter.read()
        objects.alarm_filter.write(original_filter | bit)
        objects.alarm_register.write(0)
        cleared = objects.alarm_register.read()
        pushed_objects = objects.alarm_push.object_list()
        offset = meter_clock_offset(meter, bench_clock)
    usecase.expect("alarm register read back after SET 0 (alarms cleared)", cleared, 0, article="5-4")
    with restored(f"meter {meter.id} alarm filter", put_back_filter(meter, objects, bench_clock, original_filter)):
        outage = outage_with_evidence(meter, ac_source, bench_clock, usecase, supply.limits.outage_length.value, "1")
        limit = supply.limits.alarm_push_max_delay
        with usecase.step("2", METER, HEAD_END, "alarm push (DataNotification): restoration notification"):
            remaining = limit.value - seconds_between(bench_clock.now(), outage.ended)
            notification = head_end.wait_for(lambda n: n.arrival >= outage.ended, timeout_s=max(0.0, remaining))
        usecase.expect("alarm push received", notification is not None, True, article="5-4")
        usecase.measure("time from restoration to the push's arrival",
                        seconds_between(notification.arrival, outage.ended), limit=limit)
        usecase.expect("push sent from the management logical device (source wPort)", notification.source_wport,
                       MANAGEMENT_WPORT, article="5-4")
        usecase.expect("push carries its date-time", notification.time is not None, True, article="5-4")
        usecase.measure("|push date-time - arrival on the meter's clock| (s)",
                        abs(seconds_between(notification.time, on_meter_clock(notification.arrival, offset))),
                        limit=meter.limits.event_timestamp_tolerance)
        with usecase.step("3", HEAD_END, HEAD_END, "read the push through the push object list"):
            values = objects.alarm_push.values(notification.data, pushed_objects)
        identity = meter.station_meter.identity.get("logical_device_name")
        device = next((v for (c, o, a), v in values.items() if (c, o, a) == (1, "0.0.42.0.0.255", 2)), None)
        if device is not None and identity:
            usecase.expect("pushing meter (logical device name)", device.decode("ascii", "replace"), identity,
                           article="5-4")
        alarms = values.get((1, supply.objects.alarm_register, 2))
        usecase.expect("alarm register in the push", alarms is not None, True, article="5-4")
        usecase.expect("power-up bit in the pushed alarm register", bool(alarms & bit), True, article="5-4")


@pytest.mark.smmc_feature("alarm_push")
def test_failed_alarm_push_is_retried(meter, head_end, bench_clock, usecase):
    """Blue Book IC 40: a push that cannot be delivered is tried again number_of_retries times,
    repetition_delay apart. The bench's head-end is down when the push is due (the connection is refused)
    and back up before the retry: the retry must arrive, not before repetition_delay after the push and
    within alarm_push_max_delay of when it is due, and once delivered it is not sent again."""
    objects = SupplyObjects(meter)
    push = objects.alarm_push
    max_delay = meter.profile.supply.limits.alarm_push_max_delay
    with usecase.step("0", HEAD_END, METER, "GET randomisation_start_interval, number_of_retries, "
                                            "repetition_delay; SET number_of_retries 1, repetition_delay"):
        randomisation = push.randomisation_start_interval()
        original = (push.number_of_retries(), push.repetition_delay())
        # The first attempt is surely over (refused) before the head-end returns, the retry surely after.
        first_by = randomisation + max_delay.value
        delay = int(2 * first_by) + 1
        push.set_number_of_retries(1)
        push.set_repetition_delay(delay)
        written = (push.number_of_retries(), push.repetition_delay())
    usecase.expect("number_of_retries, repetition_delay read back", written, (1, delay), article="5-4")
    address = head_end.address
    with restored(f"meter {meter.id} push retries", [
            ("number_of_retries", lambda: push.set_number_of_retries(original[0])),
            ("repetition_delay", lambda: push.set_repetition_delay(original[1]))]):
        with usecase.step("1", HEAD_END, HEAD_END, "head-end down (its port refuses connections)"):
            head_end.stop()
        back = HeadEndListener(bench_clock, *address)
        try:
            with usecase.step("2", HEAD_END, METER, "ACTION push (alarm push setup, method 1)"):
                pushed_at = bench_clock.now()  # before the request: the first attempt cannot be earlier
                push.push()
            with usecase.step("3", HEAD_END, HEAD_END, f"head-end back up {first_by:g} s after the push "
                                                       "(the first attempt is over)"):
                bench_clock.sleep(first_by)
                back.start()
                back_at = bench_clock.now()
            due = delay + first_by  # the latest the retry is due after the push
            with usecase.step("4", METER, HEAD_END, "the retry (DataNotification)"):
                remaining = due + max_delay.value - seconds_between(bench_clock.now(), pushed_at)
                notification = back.wait_for(timeout_s=max(0.0, remaining))
            usecase.expect("retried push received", notification is not None, True, article="5-4")
            if notification is None:
                return
            usecase.measure("time from the push to the retry's arrival (s)",
                            seconds_between(notification.arrival, pushed_at), low=float(delay),
                            high=due + max_delay.value, unit="s", article="5-4")
            usecase.expect("retry arrived after the head-end came back", notification.arrival >= back_at, True,
                           article="5-4")
            usecase.expect("retry sent from the management logical device (source wPort)",
                           notification.source_wport, MANAGEMENT_WPORT, article="5-4")
            with usecase.step("5", METER, HEAD_END, f"no further push for {delay + max_delay.value:g} s"):
                again = back.wait_for(lambda n: n.arrival > notification.arrival,
                                      timeout_s=delay + max_delay.value)
            usecase.expect("push sent again after it was delivered", again is not None, False, article="5-4")
        finally:
            back.stop()


def put_back_filter(meter, objects, bench_clock, original_filter) -> list:
    """Steps that restore the alarm filter, re-associating first if the outage ended the association."""
    def reassociate_if_needed() -> None:
        if not meter.session.is_associated:
            reassociate_for_restore(meter.session, bench_clock, meter.profile.supply.limits.restart_time.value)

    return [("association", reassociate_if_needed), ("alarm filter", lambda: objects.alarm_filter.write(original_filter))]


def test_oms_poll_unicast_after_restoration(meter, ac_source, bench_clock, usecase):
    supply = meter.profile.supply
    objects = SupplyObjects(meter)
    limits = supply.limits
    with usecase.step("1", AC_SOURCE, METER, f"supply cut for {limits.outage_length.value:g} s, then restored") as cut:
        cut.information += f" [{cut_supply(ac_source, limits.outage_length.value, bench_clock).how}]"
    with usecase.step("2", OMS, HEAD_END, f"poll meter {meter.id}: is it energized?"):
        pass
    with usecase.step("3", HEAD_END, METER, "associate; GET instantaneous voltage"):
        try:
            took = reassociate(meter.session, bench_clock, limits.restart_time.value)
        except DlmsError as exc:
            usecase.expect("meter answers after the restoration (diagnosis)", exc.diagnosis, "", article="5-4")
        volts, unit = objects.voltage.read()
        source_volts = ac_source.measure().voltage_v
    usecase.measure("time until the meter answered", took, limit=limits.restart_time)
    usecase.expect("voltage unit", unit, "V", article="5-4")
    usecase.measure("|meter voltage - source voltage| / source voltage", abs(volts - source_volts) / source_volts * 100,
                    limit=limits.restored_voltage_tolerance)
    with usecase.step("4", HEAD_END, OMS, f"meter {meter.id} energized"):
        pass


def test_oms_poll_multicast_after_restoration(meter, ac_source, bench_station, bench_clock, usecase):
    """Every meter on the bench's supply is polled after one outage; each must answer, and a
    silent one is named. With one meter on the bench this is a poll of one."""
    limits = meter.profile.supply.limits
    with usecase.step("1", AC_SOURCE, METER, f"supply of every meter cut for {limits.outage_length.value:g} s") as cut:
        outage = cut_supply(ac_source, limits.outage_length.value, bench_clock)
        cut.information += f" [{outage.how}]"
    # The meters this station reaches (a worker of a parallel run serves only its own positions).
    meters = [m for m in bench_station.meters.values() if m.links]
    with usecase.step("2", OMS, HEAD_END, f"poll {len(meters)} meter(s): {', '.join(m.id for m in meters)}"):
        pass
    answers: dict[str, str] = {}
    with usecase.step("3", HEAD_END, METER, "associate with each meter; GET clock.time"):
        for station_meter in meters:
            session = meter.session if station_meter.id == meter.id else bench_station.session(station_meter,
                                                                                               FrameTrace())
            try:
                reassociate(session, bench_clock, max(0.0, limits.restart_time.value
                                                      - seconds_between(bench_clock.now(), outage.ended)))
                Clock(session, station_meter.profile.objects.clock).read()
                answers[station_meter.id] = "answered"
            except DlmsError as exc:
                answers[station_meter.id] = exc.diagnosis
            finally:
                if session is not meter.session:
                    session.close()
    with usecase.step("4", HEAD_END, OMS, "meters energized / meters silent"):
        silent = {meter_id: answer for meter_id, answer in answers.items() if answer != "answered"}
    # One verdict naming every silent meter and why, not just the first.
    usecase.expect("meters silent after restoration (diagnosis)", silent, {}, article="5-4")


# A log larger than this is not filled by the bench (each clock SET logs two events).
MAX_LOG_TO_FILL = 1000


def test_standard_event_log_wraps_oldest_first(meter, bench_clock, usecase):
    log, codes = meter.standard_event_log, meter.events
    pair = [codes.clock_adjusted_old_time, codes.clock_adjusted_new_time]
    with usecase.step("1", HEAD_END, METER, "GET standard event log: buffer, entries_in_use, profile_entries"):
        rows, in_use, capacity = log.entries(), log.entries_in_use(), log.profile_entries()
    usecase.expect("entries_in_use = rows in the buffer", in_use, len(rows), article="5-4")
    usecase.expect("entries_in_use <= profile_entries", in_use <= capacity, True, article="5-4")
    if capacity > MAX_LOG_TO_FILL:
        pytest.skip(f"the log holds {capacity} entries: more than the bench fills ({MAX_LOG_TO_FILL})")
    sets = (capacity - in_use + 1) // 2
    with usecase.step("2", HEAD_END, METER, f"SET clock.time = reference time {sets} times (events 4/5 each) "
                                            "until the log is full"):
        for _ in range(sets):
            meter.clock.write(bench_clock.now(), meter.clock.time_zone())
        full = log.entries()
    usecase.expect("rows once filled", len(full), capacity, article="5-4")
    with usecase.step("3", HEAD_END, METER, "SET clock.time twice more; GET the buffer and entries_in_use"):
        for _ in range(2):
            meter.clock.write(bench_clock.now(), meter.clock.time_zone())
        wrapped, in_use = log.entries(), log.entries_in_use()
    usecase.expect("entries_in_use of a full log", in_use, capacity, article="5-4")
    usecase.expect("rows of a full log", len(wrapped), capacity, article="5-4")
    usecase.expect("the oldest 4 rows dropped, the rest kept in order (FIFO)", wrapped[:-4] == full[4:], True,
                   article="5-4")
    usecase.expect("the 4 newest rows are the last two adjustments", [e.code for e in wrapped[-4:]], pair * 2,
                   article="5-4")
