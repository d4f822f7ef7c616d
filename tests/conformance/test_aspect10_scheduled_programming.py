"""Aspect 10 (arts 4-21, 5-3): remote programming of a scheduled action, register-monitor thresholds and the
push destination.

Use case (Remote Programming of Smart Meter): the utility writes through the head-end
- a single action schedule's execution time: the scheduled script (end of billing) runs at that time on the
  meter's clock, not before and not late, sampled just before and just after on the bench clock;
- a register monitor's threshold on instantaneous active power: the bench's load below it runs nothing, above it
  runs the monitor's action (a push the bench's head-end receives), the power judged from the AC source;
- the push destination: the next push goes there and nowhere else.
Each write is read back and logged (event 47 or as the profile says); out-of-range and wrong-type values are refused
with nothing changed; the public client may not write.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from smmc_bench.cosem.common import seconds_between
from smmc_bench.cosem.profile_generic import BillingProfile, MeterTime
from smmc_bench.cosem.push import PushSetup
from smmc_bench.cosem.register_monitor import RegisterMonitor
from smmc_bench.cosem.schedule import ExecutionTime, ScriptRef, SingleActionSchedule, local_time
from smmc_bench.cosem.supply import SupplyObjects
from smmc_bench.drivers.dlms import DataType, Typed
from smmc_bench.drivers.dlms.errors import AssociationRejected, ServiceError
from smmc_bench.drivers.headend import HeadEndListener
from smmc_bench.plugin.supply import _head_end_settings, draw_power
from smmc_bench.safety.restore import restore_all

pytestmark = [pytest.mark.smmc_aspect(10), pytest.mark.smmc_ntd("4-21")]

HEAD_END = "Head-end (bench)"
CUSTOMER = "Customer client (bench, public SAP)"
METER = "Meter"
LOAD = "Load (bench)"
AC_SOURCE = "AC source (bench)"


def refusal(call) -> str:
    """The refusal's diagnosis, or '' when the meter accepted."""
    try:
        call()
    except ServiceError as exc:
        return exc.diagnosis or "refused"
    return ""


def changes(meter, before) -> int:
    code = meter.profile.readings.parameter_change_event
    return len([e for e in meter.standard_event_log.new_since(before) if e.code == code])


def public_write(meter, link_access, class_id: int, obis: str, attribute: int, value: Typed) -> str:
    """SET as the public client: the refusal ('' when accepted)."""
    session = link_access.session(meter.profile.clients.public_sap)  # the bench's own session waits
    try:
        session.connect()
        return refusal(lambda: session.set(class_id, obis, attribute, value))
    except AssociationRejected as exc:  # no association, no write (the association is aspect 3's subject)
        return f"association refused: {exc.diagnosis}"
    finally:
        link_access.resume()


def _typed_octets(raw: bytes) -> Typed:
    return Typed(DataType.OCTET_STRING, raw)


# -- the single action schedule -------------------------------------------------------------
@pytest.fixture
def schedule(meter):
    """The end-of-billing schedule; its execution times put back after the test."""
    view = SingleActionSchedule(meter.session, meter.profile.readings.scheduled.objects.single_action_schedule)
    original = view.execution_times()
    try:
        yield view
    finally:
        restore_all(f"meter {meter.id} single action schedule",
                    [("execution_time", lambda: view.execution_times() != original
                      and view.set_execution_times(original))])


def texts(times: list[ExecutionTime]) -> list[str]:
    return [t.text() for t in times]


def billing_of(meter) -> BillingProfile:
    objects = meter.profile.readings.account_move.objects
    return BillingProfile(meter.session, objects.billing_profile, meter.profile.objects.clock,
                          meter.profile.objects.active_energy_import, objects.billing_period_counter)


