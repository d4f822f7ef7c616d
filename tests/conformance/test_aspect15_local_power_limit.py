"""Aspect 15 (art. 5-3): local power limitation.

Use case (Local power limitation): a technician sets the limiter through the
meter's optical port, in a control mode where a local trip waits for a person
(transition e, no h). An overload longer than min_over_threshold_duration
trips the breaker locally (event 64, ready_for_reconnection, no current); the
head-end cannot reconnect it; only the local action, the customer's button,
does (event 61 or 69).

Runs on meter links whose kind is "optical" (the `links` marker deselects the
other links); should it run on another link, it skips saying why.
"""
from __future__ import annotations

import pytest
from smmc_bench.cosem.disconnect import ControlState, has_transition, restore_connected
from smmc_bench.cosem.limiter import write_limiter_settings
from smmc_bench.drivers.dlms.errors import ServiceError
from smmc_bench.links import link_label
from smmc_bench.plugin.supply import draw_power, source_current_a
from smmc_bench.procedures import wait_until

pytestmark = [pytest.mark.smmc_aspect(15), pytest.mark.smmc_ntd("5-3"), pytest.mark.smmc_feature("limiter"),
              pytest.mark.smmc_feature("local_limiter"), pytest.mark.smmc_links("optical")]

TECHNICIAN = "Technician (bench, optical port)"
HEAD_END = "Head-end (bench)"
METER = "Meter"
LOAD = "Load (bench)"
AC_SOURCE = "AC source (bench)"
CUSTOMER = "Customer (local operator)"
POLL_S = 1.0


@pytest.fixture
def through_optical_port(meter):
    """The meter under test reached through its optical port, or a skip that says why not."""
    if meter.link.kind == "optical":
        return meter
    optical = [link_label(link) for link in meter.station_meter.links if link.kind == "optical"]
    if optical:
        pytest.skip(f"local limits are set through the optical port: this test runs on meter {meter.id}'s "
                    f"optical link ({', '.join(optical)}), not on its {meter.link.kind} link")
    pytest.skip(f"meter {meter.id} declares no optical link in bench.toml; the local limits are set through "
                f"the optical port")


def test_local_trip_and_only_the_local_action_reconnects(through_optical_port, limiter, load, ac_source,
                                                         local_operator, bench_clock, usecase):
    meter = through_optical_port
    supply = meter.profile.supply
    limits, codes = supply.limits, supply.events
    dc = meter.disconnect_control
    mode = supply.limiter.local_control_mode
    if mode not in meter.profile.disconnector.control_modes:
        pytest.fail(f"profile: limiter.local_control_mode {mode} is not among disconnector.control_modes")
    trip_within = limits.limiter_min_over_threshold_duration.value + limits.limiter_trip_tolerance.value
    settle = limits.limiter_min_under_threshold_duration.value + limits.limiter_reconnect_tolerance.value
    off = limits.current_off_threshold.value
    with usecase.step("0", TECHNICIAN, METER, f"through the optical port: control_mode = {mode}, connected; "
                                              f"SET limiter thresholds and durations; GET them back"):
        restore_connected(dc, meter.profile.disconnector.control_modes, mode)
        write_limiter_settings(limiter.limiter, limits)
        usecase.expect("threshold_normal read back", limiter.limiter.threshold_normal(),
                       round(limits.limiter_threshold.value), article="5-3")
        usecase.expect("min_over_threshold_duration read back", limiter.limiter.min_over_threshold_duration(),
                       round(limits.limiter_min_over_threshold_duration.value), article="5-3")
        before = limiter.limiter_event_log.entries()
    over = limits.limiter_min_over_threshold_duration.value
    with usecase.step("1", LOAD, AC_SOURCE, f"draw {limits.overload_power.value:g} W; measure the current at the "
                                            f"source every {POLL_S:g} s until it stops"):
        draw_power(load, limiter, limits.overload_power.value)
        # Sampled from the overload's start, so a trip before min_over_threshold_duration shows as early.
        opened = wait_until(lambda: source_current_a(ac_source) < off, bench_clock, trip_within, POLL_S)
        output = dc.output_state()
    usecase.measure("time from overload to the current stopping at the source",
                    trip_within * 2 if opened is None else opened, low=over - POLL_S, high=trip_within,
                    unit="s", article="5-3")
    usecase.expect(f"output_state once the source current stopped (breaker {'open' if opened is not None else 'closed'})",
                   output, False, article="5-3")
    with usecase.step("2", TECHNICIAN, METER, "GET control_state; GET limiter event log"):
        usecase.expect("control_state after the local trip", dc.control_state(),
                       ControlState.READY_FOR_RECONNECTION, article="5-3")
        logged = [e.code for e in limiter.limiter_event_log.new_since(before)]
    usecase.expect(f"event {codes.local_disconnect} (local disconnection) logged",
                   codes.local_disconnect in logged, True, article="5-3")
    usecase.expect(f"event {codes.limiter_threshold_exceeded} (limiter threshold exceeded) logged",
                   codes.limiter_threshold_exceeded in logged, True, article="5-3")
    with usecase.step("3", AC_SOURCE, AC_SOURCE, "measure the current through the meter"):
        usecase.measure("current at the source while tripped", source_current_a(ac_source),
                        limit=limits.current_off_threshold)
    with usecase.step("4", LOAD, METER, f"draw {limits.underload_power.value:g} W for {settle:g} s"):
        draw_power(load, limiter, limits.underload_power.value)
        bench_clock.sleep(settle)
        usecase.expect("control_state with the load back under the threshold", dc.control_state(),
                       ControlState.READY_FOR_RECONNECTION, article="5-3")
    with usecase.step("5", HEAD_END, METER, "ACTION remote_reconnect (not a local action)"):
        try:
            dc.remote_reconnect()
            refused = False
        except ServiceError:
            refused = True
    usecase.expect("remote_reconnect refused in ready_for_reconnection", refused, True, article="5-3")
    usecase.expect("output_state after the remote attempt", dc.output_state(), False, article="5-3")
    with usecase.step("6", CUSTOMER, METER, f"press the reconnect button ({local_operator.how})"):
        before_button = limiter.limiter_event_log.entries()
        local_operator.press_reconnect()
    with usecase.step("7", TECHNICIAN, METER, "GET control_state, output_state; GET limiter event log"):
        closed = wait_until(dc.output_state, bench_clock, limits.current_on_time.value, POLL_S)
        usecase.expect("breaker closed by the local action", closed is not None, True, article="5-3")
        usecase.expect("control_state after the local action", dc.control_state(), ControlState.CONNECTED,
                       article="5-3")
        logged = [e.code for e in limiter.limiter_event_log.new_since(before_button)]
    usecase.expect(f"event {codes.manual_reconnect} or {codes.local_reconnect} (local reconnection) logged",
                   bool({codes.manual_reconnect, codes.local_reconnect} & set(logged)), True, article="5-3")
    with usecase.step("8", AC_SOURCE, AC_SOURCE, "measure the current through the meter"):
        flowing = wait_until(lambda: source_current_a(ac_source) > off, bench_clock,
                             limits.current_on_time.value, POLL_S)
    usecase.expect("load current flows again after the local action", flowing is not None, True, article="5-3")


