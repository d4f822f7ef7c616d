"""Aspect 6 (art. 3-3): remote connection and disconnection of the supply.

Use case (Meter Remote Connect / Disconnect): the CIS asks the head-end to
disconnect or reconnect a customer; the head-end invokes the disconnect control
(IC 70) methods; the meter opens or closes its breaker as its control mode says,
reports the new output and control state, and logs events 62 / 63. On a bench
with an AC source and a load, the current the source delivers stops after the
disconnection and flows again after the reconnection.
"""
from __future__ import annotations

import pytest
from smmc_bench.cosem.common import seconds_between
from smmc_bench.cosem.disconnect import (
    MODES_WITH_DIRECT_RECONNECT,
    ControlState,
    expected_transition,
    restore_connected,
)
from smmc_bench.drivers.dlms.errors import ServiceError
from smmc_bench.plugin.supply import EmulatedButton, optional_load, source_current_a
from smmc_bench.procedures import wait_until
from smmc_bench.safety.restore import restore_all

pytestmark = [pytest.mark.smmc_aspect(6), pytest.mark.smmc_ntd("3-3"), pytest.mark.smmc_feature("disconnector")]

CIS = "CIS"
HEAD_END = "Head-end (bench)"
METER = "Meter"
AC_SOURCE = "AC source (bench)"
LOAD = "Load (bench)"
@pytest.fixture
def disconnector(meter, bench_station):
    """The disconnect control, left connected and in its original control mode whatever the test does."""
    dc = meter.disconnect_control
    original_mode = dc.control_mode()
    emulator = bench_station.emulator(meter.id)
    button = EmulatedButton(emulator).press_reconnect if emulator is not None else None
    try:
        yield dc
    finally:
        restore_all(f"meter {meter.id} disconnect control", [
            ("breaker reconnected, control mode restored",
             lambda: restore_connected(dc, meter.profile.disconnector.control_modes, original_mode, button)),
        ], state=lambda: (f"output_state {dc.output_state()}, control_state {dc.control_state().name}, "
                          f"control_mode {dc.control_mode()} (was {original_mode})"))


def wait_for_output(dc, wanted: bool, limit_s: float, bench_clock) -> float:
    """Poll output_state until it is `wanted`; return the bench seconds it took (or more than the limit)."""
    start = bench_clock.monotonic()
    while True:
        if dc.output_state() is wanted:
            return bench_clock.monotonic() - start
        elapsed = bench_clock.monotonic() - start
        if elapsed > limit_s:
            return elapsed
        bench_clock.sleep(min(1.0, limit_s / 10))


def current_during(ac_source, bench_clock, hold_s: float, samples: int, off_a: float) -> tuple[float, float | None]:
    """Sample the source current `samples` times evenly through `hold_s` of bench time.

    Returns the largest current seen and the bench second (from the start) it first
    reached `off_a`, None if it never did: a breaker that falls closed mid-window shows.
    """
    start, peak, first_on = bench_clock.monotonic(), 0.0, None
    for index in range(1, samples + 1):
        bench_clock.sleep(max(0.0, start + hold_s * index / samples - bench_clock.monotonic()))
        current = source_current_a(ac_source)
        peak = max(peak, current)
        if current >= off_a and first_on is None:
            first_on = bench_clock.monotonic() - start
    return peak, first_on


def remote_modes(profile) -> list[int]:
    return [m for m in profile.disconnector.control_modes if m != 0]


