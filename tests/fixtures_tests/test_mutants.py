"""Each mutant differs from the conforming meter in its one declared way."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.drivers.headend import HeadEndListener
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import MUTANTS, EmulatedMeter, axdr, cosem_time
from smmc_bench.fixtures.meter.axdr import Data, DataType
from smmc_bench.fixtures.meter.cosem_objects import ControlState, CosemError
from smmc_bench.fixtures.meter.mutants import (
    association_release,  # probed on the wire: test_mutants_association.py
)
from smmc_bench.fixtures.meter.mutants import (
    customer as customer_mutants,  # probed in test_mutants_customer.py
)
from smmc_bench.fixtures.meter.supply_objects import Limiter

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
ZERO = axdr.integer(0)
TARGET_LOCAL = datetime(2025, 3, 10, 8, 30, 0)
TARGET_UTC = datetime(2025, 3, 10, 12, 30, 0, tzinfo=timezone.utc)


def build(mutant: str | None, control_mode: int = 1) -> EmulatedMeter:
    """Not started: these tests drive the objects directly."""
    return EmulatedMeter(clock=VirtualClock(START), mutant=mutant, control_mode=control_mode)


def time_octets(local: datetime, month: int | None = None) -> bytes:
    return (local.year.to_bytes(2, "big") + bytes([month or local.month, local.day, 0xFF, local.hour,
            local.minute, local.second, 0xFF]) + (240).to_bytes(2, "big") + b"\x00")


def set_time(meter: EmulatedMeter, raw: bytes) -> bool:
    try:
        meter.clock.set(2, axdr.octet_string(raw))
        return True
    except CosemError:
        return False


def codes(events) -> list[int]:
    return [code for _, code in events]


def observe_clock_set(meter):
    accepted = set_time(meter, time_octets(TARGET_LOCAL))
    return accepted, round((meter.clock.now() - TARGET_UTC).total_seconds()), codes(meter.state.standard_events)


def observe_invalid_set(meter):
    offset = meter.clock.offset_s
    return set_time(meter, time_octets(TARGET_LOCAL, month=13)), meter.clock.offset_s == offset


def observe_shift(meter):
    before = meter.clock.offset_s
    meter.clock.invoke(6, axdr.long(300))
    return round(meter.clock.offset_s - before)


def observe_status(meter):
    return meter.clock.get(2).value[11], meter.clock.get(4).value


def observe_remote_disconnect(meter):
    meter.disconnect_control.invoke(1, ZERO)
    state = meter.state
    ((when, code),) = state.disconnector_events or ((None, None),)
    late = None if when is None else round((when - state.meter_time).total_seconds() / 60)
    return state.control_state, state.output_state, code, late


def observe_remote_reconnect(mode: int, start: ControlState):
    def observe(meter):
        meter.disconnect_control.set(4, axdr.enum(mode))
        meter.disconnect_control.control_state = start
        meter.disconnect_control.output_state = start == ControlState.CONNECTED
        try:
            meter.disconnect_control.invoke(2, ZERO)
            accepted = True
        except CosemError:
            accepted = False
        return accepted, meter.state.control_state, codes(meter.state.disconnector_events)
    return observe


def observe_energy_while_disconnected(meter):
    meter.disconnect_control.invoke(1, ZERO)
    before = meter.state.energy_wh
    meter.bench_clock.sleep(3600)
    return meter.state.energy_wh - before


def outage(meter, seconds: float) -> None:
    meter.set_supply(0.0)
    meter.bench_clock.sleep(seconds)
    meter.set_supply(220.0)


def observe_breaker_current(meter):
    meter.set_load_demand(10.0)
    meter.disconnect_control.invoke(1, ZERO)
    return meter.state.output_state, round(meter.load_current_a(), 3)


def observe_power_events(meter):
    down = meter.clock.now()
    outage(meter, 300)
    events = meter.state.standard_events
    stamp = next((round((when - down).total_seconds()) for when, code in events if code == 1), None)
    return codes(events), stamp


def observe_power_failure_log(seconds: float):
    def observe(meter):
        outage(meter, seconds)
        return [duration for _, duration in meter.state.power_failures]
    return observe


def observe_answers_after_outage(meter):
    outage(meter, 300)
    meter.bench_clock.sleep(10)
    return meter.communicating


def observe_pushes(alarm_filter: int):
    def observe(meter):
        with HeadEndListener(meter.bench_clock) as head_end:
            meter.model.alarm_filter.value = alarm_filter
            meter.push_setup.destination = head_end.destination
            outage(meter, 300)
            head_end.wait_for(timeout_s=30)
            return len(head_end.notifications)
    return observe


def configure_limiter(meter, threshold_w: int = 3000, over_s: int = 60, under_s: int = 30) -> None:
    limiter = meter.limiter
    limiter.set(4, Data(DataType.DOUBLE_LONG, threshold_w))
    limiter.set(6, axdr.double_long_unsigned(over_s))
    limiter.set(7, axdr.double_long_unsigned(under_s))


def observe_limiter_trip(meter):
    configure_limiter(meter)
    meter.set_load_demand(20.0)  # 4400 W
    meter.bench_clock.sleep(30)
    early = meter.state.output_state
    meter.bench_clock.sleep(31)
    return early, meter.state.output_state, codes(meter.state.disconnector_events)


def observe_limiter_reconnect(meter):
    configure_limiter(meter)
    meter.set_load_demand(20.0)
    meter.bench_clock.sleep(61)
    meter.set_load_demand(5.0)
    meter.bench_clock.sleep(31)
    return meter.state.control_state


def observe_emergency(meter):
    limiter = meter.limiter
    limiter.set(5, Data(DataType.DOUBLE_LONG, 1000))
    limiter.set(9, axdr.array([axdr.long_unsigned(7)]))
    start = meter.clock.now() + timedelta(seconds=60)
    limiter.set(8, axdr.structure(axdr.long_unsigned(7), axdr.octet_string(cosem_time.encode(start, 240)),
                                  axdr.double_long_unsigned(600)))
    meter.bench_clock.sleep(61)
    return limiter.get(3).value, limiter.get(10).value


def observe_parameter_write(meter):
    """What the session reports after a client's SET of clock.time_zone (a configuration attribute)."""
    meter.clock.set(3, axdr.long(180))
    meter.model.parameters.written(meter.clock, 3)
    return codes(meter.state.standard_events)