def test_button_does_not_undo_a_remote_disconnection(through_optical_port, limiter, load, ac_source,
                                                     local_operator, bench_clock, usecase):
    """The customer's button reconnects only from ready_for_reconnection (Blue Book IC 70, transition e): after
    a remote disconnection (control_state disconnected) pressing it must leave the breaker open."""
    meter = through_optical_port
    supply = meter.profile.supply
    limits = supply.limits
    dc = meter.disconnect_control
    mode = supply.limiter.local_control_mode
    if mode not in meter.profile.disconnector.control_modes:
        pytest.fail(f"profile: limiter.local_control_mode {mode} is not among disconnector.control_modes")
    if not has_transition(mode, "remote_disconnect", ControlState.CONNECTED):
        pytest.skip(f"control mode {mode} has no remote disconnection from connected")
    off = limits.current_off_threshold.value
    watch = limits.current_on_time.value
    with usecase.step("0", TECHNICIAN, METER, f"control_mode = {mode}, connected; draw "
                                              f"{limits.underload_power.value:g} W"):
        restore_connected(dc, meter.profile.disconnector.control_modes, mode)
        draw_power(load, limiter, limits.underload_power.value)
    with usecase.step("1", HEAD_END, METER, "ACTION remote_disconnect; GET control_state, output_state"):
        dc.remote_disconnect()
        opened = wait_until(lambda: not dc.output_state(), bench_clock, watch, POLL_S)
        usecase.expect("breaker opened by the remote disconnection", opened is not None, True, article="5-3")
        usecase.expect("control_state after remote_disconnect", dc.control_state(), ControlState.DISCONNECTED,
                       article="5-3")
    with usecase.step("2", CUSTOMER, METER, f"press the reconnect button ({local_operator.how})"):
        local_operator.press_reconnect()
    with usecase.step("3", AC_SOURCE, AC_SOURCE, f"measure the current at the source every {POLL_S:g} s for "
                                                 f"{watch:g} s"):
        flowing = wait_until(lambda: source_current_a(ac_source) > off, bench_clock, watch, POLL_S)
    usecase.expect("load current flows after the button press", flowing is not None, False, article="5-3")
    with usecase.step("4", TECHNICIAN, METER, "GET control_state, output_state"):
        usecase.expect("control_state after the button press", dc.control_state(), ControlState.DISCONNECTED,
                       article="5-3")
        usecase.expect("output_state after the button press", dc.output_state(), False, article="5-3")