@pytest.mark.smmc_feature("single_action_schedule")
@pytest.mark.smmc_feature("account_move")
def test_scheduled_action_runs_at_its_time_not_before(meter, schedule, bench_clock, usecase):
    scheduled, move = meter.profile.readings.scheduled, meter.profile.readings.account_move
    tolerance = scheduled.schedule_tolerance
    billing, log = billing_of(meter), meter.standard_event_log
    clock = MeterTime(meter, bench_clock)
    with usecase.step("0", HEAD_END, METER, "GET executed_script, execution_time, billing profile, counter, "
                                            "standard event log"):
        script = schedule.script()
        deviation = meter.clock.time_zone()
        rows_before, log_before = billing.read(), log.entries()
        counter_before = int(meter.session.get(1, move.objects.billing_period_counter, 2))
    usecase.expect("executed_script (end-of-billing script)", script,
                   ScriptRef(move.objects.billing_script_table, move.objects.billing_script_id), article="4-21")
    # Whole seconds of meter time, far enough ahead that "at once" and "on time" look different.
    due = (clock.now() + timedelta(seconds=scheduled.schedule_lead.value)).replace(microsecond=0)
    entry = ExecutionTime.at(local_time(due, deviation))
    with usecase.step("1", HEAD_END, METER, f"SET execution_time = {local_time(due, deviation):%Y-%m-%d %H:%M:%S} "
                                            "(meter local time); GET it back, event log"):
        written_from = meter.clock.read().time
        schedule.set_execution_times([entry])
        written_to = meter.clock.read().time
        usecase.expect("execution_time read back", texts(schedule.execution_times()), [entry.text()],
                       article="4-21")
        logged = [e for e in meter.standard_event_log.new_since(log_before)
                  if e.code == meter.profile.readings.parameter_change_event]
    usecase.expect(f"event {meter.profile.readings.parameter_change_event} (parameters changed) logged once",
                   len(logged), 1, article="5-3")
    if logged:
        late = max(seconds_between(logged[0].time, written_to), seconds_between(written_from, logged[0].time), 0.0)
        usecase.measure("event stamp outside the write's time window", late,
                        limit=meter.limits.event_timestamp_tolerance)
    before = due - timedelta(seconds=2 * tolerance.value)
    with usecase.step("2", HEAD_END, METER, f"at {before:%H:%M:%S} (meter time, before the execution time): GET "
                                            "billing profile"):
        clock.sleep_until(before)
        early_rows = billing.read()[len(rows_before):]
        sampled_at = meter.clock.read().time
    usecase.expect("billing rows added before the execution time", [r.time.isoformat() for r in early_rows], [],
                   article="4-21")
    usecase.measure("before-sample taken ahead of the execution time (s)", seconds_between(due, sampled_at),
                    low=tolerance.value, unit="s", article="4-21")
    after = due + timedelta(seconds=tolerance.value)
    with usecase.step("3", METER, METER, f"at {after:%H:%M:%S}: GET billing profile, counter"):
        clock.sleep_until(after)
        rows = billing.read()
        counter_after = int(meter.session.get(1, move.objects.billing_period_counter, 2))
    added = rows[len(rows_before):] if rows[:len(rows_before)] == rows_before else rows[-1:]
    usecase.expect("billing rows added by the scheduled script", len(added), 1, article="4-21")
    usecase.expect("billing period counter advanced by one", counter_after,
                   (counter_before + 1) % int(meter.profile.readings.account_move.billing_counter_modulus.value),
                   article="4-21")
    if added:
        usecase.measure("|billing row stamp - execution time| (s)", abs(seconds_between(added[0].time, due)),
                        limit=tolerance)