def test_remote_disconnect(meter, disconnector, bench_clock, usecase):
    dc, log = disconnector, meter.disconnector_event_log
    limits = meter.limits
    modes = remote_modes(meter.profile)
    if not modes:
        pytest.skip("the profile declares no control mode that allows remote disconnection")
    with usecase.step("0", HEAD_END, METER, f"precondition: control_mode = {modes[0]}, breaker connected"):
        restore_connected(dc, meter.profile.disconnector.control_modes, modes[0])
        before = log.entries()
        meter_time_before = meter.clock.read().time
    with usecase.step("1", CIS, HEAD_END, "disconnect request (EndDeviceControls)"):
        pass
    with usecase.step("2", HEAD_END, METER, "ACTION disconnect_control.remote_disconnect"):
        dc.remote_disconnect()
    with usecase.step("3", HEAD_END, METER, "GET output_state until false"):
        took = wait_for_output(dc, False, limits.disconnect_operation_time.value, bench_clock)
    usecase.measure("time for output_state to become false", took, limit=limits.disconnect_operation_time)
    with usecase.step("4", HEAD_END, METER, "GET output_state, control_state"):
        usecase.expect("output_state", dc.output_state(), False, article="3-3")
        usecase.expect("control_state", dc.control_state(), ControlState.DISCONNECTED, article="3-3")
        meter_time_after = meter.clock.read().time
    with usecase.step("5", HEAD_END, METER, "GET disconnector event log"):
        added = log.new_since(before)
    event = next((e for e in added if e.code == meter.events.remote_disconnect), None)
    usecase.expect(f"event {meter.events.remote_disconnect} (remote disconnection) logged",
                   event is not None, True, article="3-3")
    late = max(seconds_between(event.time, meter_time_after), seconds_between(meter_time_before, event.time), 0.0)
    usecase.measure("event 62 stamp outside the action's time window", late,
                    limit=limits.event_timestamp_tolerance)
    with usecase.step("6", HEAD_END, CIS, "disconnect confirmed (EndDeviceEvents)"):
        pass


def test_no_energy_registered_while_disconnected(request, meter, disconnector, bench_clock, usecase):
    dc, limits = disconnector, meter.limits
    modes = remote_modes(meter.profile)
    if not modes:
        pytest.skip("the profile declares no control mode that allows remote disconnection")
    watch = limits.disconnected_observation_time
    load = optional_load(request)
    if load is None:
        pytest.skip("the bench has no load: a meter with nothing to meter registers nothing either way")
    with usecase.step("0", HEAD_END, METER, f"precondition: control_mode = {modes[0]}, breaker connected, "
                                            "load drawing"):
        restore_connected(dc, meter.profile.disconnector.control_modes, modes[0])
        load.set_current(meter.profile.supply.limits.test_load_current.value)
        load.on()
    with usecase.step("1", HEAD_END, METER, "ACTION remote_disconnect; GET output_state; GET active energy import"):
        dc.remote_disconnect()
        wait_for_output(dc, False, limits.disconnect_operation_time.value, bench_clock)
        usecase.expect("output_state", dc.output_state(), False, article="3-3")
        start_value, unit = meter.active_energy_import.read()
    with usecase.step("1.1", HEAD_END, METER, f"SET control_mode = {modes[0]} again while disconnected "
                                              "(a reprogramming must not move the contacts)"):
        dc.set_control_mode(modes[0])
    ac_source = request.getfixturevalue("ac_source")
    off = meter.profile.supply.limits.current_off_threshold.value
    samples = max(2, min(60, round(watch.value / 15)))
    with usecase.step("2", AC_SOURCE, AC_SOURCE, f"measure the current {samples} times through "
                                                 f"{watch.value:g} {watch.unit}; GET active energy import"):
        peak, first_on = current_during(ac_source, bench_clock, watch.value, samples, off)
        end_value, end_unit = meter.active_energy_import.read()
        state = dc.output_state()
    what = "largest current at the source while disconnected"
    if first_on is not None:
        what += (f" (breaker re-closed at +{first_on:.0f} s while output_state reports "
                 f"{str(state).lower()})")
    usecase.measure(what, peak,
                    limit=meter.profile.supply.limits.current_off_threshold)
    usecase.expect("output_state at the end of the window", state, False, article="3-3")
    usecase.expect("energy register unit", end_unit, unit, article="3-3")
    usecase.measure(f"active energy registered while disconnected ({unit})", end_value - start_value,
                    limit=limits.energy_while_disconnected)