# mutant -> an observation that differs between it and the conforming meter
OBSERVATIONS = {
    "clock-ignores-set": observe_clock_set,
    "clock-set-without-events": observe_clock_set,
    "clock-accepts-invalid-time": observe_invalid_set,
    "clock-shift-ignored": observe_shift,
    "clock-set-off-by-30s": observe_clock_set,
    "clock-reports-invalid": observe_status,
    "disconnect-output-stays-on": observe_remote_disconnect,
    "disconnect-without-event": observe_remote_disconnect,
    "disconnect-event-late": observe_remote_disconnect,
    "reconnect-ignores-control-mode": observe_remote_reconnect(2, ControlState.READY_FOR_RECONNECTION),
    "reconnect-always-ready": observe_remote_reconnect(1, ControlState.DISCONNECTED),
    "reconnect-without-event": observe_remote_reconnect(1, ControlState.DISCONNECTED),
    "energy-counts-while-disconnected": observe_energy_while_disconnected,
    "breaker-open-current-flows": observe_breaker_current,
    "power-events-missing": observe_power_events,
    "power-down-stamped-at-power-up": observe_power_events,
    "no-power-failure-entry": observe_power_failure_log(300),
    "power-failure-duration-in-minutes": observe_power_failure_log(300),
    "short-interruption-logged-as-long": observe_power_failure_log(10),
    "no-answer-after-outage": observe_answers_after_outage,
    "slow-boot-after-outage": observe_answers_after_outage,  # 10 s after: not yet (it takes 90 s)
    "push-never-sent": observe_pushes(1 << 2),
    "alarm-filter-ignored": observe_pushes(0),
    "limiter-never-trips": observe_limiter_trip,
    "limiter-trips-at-once": observe_limiter_trip,
    "limiter-no-event-65": observe_limiter_trip,
    "limiter-change-not-logged": observe_limiter_trip,
    "limiter-reconnects-in-any-mode": observe_limiter_reconnect,
    "emergency-profile-ignored": observe_emergency,
    "parameter-change-not-logged": observe_parameter_write,
}

EXPECTED_CONFORMING = {
    observe_clock_set: (True, 0, [4, 5]),
    observe_invalid_set: (False, True),
    observe_shift: 300,
    observe_status: (0, 0),
    observe_remote_disconnect: (ControlState.DISCONNECTED, False, 62, 0),
    observe_energy_while_disconnected: 0,
    observe_breaker_current: (False, 0.0),
    observe_power_events: ([1, 2], 0),
    observe_answers_after_outage: True,
    observe_limiter_trip: (True, False, [67, 67, 67, 65, 64]),
    observe_limiter_reconnect: ControlState.READY_FOR_RECONNECTION,
    observe_emergency: (1000, True),
    observe_parameter_write: [47],
}
EXPECTED_CONFORMING_BY_NAME = {
    "no-power-failure-entry": [300],
    "short-interruption-logged-as-long": [],
    "push-never-sent": 1,
    "alarm-filter-ignored": 0,
}