@pytest.mark.smmc_feature("single_action_schedule")
def test_invalid_execution_times_are_refused(meter, schedule, link_access, usecase):
    log = meter.standard_event_log
    any_day = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
    attempts = [
        ("hour 24 (out of range)", [(bytes([24, 0, 0, 0xFF]), any_day)]),
        ("minute 60 (out of range)", [(bytes([1, 60, 0, 0xFF]), any_day)]),
        ("month 13 (out of range)", [(bytes([1, 0, 0, 0xFF]), bytes([0xFF, 0xFF, 13, 1, 0xFF]))]),
        ("day of week 8 (out of range)", [(bytes([1, 0, 0, 0xFF]), bytes([0xFF, 0xFF, 0xFF, 0xFF, 8]))]),
    ]
    typed = [(what, Typed(DataType.ARRAY, [Typed(DataType.STRUCTURE, [_typed_octets(t), _typed_octets(d)])
                                           for t, d in value])) for what, value in attempts]
    typed += [
        ("time of 3 octets (wrong type)", Typed(DataType.ARRAY, [Typed(DataType.STRUCTURE, [
            _typed_octets(bytes([1, 0, 0])), _typed_octets(any_day)])])),
        ("a visible-string (wrong type)", Typed(DataType.VISIBLE_STRING, b"01:00")),
        ("an entry of long-unsigned (wrong type)", Typed(DataType.ARRAY, [Typed(DataType.STRUCTURE, [
            Typed(DataType.LONG_UNSIGNED, 100), Typed(DataType.LONG_UNSIGNED, 1)])])),
    ]
    with usecase.step("0", HEAD_END, METER, "GET execution_time, standard event log"):
        before, before_log = schedule.execution_times(), log.entries()
    # A valid entry ahead of an invalid one: the whole array is refused, the valid entry not stored either.
    good = next(entry for entry in (ExecutionTime(bytes([hour, 17, 0, 0xFF]), any_day) for hour in range(3, 23))
                if entry.text() not in texts(before))
    typed += [(f"{good.text()} then hour 24 (one entry out of range)", Typed(DataType.ARRAY, [
        good.typed(), Typed(DataType.STRUCTURE, [_typed_octets(bytes([24, 0, 0, 0xFF])), _typed_octets(any_day)])]))]
    for index, (what, value) in enumerate(typed, start=1):
        with usecase.step(str(index), HEAD_END, METER, f"SET execution_time = {what}; GET it back"):
            refused = refusal(lambda: schedule.write_execution_times(value))
            usecase.expect(f"execution_time {what} refused", bool(refused), True, article="4-21")
            usecase.expect(f"after {what}: execution_time unchanged", texts(schedule.execution_times()),
                           texts(before), article="4-21")
    step = str(len(typed) + 1)
    with usecase.step(step, CUSTOMER, METER, "AARQ as the public client; SET execution_time = 01:00 every day"):
        refused = public_write(meter, link_access, 22, schedule.obis, 4, Typed(DataType.ARRAY, [
            ExecutionTime(bytes([1, 0, 0, 0xFF]), any_day).typed()]))
    usecase.expect("the public client's write refused", bool(refused), True, article="4-21")
    with usecase.step(str(len(typed) + 2), HEAD_END, METER, "GET execution_time, standard event log"):
        usecase.expect("execution_time unchanged after every refusal", texts(schedule.execution_times()),
                       texts(before), article="4-21")
        usecase.expect(f"event {meter.profile.readings.parameter_change_event} logged by a refused write",
                       changes(meter, before_log), 0, article="5-3")


# -- the register monitor ---------------------------------------------------------------------
@pytest.fixture
def monitor(meter):
    """The register monitor; its thresholds put back after the test."""
    view = RegisterMonitor(meter.session, meter.profile.readings.scheduled.objects.register_monitor)
    original = view.thresholds()
    try:
        yield view
    finally:
        restore_all(f"meter {meter.id} register monitor",
                    [("thresholds", lambda: view.thresholds() != original and view.set_thresholds(original))])