def test_remote_reconnect_follows_control_mode(request, meter, disconnector, bench_clock, usecase):
    dc, log = disconnector, meter.disconnector_event_log
    modes = remote_modes(meter.profile)
    if not modes:
        pytest.skip("the profile declares no control mode that allows remote reconnection")
    supply_limits = meter.profile.supply.limits
    load = optional_load(request)
    ac_source = request.getfixturevalue("ac_source") if load is not None else None
    if load is not None:
        load.set_current(supply_limits.test_load_current.value)
        load.on()
    for mode in modes:
        expected = expected_transition(mode, "remote_reconnect", ControlState.DISCONNECTED)
        with usecase.step(f"{mode}.0", HEAD_END, METER, f"precondition: control_mode = {mode}, disconnected"):
            restore_connected(dc, meter.profile.disconnector.control_modes, mode)
            dc.remote_disconnect()
            before = log.entries()
        with usecase.step(f"{mode}.1", HEAD_END, METER, "ACTION disconnect_control.remote_reconnect"):
            dc.remote_reconnect()
        with usecase.step(f"{mode}.2", HEAD_END, METER, "GET control_state, output_state"):
            took = wait_for_output(dc, expected is ControlState.CONNECTED, meter.limits.disconnect_operation_time.value,
                                   bench_clock)
            usecase.expect(f"mode {mode}: control_state after remote_reconnect", dc.control_state(), expected,
                           article="3-3")
            output = dc.output_state()
            usecase.expect(f"mode {mode}: output_state after remote_reconnect", output,
                           expected is ControlState.CONNECTED, article="3-3")
        if ac_source is not None:
            with usecase.step(f"{mode}.2b", AC_SOURCE, AC_SOURCE, "measure the current through the meter"):
                current = source_current_a(ac_source)
            flowing = current >= supply_limits.current_off_threshold.value
            usecase.expect(f"mode {mode}: current at the source ({current:.3g} A) agrees with output_state "
                           f"{str(output).lower()} in {expected.name}", flowing, output, article="3-3")
        usecase.measure(f"mode {mode}: time for output_state to settle", took,
                        limit=meter.limits.disconnect_operation_time)
        with usecase.step(f"{mode}.3", HEAD_END, METER, "GET disconnector event log"):
            logged = [e.code for e in log.new_since(before)]
        usecase.expect(f"mode {mode}: event {meter.events.remote_reconnect} (remote reconnection) logged",
                       meter.events.remote_reconnect in logged, True, article="3-3")


# A trigger that asks for the state the breaker is already in is a no-op, not a transition.
NO_OPS = {("remote_disconnect", ControlState.DISCONNECTED), ("remote_reconnect", ControlState.CONNECTED)}


def forbidden_case(mode: int) -> tuple[list[str], str] | None:
    """Remote triggers that reach a state from 'connected', and a trigger the mode forbids there."""
    paths: list[list[str]] = [[], ["remote_disconnect"], ["remote_disconnect", "remote_reconnect"]]
    for path in paths:
        state: ControlState | None = ControlState.CONNECTED
        for trigger in path:
            state = expected_transition(mode, trigger, state)
            if state is None:
                break
        if state is None:
            continue
        for trigger in ("remote_disconnect", "remote_reconnect"):
            if (trigger, state) not in NO_OPS and expected_transition(mode, trigger, state) is None:
                return path, trigger
    return None


def test_forbidden_transition_rejected(meter, disconnector, usecase):
    dc = disconnector
    cases = [(m, forbidden_case(m)) for m in meter.profile.disconnector.control_modes]
    cases = [(m, case) for m, case in cases if case]
    if not cases:
        pytest.skip("no control mode of the profile forbids a remotely reachable transition")
    for mode, (path, trigger) in cases:
        with usecase.step(f"{mode}.0", HEAD_END, METER,
                          f"precondition: control_mode = {mode}, then {' + '.join(path) or 'nothing'}"):
            restore_connected(dc, meter.profile.disconnector.control_modes, mode)
            for step in path:
                dc.invoke(step)
            state, output = dc.control_state(), dc.output_state()
            before = meter.disconnector_event_log.entries()
        with usecase.step(f"{mode}.1", HEAD_END, METER, f"ACTION {trigger} (forbidden in mode {mode} from {state.name})"):
            try:
                dc.invoke(trigger)
                refused = False
            except ServiceError:
                refused = True
        usecase.expect(f"mode {mode}: {trigger} from {state.name} refused", refused, True, article="3-3")
        with usecase.step(f"{mode}.2", HEAD_END, METER, "GET control_state, output_state"):
            usecase.expect(f"mode {mode}: control_state unchanged", dc.control_state(), state, article="3-3")
            usecase.expect(f"mode {mode}: output_state unchanged", dc.output_state(), output, article="3-3")
        with usecase.step(f"{mode}.3", HEAD_END, METER, "GET disconnector event log"):
            logged = [e.code for e in meter.disconnector_event_log.new_since(before)
                      if e.code in (meter.events.remote_disconnect, meter.events.remote_reconnect)]
        usecase.expect(f"mode {mode}: events 62/63 logged by the refused {trigger}", logged, [], article="3-3")