def probed_in_area_modules() -> set[str]:
    """Mutants whose direct probes live in their area's own module (test_mutants_<area>.py: PROBED_MUTANTS)."""
    import importlib
    import pkgutil

    import tests.fixtures_tests as package
    names: set[str] = set()
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("test_mutants_"):
            names |= set(importlib.import_module(f"{package.__name__}.{info.name}").PROBED_MUTANTS)
    return names


def test_every_mutant_has_an_observation_and_metadata():
    assert set(OBSERVATIONS) | probed_in_area_modules() == set(MUTANTS)
    for name, mutant in MUTANTS.items():
        assert mutant.name == name and mutant.description and 1 <= mutant.aspect <= 15


@pytest.mark.parametrize("name", sorted(OBSERVATIONS))
def test_mutant_differs_from_conforming_meter(name):
    observe = OBSERVATIONS[name]
    conforming = observe(build(None))
    mutated = observe(build(name))
    if observe in EXPECTED_CONFORMING:
        assert conforming == EXPECTED_CONFORMING[observe]
    if name in EXPECTED_CONFORMING_BY_NAME:
        assert conforming == EXPECTED_CONFORMING_BY_NAME[name]
    assert mutated != conforming


@pytest.mark.parametrize("name", sorted(set(MUTANTS) - {m.name for m in (*association_release.MUTANTS, *customer_mutants.MUTANTS)}))
def test_mutant_is_otherwise_conforming_on_a_basic_session(name):
    """Checks outside each mutant's own aspect-object still pass (one defect only)."""
    meter = build(name, control_mode=1)
    mutant = MUTANTS[name]
    if mutant.aspect == 6 and "energy" not in name:
        assert observe_clock_set(meter) == (True, 0, [4, 5])
    if mutant.aspect in (5, 7, 14):
        assert observe_clock_set(meter) == (True, 0, [4, 5])
        meter = build(name, control_mode=1)
    if mutant.aspect in (5, 7, 13, 14) or "energy" in name:
        assert observe_remote_disconnect(meter) == (ControlState.DISCONNECTED, False, 62, 0)


def test_mutant_specific_values():
    assert observe_clock_set(build("clock-set-off-by-30s"))[1] == 30
    assert observe_clock_set(build("clock-set-without-events")) == (True, 0, [])
    assert observe_remote_disconnect(build("disconnect-event-late"))[3] == 10
    assert observe_remote_disconnect(build("disconnect-output-stays-on"))[:2] == (ControlState.DISCONNECTED, True)
    assert observe_remote_reconnect(1, ControlState.DISCONNECTED)(build("reconnect-always-ready"))[1] == \
        ControlState.READY_FOR_RECONNECTION
    assert observe_energy_while_disconnected(build("energy-counts-while-disconnected")) == pytest.approx(1000, abs=1)
    assert observe_power_failure_log(300)(build("power-failure-duration-in-minutes")) == [5]
    assert observe_power_failure_log(10)(build("short-interruption-logged-as-long")) == [10]
    assert observe_power_events(build("power-down-stamped-at-power-up"))[1] == 300
    assert observe_limiter_trip(build("limiter-trips-at-once"))[0] is False
    assert observe_limiter_trip(build("limiter-never-trips"))[1] is True
    assert observe_limiter_trip(build("limiter-no-event-65"))[2] == [67, 67, 67, 64]
    assert observe_limiter_trip(build("limiter-change-not-logged"))[2] == [65, 64]
    assert observe_emergency(build("emergency-profile-ignored")) == (Limiter.NOT_SET, False)
    assert observe_breaker_current(build("breaker-open-current-flows"))[1] == pytest.approx(10.0)


def test_mutant_by_name_and_object_and_unknown_name():
    assert build("clock-ignores-set").mutant is MUTANTS["clock-ignores-set"]
    assert EmulatedMeter(mutant=MUTANTS["reconnect-without-event"]).mutant.name == "reconnect-without-event"
    with pytest.raises(KeyError):
        EmulatedMeter(mutant="no-such-mutant")