@pytest.mark.smmc_feature("register_monitor")
@pytest.mark.smmc_feature("alarm_push")
@pytest.mark.smmc_ntd("5-3")
def test_monitor_threshold_crossed_by_the_load_runs_its_action(meter, monitor, head_end, load, ac_source,
                                                              bench_clock, usecase):
    scheduled = meter.profile.readings.scheduled
    threshold = int(scheduled.monitor_threshold.value)
    margin = scheduled.monitor_margin.value / 100
    delay = scheduled.monitor_action_delay
    objects, log = SupplyObjects(meter), meter.standard_event_log
    power_obis = meter.profile.supply.objects.instantaneous_active_power
    with usecase.step("0", HEAD_END, METER, "GET monitored_value, actions, thresholds, standard event log"):
        monitored = monitor.monitored_value()
        actions = monitor.actions()
        before_log = log.entries()
    usecase.expect("monitored value (class, OBIS, attribute)", (monitored.class_id, monitored.obis,
                                                                 monitored.attribute), (3, power_obis, 2),
                   article="5-3")
    usecase.expect("action_up of the first threshold (script table, selector)",
                   actions[0].up if actions else None,
                   (scheduled.objects.push_script_table, scheduled.monitor_script_selector), article="5-3")
    below = threshold * (1 - margin)
    with usecase.step("1", LOAD, METER, f"load draws {below:.0f} W ({margin:.0%} below {threshold} W)"):
        draw_power(load, objects, below)
        bench_clock.sleep(1.0)
    with usecase.step("2", HEAD_END, METER, f"SET thresholds = [{threshold}] W; GET them back, event log"):
        monitor.set_thresholds([threshold])
        usecase.expect("thresholds read back", monitor.thresholds(), [threshold], article="5-3")
        usecase.expect(f"event {meter.profile.readings.parameter_change_event} logged", changes(meter, before_log), 1,
                       article="5-3")
    head_end.clear()
    with usecase.step("3", HEAD_END, METER, f"for {delay.value:g} s below the threshold: no push at the head-end"):
        pushed = head_end.wait_for(timeout_s=delay.value)
        power_below = ac_source.measure().power_w
        meter_below, _ = objects.active_power.read()
    usecase.measure("source power while below (W)", power_below, high=threshold, unit="W", article="5-3")
    usecase.measure("the monitored value (the meter's own power) while below (W)", meter_below, high=threshold,
                    unit="W", article="5-3")
    usecase.expect("monitor action run below the threshold (push received)", pushed is not None, False,
                   article="5-3")
    above = threshold * (1 + margin)
    with usecase.step("4", LOAD, METER, f"load draws {above:.0f} W ({margin:.0%} above {threshold} W)"):
        crossed_at = bench_clock.now()
        draw_power(load, objects, above)
    with usecase.step("5", METER, HEAD_END, "the monitor's action: push (DataNotification) to the head-end"):
        pushed = head_end.wait_for(lambda n: n.arrival >= crossed_at, timeout_s=delay.value)
        power_above = ac_source.measure().power_w
        meter_above, _ = objects.active_power.read()
    usecase.measure("source power while above (W)", power_above, low=threshold, unit="W", article="5-3")
    usecase.measure("the monitored value (the meter's own power) while above (W)", meter_above, low=threshold,
                    unit="W", article="5-3")
    usecase.expect("monitor action run on crossing the threshold (push received)", pushed is not None, True,
                   article="5-3")
    if pushed is not None:
        usecase.measure("time from the crossing to the push's arrival",
                        seconds_between(pushed.arrival, crossed_at), limit=delay)


@pytest.mark.smmc_feature("register_monitor")
@pytest.mark.smmc_ntd("5-3")
def test_invalid_monitor_thresholds_are_refused(meter, monitor, link_access, usecase):
    scheduled, log = meter.profile.readings.scheduled, meter.standard_event_log
    threshold = int(scheduled.monitor_threshold.value)
    attempts = [(f"[{v}] (out of range)", Typed(DataType.ARRAY, [Typed(DataType.DOUBLE_LONG, v)]))
                for v in scheduled.invalid_monitor_thresholds]
    attempts += [
        ("long-unsigned (wrong type)", Typed(DataType.ARRAY, [Typed(DataType.LONG_UNSIGNED, threshold)])),
        ("visible-string (wrong type)", Typed(DataType.ARRAY, [Typed(DataType.VISIBLE_STRING, b"1500")])),
        ("a bare double-long, not an array (wrong type)", Typed(DataType.DOUBLE_LONG, threshold)),
    ]
    with usecase.step("0", HEAD_END, METER, "GET thresholds, standard event log"):
        before, before_log = monitor.thresholds(), log.entries()
    for index, (what, value) in enumerate(attempts, start=1):
        with usecase.step(str(index), HEAD_END, METER, f"SET thresholds = {what}; GET them back"):
            refused = refusal(lambda: monitor.write_thresholds(value))
            usecase.expect(f"thresholds {what} refused", bool(refused), True, article="5-3")
            usecase.expect(f"after {what}: thresholds unchanged", monitor.thresholds(), before, article="5-3")
    with usecase.step(str(len(attempts) + 1), CUSTOMER, METER, f"AARQ as the public client; SET thresholds = "
                                                               f"[{threshold}]"):
        refused = public_write(meter, link_access, 21, monitor.obis, 2,
                               Typed(DataType.ARRAY, [Typed(DataType.DOUBLE_LONG, threshold)]))
    usecase.expect("the public client's write refused", bool(refused), True, article="5-3")
    with usecase.step(str(len(attempts) + 2), HEAD_END, METER, "GET thresholds, standard event log"):
        usecase.expect("thresholds unchanged after every refusal", monitor.thresholds(), before, article="5-3")
        usecase.expect(f"event {meter.profile.readings.parameter_change_event} logged by a refused write",
                       changes(meter, before_log), 0, article="5-3")