def test_source_current_follows_the_breaker(meter, disconnector, ac_source, load, bench_clock, usecase):
    dc = disconnector
    limits = meter.profile.supply.limits
    direct = [m for m in MODES_WITH_DIRECT_RECONNECT if m in meter.profile.disconnector.control_modes]
    if not direct:
        pytest.skip("no control mode of the profile reconnects remotely (transition d): the bench cannot "
                    "bring the current back without a person")
    drawn = limits.test_load_current.value
    flowing_at = drawn * (1 - limits.load_current_tolerance.value / 100)
    off = limits.current_off_threshold.value
    with usecase.step("0", HEAD_END, METER, f"precondition: control_mode = {direct[0]}, breaker connected"):
        restore_connected(dc, meter.profile.disconnector.control_modes, direct[0])
    with usecase.step("1", LOAD, METER, f"draw {drawn:g} A; AC source measures the current"):
        load.set_current(drawn)
        load.on()
        before = source_current_a(ac_source)
    usecase.measure("current at the source before the disconnection", before, low=flowing_at, unit="A",
                    article="3-3")
    with usecase.step("2", HEAD_END, METER, "ACTION disconnect_control.remote_disconnect"):
        dc.remote_disconnect()
    with usecase.step("3", AC_SOURCE, AC_SOURCE, f"measure the current until below {off:g} A"):
        stopped = wait_until(lambda: source_current_a(ac_source) < off, bench_clock, limits.current_off_time.value,
                             min(1.0, limits.current_off_time.value / 10))
        after = source_current_a(ac_source)
    usecase.measure("current at the source after remote_disconnect", after, limit=limits.current_off_threshold)
    usecase.measure("time until the current stopped", limits.current_off_time.value * 2 if stopped is None else stopped,
                    limit=limits.current_off_time)
    with usecase.step("4", HEAD_END, METER, "ACTION disconnect_control.remote_reconnect"):
        dc.remote_reconnect()
    with usecase.step("5", AC_SOURCE, AC_SOURCE, f"measure the current until at least {flowing_at:g} A"):
        back = wait_until(lambda: source_current_a(ac_source) >= flowing_at, bench_clock,
                          limits.current_on_time.value, min(1.0, limits.current_on_time.value / 10))
        again = source_current_a(ac_source)
    usecase.measure("current at the source after remote_reconnect", again, low=flowing_at, unit="A", article="3-3")
    usecase.measure("time until the current flowed again", limits.current_on_time.value * 2 if back is None else back,
                    limit=limits.current_on_time)


def test_energy_registered_matches_the_energy_delivered(meter, disconnector, ac_source, load, bench_clock, usecase):
    """The register is judged against the energy the bench's own source delivered (power x time)."""
    dc, limits = disconnector, meter.profile.supply.limits
    watch = limits.energy_observation_time.value
    samples = max(2, min(60, round(watch / 15)))
    with usecase.step("0", HEAD_END, METER, f"precondition: breaker connected, load drawing "
                                            f"{limits.test_load_current.value:g} A"):
        restore_connected(dc, meter.profile.disconnector.control_modes, dc.control_mode())
        load.set_current(limits.test_load_current.value)
        load.on()
    with usecase.step("1", HEAD_END, METER, "GET active energy import"):
        start_value, unit = meter.active_energy_import.read()
        started = bench_clock.monotonic()
    delivered_wh, last, power = 0.0, started, ac_source.measure().power_w
    with usecase.step("2", AC_SOURCE, AC_SOURCE, f"measure the power {samples} times through {watch:g} s"):
        for index in range(1, samples + 1):
            bench_clock.sleep(max(0.0, started + watch * index / samples - bench_clock.monotonic()))
            now = bench_clock.monotonic()
            reading = ac_source.measure().power_w
            delivered_wh += (power + reading) / 2 * (now - last) / 3600.0  # trapezoid between samples
            power, last = reading, now
    with usecase.step("3", HEAD_END, METER, "GET active energy import"):
        end_value, end_unit = meter.active_energy_import.read()
    usecase.expect("energy register unit", end_unit, unit, article="3-3")
    registered = end_value - start_value
    usecase.measure(f"energy delivered by the source over {watch:g} s (Wh)", delivered_wh,
                    low=limits.test_load_current.value * 0.5 * watch / 3600.0 * 100, unit="Wh", article="3-3")
    allowed = limits.energy_register_tolerance.value / 100 * delivered_wh + 1.0
    usecase.measure(f"register {registered:g} Wh - delivered {delivered_wh:.1f} Wh", registered - delivered_wh,
                    low=-allowed, high=allowed, unit="Wh", article="3-3")
