"""Aspect 14 (art. 5-3): remote power limitation with the limiter (IC 71).

Use case (Remote power limitation): the head-end writes the limiter's
thresholds and durations (event 67); a load above threshold_active for less
than min_over_threshold_duration does not trip; for longer, the breaker opens
(output_state false, no current at the source) and event 65 is logged; below
the threshold for min_under_threshold_duration, event 66 is logged and the
breaker reconnects only as the disconnect control's mode allows; the emergency
profile switches threshold_active for its duration.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from smmc_bench.cosem.common import seconds_between
from smmc_bench.cosem.disconnect import ControlState, has_transition, restore_connected
from smmc_bench.cosem.limiter import write_limiter_settings
from smmc_bench.plugin.supply import draw_power, source_current_a
from smmc_bench.procedures import bench_datetime, reassociate, wait_until

pytestmark = [pytest.mark.smmc_aspect(14), pytest.mark.smmc_ntd("5-3"), pytest.mark.smmc_feature("limiter")]

HEAD_END = "Head-end (bench)"
METER = "Meter"
LOAD = "Load (bench)"
AC_SOURCE = "AC source (bench)"
POLL_S = 1.0


def trip_modes(profile) -> list[int]:
    """Control modes of the profile in which the limiter can open the breaker (transition g)."""
    return [m for m in profile.disconnector.control_modes if has_transition(m, "local_disconnect", ControlState.CONNECTED)]


def first_trip_mode(meter) -> int:
    modes = trip_modes(meter.profile)
    if not modes:
        pytest.skip("no control mode of the profile lets the limiter open the breaker (transition g)")
    return modes[0]


def test_limiter_parameters_written_and_read_back_with_event_67(meter, limiter, bench_clock, usecase):
    limits, codes = meter.profile.supply.limits, meter.profile.supply.events
    view = limiter.limiter
    with usecase.step("0", HEAD_END, METER, "GET limiter event log; GET clock.time"):
        before = limiter.limiter_event_log.entries()
        meter_before = meter.clock.read().time
    with usecase.step("1", HEAD_END, METER, "SET threshold_normal, threshold_emergency, min_over/under_threshold_duration"):
        write_limiter_settings(limiter.limiter, limits)
    with usecase.step("2", HEAD_END, METER, "GET the same attributes"):
        read_back = {
            "threshold_normal": (view.threshold_normal(), limits.limiter_threshold),
            "threshold_emergency": (view.threshold_emergency(), limits.limiter_emergency_threshold),
            "min_over_threshold_duration": (view.min_over_threshold_duration(),
                                            limits.limiter_min_over_threshold_duration),
            "min_under_threshold_duration": (view.min_under_threshold_duration(),
                                             limits.limiter_min_under_threshold_duration),
        }
        meter_after = meter.clock.read().time
    for name, (value, written) in read_back.items():
        usecase.expect(f"{name} read back", value, round(written.value), article="5-3")
    with usecase.step("3", HEAD_END, METER, "GET limiter event log"):
        added = limiter.limiter_event_log.new_since(before)
    changed = [e for e in added if e.code == codes.limiter_threshold_changed]
    usecase.expect(f"event {codes.limiter_threshold_changed} (limiter threshold changed) logged",
                   bool(changed), True, article="5-3")
    late = max(max(seconds_between(e.time, meter_after), seconds_between(meter_before, e.time), 0.0) for e in changed)
    usecase.measure("event 67 stamp outside the writes' time window", late,
                    limit=meter.limits.event_timestamp_tolerance)


def test_limiter_settings_survive_a_power_failure(meter, limiter, ac_source, bench_clock, usecase):
    """Settings written remotely are kept in non-volatile memory: an outage must not bring back others."""
    limits = meter.profile.supply.limits
    view = limiter.limiter
    outage = limits.outage_length.value
    with usecase.step("1", HEAD_END, METER, "SET the limiter settings; GET them back"):
        write_limiter_settings(view, limits)
        written = settings_of(view)
    with usecase.step("2", AC_SOURCE, METER, f"supply cut for {outage:g} s, then restored; associate again"):
        ac_source.dropout(outage, bench_clock)
        reassociate(meter.session, bench_clock, limits.restart_time.value)
    with usecase.step("3", HEAD_END, METER, "GET the limiter settings"):
        after = settings_of(view)
    usecase.expect("limiter settings after the power failure", after, written, article="5-3")


def settings_of(view) -> dict[str, int]:
    return {"threshold_normal": view.threshold_normal(), "threshold_emergency": view.threshold_emergency(),
            "min_over_threshold_duration": view.min_over_threshold_duration(),
            "min_under_threshold_duration": view.min_under_threshold_duration()}


def test_overload_shorter_than_min_over_does_not_trip(meter, limiter, load, bench_clock, usecase):
    limits = meter.profile.supply.limits
    dc = meter.disconnect_control
    mode = first_trip_mode(meter)
    short, over = limits.short_overload_length.value, limits.limiter_min_over_threshold_duration.value
    if short >= over:
        pytest.fail("profile: short_overload_length must be below limiter_min_over_threshold_duration")
    with usecase.step("0", HEAD_END, METER, f"precondition: control_mode = {mode}, connected, limits written"):
        restore_connected(dc, meter.profile.disconnector.control_modes, mode)
        write_limiter_settings(limiter.limiter, limits)
        draw_power(load, limiter, limits.underload_power.value)
        before = limiter.limiter_event_log.entries()
    with usecase.step("1", LOAD, METER, f"draw {limits.overload_power.value:g} W for {short:g} s"):
        draw_power(load, limiter, limits.overload_power.value)
        bench_clock.sleep(short)
        draw_power(load, limiter, limits.underload_power.value)
    watch = over + limits.limiter_trip_tolerance.value
    with usecase.step("2", HEAD_END, METER, f"GET output_state for {watch:g} s"):
        opened = wait_until(lambda: not dc.output_state(), bench_clock, watch, POLL_S)
    usecase.expect("breaker opened by a short overload", opened is not None, False, article="5-3")
    with usecase.step("3", HEAD_END, METER, "GET limiter event log"):
        logged = [e.code for e in limiter.limiter_event_log.new_since(before)]
    code = meter.profile.supply.events.limiter_threshold_exceeded
    usecase.expect(f"event {code} (threshold exceeded) logged", code in logged, False, article="5-3")


def test_min_over_threshold_duration_restarts_after_each_overload(meter, limiter, load, bench_clock, usecase):
    """Two overloads, each shorter than min_over_threshold_duration, with the load under the threshold between
    them: the duration counts from the second crossing, so the breaker must stay closed although the overloads
    together exceed it (a timer running on from the first crossing trips early)."""
    limits = meter.profile.supply.limits
    dc = meter.disconnect_control
    mode = first_trip_mode(meter)
    short, over = limits.short_overload_length.value, limits.limiter_min_over_threshold_duration.value
    tolerance = limits.limiter_trip_tolerance.value
    second = over - tolerance
    if not (2 * short < over and 2 * short > tolerance):
        pytest.fail("profile: need limiter_trip_tolerance < 2 * short_overload_length < min_over_threshold_duration")
    with usecase.step("0", HEAD_END, METER, f"precondition: control_mode = {mode}, connected, limits written"):
        restore_connected(dc, meter.profile.disconnector.control_modes, mode)
        write_limiter_settings(limiter.limiter, limits)
        draw_power(load, limiter, limits.underload_power.value)
        before = limiter.limiter_event_log.entries()
    with usecase.step("1", LOAD, METER, f"draw {limits.overload_power.value:g} W for {short:g} s, "
                      f"then {limits.underload_power.value:g} W for {short:g} s"):
        draw_power(load, limiter, limits.overload_power.value)
        bench_clock.sleep(short)
        draw_power(load, limiter, limits.underload_power.value)
        bench_clock.sleep(short)
    with usecase.step("2", LOAD, METER, f"draw {limits.overload_power.value:g} W for {second:g} s "
                      f"(< min_over_threshold_duration {over:g} s); GET output_state every {POLL_S:g} s"):
        draw_power(load, limiter, limits.overload_power.value)
        opened = wait_until(lambda: not dc.output_state(), bench_clock, second, POLL_S)
        draw_power(load, limiter, limits.underload_power.value)
    usecase.expect("breaker opened during the second overload (before min_over_threshold_duration from its start)",
                   opened is not None, False, article="5-3")
    with usecase.step("3", HEAD_END, METER, "GET output_state for min_over_threshold_duration + tolerance"):
        late = wait_until(lambda: not dc.output_state(), bench_clock, over + tolerance, POLL_S)
    usecase.expect("breaker opened after the load went under", late is not None, False, article="5-3")
    with usecase.step("4", HEAD_END, METER, "GET limiter event log"):
        logged = [e.code for e in limiter.limiter_event_log.new_since(before)]
    code = meter.profile.supply.events.limiter_threshold_exceeded
    usecase.expect(f"event {code} (threshold exceeded) logged", code in logged, False, article="5-3")


def test_sustained_overload_opens_the_breaker(meter, limiter, load, ac_source, bench_clock, usecase):
    supply = meter.profile.supply
    limits, codes = supply.limits, supply.events
    dc = meter.disconnect_control
    mode = first_trip_mode(meter)
    over = limits.limiter_min_over_threshold_duration.value
    allowed = over + limits.limiter_trip_tolerance.value
    with usecase.step("0", HEAD_END, METER, f"precondition: control_mode = {mode}, connected, limits written"):
        restore_connected(dc, meter.profile.disconnector.control_modes, mode)
        write_limiter_settings(limiter.limiter, limits)
        draw_power(load, limiter, limits.underload_power.value)
        before = limiter.limiter_event_log.entries()
        meter_ahead_s = seconds_between(meter.clock.read().time, bench_clock.now())  # to place event stamps
    with usecase.step("1", LOAD, METER, f"draw {limits.overload_power.value:g} W until the breaker opens"):
        draw_power(load, limiter, limits.overload_power.value)
        started = bench_clock.monotonic()
    with usecase.step("2", HEAD_END, METER, "GET output_state until false"):
        opened = wait_until(lambda: not dc.output_state(), bench_clock, allowed, POLL_S)
    usecase.expect("breaker opened by the sustained overload", opened is not None, True, article="5-3")
    usecase.measure("time from overload to output_state false", bench_clock.monotonic() - started
                    if opened is None else opened, low=over, high=allowed, unit="s", article="5-3")
    tripped = allowed if opened is None else opened
    usecase.record_series("power drawn by the load", "W",
                          [(-over, limits.underload_power.value), (0.0, limits.overload_power.value),
                           (tripped, 0.0), (tripped + over, 0.0)], article="5-3",
                          markers=[(over, "min_over_threshold_duration"), (tripped, "output_state false")])
    usecase.record_series("threshold_normal", "W", [(-over, limits.limiter_threshold.value),
                                                     (tripped + over, limits.limiter_threshold.value)])
    off = limits.current_off_threshold.value
    with usecase.step("3", AC_SOURCE, AC_SOURCE, f"measure current until below {off:g} A"):
        stopped = wait_until(lambda: source_current_a(ac_source) < off, bench_clock,
                             max(0.0, allowed - (bench_clock.monotonic() - started)), POLL_S)
        current = source_current_a(ac_source)
    usecase.measure("current at the source after the trip", current, limit=limits.current_off_threshold)
    usecase.expect("source current stopped within the trip time", stopped is not None, True, article="5-3")
    with usecase.step("4", HEAD_END, METER, "GET limiter event log"):
        added = limiter.limiter_event_log.new_since(before)
        logged = [e.code for e in added]
    usecase.expect(f"event {codes.limiter_threshold_exceeded} (limiter threshold exceeded) logged",
                   codes.limiter_threshold_exceeded in logged, True, article="5-3")
    # The event says when the limiter acted (the trip), not when the value first crossed the threshold.
    exceeded = next(e for e in added if e.code == codes.limiter_threshold_exceeded)
    trip_on_meter_clock = bench_datetime(bench_clock, started + tripped) + timedelta(seconds=meter_ahead_s)
    usecase.measure(f"|event {codes.limiter_threshold_exceeded} stamp - moment the breaker opened|",
                    abs(seconds_between(exceeded.time, trip_on_meter_clock)), limit=meter.limits.event_timestamp_tolerance)


def test_under_threshold_reconnects_as_the_control_mode_says(meter, limiter, load, bench_clock, usecase):
    supply = meter.profile.supply
    limits, codes = supply.limits, supply.events
    dc = meter.disconnect_control
    modes = trip_modes(meter.profile)
    if not modes:
        pytest.skip("no control mode of the profile lets the limiter open the breaker (transition g)")
    trip_within = limits.limiter_min_over_threshold_duration.value + limits.limiter_trip_tolerance.value
    settle = limits.limiter_min_under_threshold_duration.value + limits.limiter_reconnect_tolerance.value
    for mode in modes:
        expected = (ControlState.CONNECTED if has_transition(mode, "local_reconnect", ControlState.READY_FOR_RECONNECTION)
                    else ControlState.READY_FOR_RECONNECTION)
        with usecase.step(f"{mode}.0", HEAD_END, METER, f"precondition: control_mode = {mode}, connected, limits"):
            load.off()
            restore_connected(dc, meter.profile.disconnector.control_modes, mode)
            write_limiter_settings(limiter.limiter, limits)
            before = limiter.limiter_event_log.entries()
        with usecase.step(f"{mode}.1", LOAD, METER, f"draw {limits.overload_power.value:g} W until the breaker opens"):
            draw_power(load, limiter, limits.overload_power.value)
            opened = wait_until(lambda: not dc.output_state(), bench_clock, trip_within, POLL_S)
        usecase.expect(f"mode {mode}: breaker opened by the overload", opened is not None, True, article="5-3")
        under = limits.limiter_min_under_threshold_duration.value
        with usecase.step(f"{mode}.2", LOAD, METER, f"draw {limits.underload_power.value:g} W; GET output_state "
                                                    f"every {POLL_S:g} s for {settle:g} s"):
            draw_power(load, limiter, limits.underload_power.value)
            # Polled from the moment the load drops, so a reconnection before min_under shows as early.
            closed_after = wait_until(dc.output_state, bench_clock, settle, POLL_S)
        with usecase.step(f"{mode}.3", HEAD_END, METER, "GET limiter event log, control_state, output_state"):
            logged = [e.code for e in limiter.limiter_event_log.new_since(before)]
            state, output = dc.control_state(), dc.output_state()
        usecase.expect(f"mode {mode}: event {codes.limiter_threshold_ok} (limiter threshold ok) logged",
                       codes.limiter_threshold_ok in logged, True, article="5-3")
        usecase.expect(f"mode {mode}: control_state after min_under_threshold_duration", state, expected,
                       article="5-3")
        usecase.expect(f"mode {mode}: output_state", output, expected is ControlState.CONNECTED, article="5-3")
        if expected is ControlState.CONNECTED:
            usecase.measure(f"mode {mode}: time from load under threshold to reconnection",
                            settle * 2 if closed_after is None else closed_after,
                            low=under - POLL_S, high=settle, unit="s", article="5-3")
        else:
            usecase.expect(f"mode {mode}: breaker stayed open under threshold (no transition h)",
                           closed_after, None, article="5-3")


def first_change(read, bench_clock, started: float, due_s: float, tolerance_s: float, coarse_s: float) -> float | None:
    """Bench seconds (from `started`) at which `read()` first became true, sampled from now to due + tolerance.

    Coarse samples until shortly before the due time, then every tolerance/4: a switch well
    before the due time, or just before it, is seen as early, not taken as on time.
    """
    fine_from = due_s - 2 * tolerance_s
    while True:
        elapsed = bench_clock.monotonic() - started
        if read():
            return elapsed
        if elapsed >= due_s + tolerance_s:
            return None
        step = coarse_s if elapsed + coarse_s < fine_from else tolerance_s / 4
        bench_clock.sleep(min(step, due_s + tolerance_s - elapsed))


@pytest.mark.smmc_feature("limiter_emergency_profile")
def test_emergency_profile_activation_and_expiry(meter, limiter, bench_clock, usecase):
    supply = meter.profile.supply
    limits = supply.limits
    view = limiter.limiter
    tolerance = limits.emergency_switch_tolerance.value
    delay, duration = limits.emergency_activation_delay.value, limits.emergency_duration.value
    normal, emergency = round(limits.limiter_threshold.value), round(limits.limiter_emergency_threshold.value)
    profile_id = supply.limiter.emergency_profile_id
    with usecase.step("0", HEAD_END, METER, "SET thresholds; SET emergency_profile_group_id_list"):
        write_limiter_settings(limiter.limiter, limits)
        view.set_emergency_group_ids([profile_id])
    with usecase.step("1", HEAD_END, METER, f"SET emergency_profile: id {profile_id}, activation in {delay:g} s "
                                            f"of meter time, duration {duration:g} s"):
        reading = meter.clock.read()
        activation = reading.time + timedelta(seconds=delay)
        view.set_emergency_profile(profile_id, activation, round(duration), reading.raw.deviation)
        written_at = bench_clock.monotonic()
    with usecase.step("2", HEAD_END, METER, "GET threshold_active, emergency_profile_active before activation"):
        usecase.expect("threshold_active before activation", view.threshold_active(), normal, article="5-3")
        usecase.expect("emergency_profile_active before activation", view.emergency_profile_active(), False,
                       article="5-3")
    for phase, at, wanted in (("activation", delay, emergency), ("expiry", delay + duration, normal)):
        with usecase.step(f"3.{phase}", HEAD_END, METER, f"GET threshold_active from now until the {phase} "
                                                         f"+ {tolerance:g} s"):
            switched = first_change(lambda: view.threshold_active() == wanted, bench_clock, written_at, at,
                                    tolerance, coarse_s=max(tolerance, min(30.0, at / 20)))
        if switched is None:
            usecase.expect(f"threshold_active switched by the {phase} + {tolerance:g} s", False, True, article="5-3")
        early = at - switched
        what = f"switch time - {phase} time (s)" + (f": switched {early:.0f} s early" if early > tolerance else "")
        usecase.measure(what, switched - at, low=-tolerance, high=tolerance, unit="s", article="5-3")
        usecase.expect(f"emergency_profile_active after the {phase}", view.emergency_profile_active(),
                       wanted == emergency, article="5-3")


@pytest.mark.smmc_feature("limiter_emergency_profile")
def test_emergency_profile_for_another_group_does_not_apply(meter, limiter, usecase):
    supply = meter.profile.supply
    limits = supply.limits
    view = limiter.limiter
    normal = round(limits.limiter_threshold.value)
    profile_id = supply.limiter.emergency_profile_id
    other_group = (profile_id + 1) % 0x10000
    with usecase.step("0", HEAD_END, METER, f"SET thresholds; SET emergency_profile_group_id_list = [{other_group}]"):
        write_limiter_settings(limiter.limiter, limits)
        view.set_emergency_group_ids([other_group])
    with usecase.step("1", HEAD_END, METER, f"SET emergency_profile: id {profile_id}, active since 10 s ago, "
                                            f"duration {limits.emergency_duration.value:g} s"):
        reading = meter.clock.read()
        view.set_emergency_profile(profile_id, reading.time - timedelta(seconds=10),
                                   round(limits.emergency_duration.value), reading.raw.deviation)
    with usecase.step("2", HEAD_END, METER, "GET threshold_active, emergency_profile_active"):
        usecase.expect(f"threshold_active with profile {profile_id} not in the group list", view.threshold_active(),
                       normal, article="5-3")
        usecase.expect("emergency_profile_active", view.emergency_profile_active(), False, article="5-3")


@pytest.mark.smmc_feature("limiter_emergency_profile")
def test_active_emergency_threshold_is_supervised(meter, limiter, load, bench_clock, usecase):
    """With the emergency profile active, a load between threshold_emergency and threshold_normal is an
    overload: the breaker opens after min_over_threshold_duration (reporting the emergency threshold is not
    enough, the limiter must supervise it)."""
    supply = meter.profile.supply
    limits = supply.limits
    view = limiter.limiter
    dc = meter.disconnect_control
    mode = first_trip_mode(meter)
    normal, emergency = limits.limiter_threshold.value, limits.limiter_emergency_threshold.value
    over, tolerance = limits.limiter_min_over_threshold_duration.value, limits.limiter_trip_tolerance.value
    if not (limits.underload_power.value < emergency < normal):
        pytest.fail("profile: need underload_power < limiter_emergency_threshold < limiter_threshold")
    if limits.emergency_duration.value <= over + tolerance + 10:
        pytest.fail("profile: emergency_duration must outlast min_over_threshold_duration + limiter_trip_tolerance")
    between = (normal + emergency) / 2
    profile_id = supply.limiter.emergency_profile_id
    with usecase.step("0", HEAD_END, METER, f"precondition: control_mode = {mode}, connected, limits written, "
                                            f"{limits.underload_power.value:g} W"):
        restore_connected(dc, meter.profile.disconnector.control_modes, mode)
        write_limiter_settings(view, limits)
        draw_power(load, limiter, limits.underload_power.value)
        view.set_emergency_group_ids([profile_id])
        before = limiter.limiter_event_log.entries()
    with usecase.step("1", HEAD_END, METER, f"SET emergency_profile: id {profile_id}, active since 10 s ago, "
                                            f"duration {limits.emergency_duration.value:g} s"):
        reading = meter.clock.read()
        view.set_emergency_profile(profile_id, reading.time - timedelta(seconds=10),
                                   round(limits.emergency_duration.value), reading.raw.deviation)
    with usecase.step("2", HEAD_END, METER, "GET emergency_profile_active, threshold_active"):
        usecase.expect("emergency_profile_active", view.emergency_profile_active(), True, article="5-3")
        usecase.expect("threshold_active", view.threshold_active(), round(emergency), article="5-3")
    with usecase.step("3", LOAD, METER, f"draw {between:g} W (between the emergency and the normal threshold); "
                                        f"GET output_state every {POLL_S:g} s for {over + tolerance:g} s"):
        draw_power(load, limiter, between)
        opened = wait_until(lambda: not dc.output_state(), bench_clock, over + tolerance, POLL_S)
        draw_power(load, limiter, limits.underload_power.value)
    usecase.expect("breaker opened by a load over threshold_emergency", opened is not None, True, article="5-3")
    usecase.measure("time from overload to trip", opened, low=over - POLL_S, high=over + tolerance, unit="s",
                    article="5-3")
    with usecase.step("4", HEAD_END, METER, "GET limiter event log"):
        logged = [e.code for e in limiter.limiter_event_log.new_since(before)]
    code = supply.events.limiter_threshold_exceeded
    usecase.expect(f"event {code} (threshold exceeded) logged", code in logged, True, article="5-3")