# -- the push destination ---------------------------------------------------------------------
@pytest.fixture
def second_head_end(bench_clock, bench_config):
    """Another listener of the bench's, where the test tells the meter to push next."""
    host, _, advertise = _head_end_settings(bench_config)
    listener = HeadEndListener(bench_clock, host, 0)
    listener.start()
    try:
        advertised = listener.destination if advertise is None else \
            f"{advertise.rpartition(':')[0]}:{listener.address[1]}"
        yield listener, advertised
    finally:
        listener.stop()


@pytest.mark.smmc_feature("alarm_push")
def test_push_destination_programmed_is_where_the_next_push_goes(meter, head_end, second_head_end, bench_clock,
                                                               usecase):
    listener, destination = second_head_end
    push = PushSetup(meter.session, meter.profile.supply.objects.alarm_push_setup)
    limit, log = meter.profile.readings.scheduled.push_delay, meter.standard_event_log
    with usecase.step("0", HEAD_END, METER, "GET send_destination (the bench's first head-end), event log"):
        before_log = log.entries()
        first = push.destination()
    with usecase.step("1", HEAD_END, METER, f"SET send_destination = {destination}; GET it back, event log"):
        push.set_destination(destination)
        usecase.expect("send_destination read back", push.destination(), destination, article="4-21")
        usecase.expect(f"event {meter.profile.readings.parameter_change_event} logged", changes(meter, before_log), 1,
                       article="5-3")
    head_end.clear()
    with usecase.step("2", HEAD_END, METER, "ACTION push setup push(0)"):
        requested = bench_clock.now()
        push.push()
    with usecase.step("3", METER, HEAD_END, f"the push reaches {destination}, and nothing reaches {first}"):
        arrived = listener.wait_for(lambda n: n.arrival >= requested, timeout_s=limit.value)
        strayed = head_end.wait_for(lambda n: n.arrival >= requested, timeout_s=0.0)
    usecase.expect("push received at the programmed destination", arrived is not None, True, article="4-21")
    usecase.expect("push received at the former destination", strayed is not None, False, article="4-21")
    if arrived is not None:
        usecase.measure("time from the push request to its arrival", seconds_between(arrived.arrival, requested),
                        limit=limit)


@pytest.mark.smmc_feature("alarm_push")
def test_invalid_push_destinations_are_refused(meter, head_end, link_access, usecase):
    push = PushSetup(meter.session, meter.profile.supply.objects.alarm_push_setup)
    log = meter.standard_event_log

    def destination(transport: Typed, address: Typed, message: Typed) -> Typed:
        return Typed(DataType.STRUCTURE, [transport, address, message])

    address = _typed_octets(head_end.destination.encode("ascii"))
    enum = lambda v: Typed(DataType.ENUM, v)  # noqa: E731
    attempts = [
        ("transport_service 200 (out of range)", destination(enum(200), address, enum(0))),
        ("message_type 200 (out of range)", destination(enum(0), address, enum(200))),
        ("transport_service as long-unsigned (wrong type)",
         destination(Typed(DataType.LONG_UNSIGNED, 0), address, enum(0))),
        ("a bare octet-string (wrong type)", address),
    ]
    with usecase.step("0", HEAD_END, METER, "GET send_destination, standard event log"):
        before, before_log = push.destination(), log.entries()
    for index, (what, value) in enumerate(attempts, start=1):
        with usecase.step(str(index), HEAD_END, METER, f"SET send_destination = {what}; GET it back"):
            refused = refusal(lambda: meter.session.set(40, push.obis, 3, value))
            usecase.expect(f"send_destination {what} refused", bool(refused), True, article="4-21")
            usecase.expect(f"after {what}: send_destination unchanged", push.destination(), before, article="4-21")
    with usecase.step(str(len(attempts) + 1), CUSTOMER, METER, "AARQ as the public client; SET send_destination"):
        refused = public_write(meter, link_access, 40, push.obis, 3,
                               destination(enum(0), _typed_octets(b"192.0.2.1:4059"), enum(0)))
    usecase.expect("the public client's write refused", bool(refused), True, article="4-21")
    with usecase.step(str(len(attempts) + 2), HEAD_END, METER, "GET send_destination, standard event log"):
        usecase.expect("send_destination unchanged after every refusal", push.destination(), before, article="4-21")
        usecase.expect(f"event {meter.profile.readings.parameter_change_event} logged by a refused write",
                       changes(meter, before_log), 0, article="5-3")
