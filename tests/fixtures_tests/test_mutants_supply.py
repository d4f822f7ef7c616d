"""Each supply mutant (aspects 6, 7, 14, 15) differs from the conforming meter in its declared way,
observed on the emulator's object model: physics (relay, current, delivered energy) and reports apart."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import MUTANTS, EmulatedMeter, axdr, cosem_time
from smmc_bench.fixtures.meter.axdr import Data, DataType
from smmc_bench.fixtures.meter.cosem_objects import CosemError

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
ZERO = axdr.integer(0)


def build(mutant: str | None, control_mode: int = 1) -> EmulatedMeter:
    return EmulatedMeter(clock=VirtualClock(START), mutant=mutant, control_mode=control_mode)


def relay_during_disconnection(meter):
    """output_state and the current through the meter 90 s after a remote disconnection."""
    meter.set_load_demand(5.0)
    meter.disconnect_control.invoke(1, ZERO)
    meter.bench_clock.sleep(90)
    return meter.state.output_state, meter.load_current_a() > 0.1


def ready_for_reconnection(meter):
    """Mode 2: disconnect then reconnect leaves ready_for_reconnection; what is reported and what flows."""
    meter.set_load_demand(5.0)
    meter.disconnect_control.invoke(1, ZERO)
    meter.disconnect_control.invoke(2, ZERO)
    return meter.state.control_state.name, meter.state.output_state, meter.load_current_a() > 0.1


def refused_transition(meter):
    """Mode 2, ready_for_reconnection: a second remote_reconnect is forbidden (no transition from there)."""
    dc = meter.disconnect_control
    dc.invoke(1, ZERO)
    dc.invoke(2, ZERO)  # ready_for_reconnection in mode 2
    logged = len(meter.state.disconnector_events)
    try:
        dc.invoke(2, ZERO)
        refused = False
    except CosemError:
        refused = True
    return refused, meter.state.control_state.name, len(meter.state.disconnector_events) - logged


def disconnect_event_code(meter):
    meter.disconnect_control.invoke(1, ZERO)
    return [code for _, code in meter.state.disconnector_events]


def limiter_trip_report(meter):
    configure_limiter(meter)
    meter.set_load_demand(20.0)
    meter.bench_clock.sleep(61)
    return meter.state.output_state, meter.load_current_a() > 0.1


def register_against_delivered(meter):
    meter.set_load_demand(5.0)
    meter.bench_clock.sleep(3600)
    return meter.energy.wh - round(meter.energy.delivered_wh)


def configure_limiter(meter, threshold_w: int = 3000, over_s: int = 60, under_s: int = 30) -> None:
    lim = meter.limiter
    lim.set(4, Data(DataType.DOUBLE_LONG, threshold_w))
    lim.set(6, axdr.double_long_unsigned(over_s))
    lim.set(7, axdr.double_long_unsigned(under_s))


def limiter_reconnect_time(meter):
    """Mode 5 (transition h): seconds under threshold until the limiter reconnects (sampled each second)."""
    configure_limiter(meter)
    meter.set_load_demand(20.0)
    meter.bench_clock.sleep(61)
    meter.set_load_demand(5.0)
    for second in range(1, 120):
        meter.bench_clock.sleep(1)
        if meter.state.output_state:
            return second
    return None


def limiter_trip_time(meter):
    configure_limiter(meter)
    meter.set_load_demand(20.0)
    for second in range(1, 200):
        meter.bench_clock.sleep(1)
        if meter.load_current_a() < 0.1:
            return second
    return None


def emergency_switch_times(meter, group: int = 7):
    """Seconds after writing a profile (start +120 s, 600 s long) at which threshold_active changes."""
    lim = meter.limiter
    lim.set(4, Data(DataType.DOUBLE_LONG, 3000))
    lim.set(5, Data(DataType.DOUBLE_LONG, 1000))
    lim.set(9, axdr.array([axdr.long_unsigned(group)]))
    start = meter.clock.now() + timedelta(seconds=120)
    lim.set(8, axdr.structure(axdr.long_unsigned(7), axdr.octet_string(cosem_time.encode(start, 240)),
                              axdr.double_long_unsigned(600)))
    switches, last = [], lim.get(3).value
    for elapsed in range(5, 800, 5):
        meter.bench_clock.sleep(5)
        value = lim.get(3).value
        if value != last:
            switches.append((elapsed, value))
            last = value
    return switches


def threshold_applied(meter):
    lim = meter.limiter
    lim.set(4, Data(DataType.DOUBLE_LONG, 2000))
    return lim.get(4).value, lim.threshold_active


def limiter_events(meter):
    """Mode 5: trip, back under, reconnection: the disconnector log's codes after the writes."""
    configure_limiter(meter)
    meter.set_load_demand(20.0)
    meter.bench_clock.sleep(61)
    meter.set_load_demand(5.0)
    meter.bench_clock.sleep(121)
    return [code for _, code in meter.state.disconnector_events if code != 67]


def button_events(meter):
    """Mode 2: trip into ready_for_reconnection, then the customer's button."""
    configure_limiter(meter)
    meter.set_load_demand(20.0)
    meter.bench_clock.sleep(61)
    meter.set_load_demand(5.0)
    meter.manual_reconnect()
    return [code for _, code in meter.state.disconnector_events if code != 67], meter.state.output_state


def outage(meter, seconds: float = 300):
    """Cut the supply for `seconds`; the standard log's (code, seconds from start) and the power-failure log."""
    meter.set_supply(0.0)
    meter.bench_clock.sleep(seconds)
    meter.set_supply(220.0)
    meter.bench_clock.sleep(30)
    return ([(code, (when - START).total_seconds()) for when, code in meter.state.standard_events],
            [duration for _, duration in meter.state.power_failures])


def push_wport_and_stamp(name, monkeypatch):
    """The source wPort the push leaves from and how old its date-time is, for a meter (mutant by name)."""
    from smmc_bench.fixtures.meter import supply_objects
    from smmc_bench.fixtures.meter.mutants import events as events_module
    seen = []
    record = lambda destination, wport, apdu, *args, **kwargs: seen.append(wport)  # noqa: E731
    monkeypatch.setattr(supply_objects, "send_over_wrapper", record)
    monkeypatch.setattr(events_module, "send_over_wrapper", record)
    setup = build(name).model.push_setup
    setup._deliver(("127.0.0.1", 4059), b"")
    return seen[0], round((setup._clock.now() - setup._stamp_time()).total_seconds())


def alarm_clear(meter):
    """Raise the power-up alarm, then a client writes 0: what the register holds."""
    meter.model.alarms.raise_alarm(2)
    meter.model.alarm_register.set(2, axdr.double_long_unsigned(0))
    return meter.model.alarm_register.value


PROBES = {
    "relay-recloses-after-disconnect": (relay_during_disconnection, 1),
    "ready-relay-closed": (ready_for_reconnection, 2),
    "forbidden-transition-logged": (refused_transition, 2),
    "disconnect-logged-as-63": (disconnect_event_code, 1),
    "output-stale-after-trip": (limiter_trip_report, 1),
    "energy-under-counts-2pct": (register_against_delivered, 1),
    "limiter-reconnects-before-min-under": (limiter_reconnect_time, 5),
    "limiter-trips-late": (limiter_trip_time, 1),
    "emergency-starts-early": (emergency_switch_times, 1),
    "emergency-ends-early": (emergency_switch_times, 1),
    "emergency-group-ignored": (lambda meter: emergency_switch_times(meter, group=8), 1),
    "threshold-change-not-applied": (threshold_applied, 1),
    "limiter-no-event-66": (limiter_events, 5),
    "limiter-reconnects-late": (limiter_reconnect_time, 5),
    "local-trip-logged-as-62": (limiter_events, 5),
    "button-reconnect-without-event": (button_events, 2),
    "power-failure-duration-in-tenths": (outage, 1),
    "power-down-wrong-code": (outage, 1),
    "power-up-stamped-late": (outage, 1),
    "alarm-register-not-cleared": (alarm_clear, 1),
}
WIRE_PROBES = ("push-from-public-wport", "push-stale-timestamp")
PROBED_MUTANTS = set(PROBES) | set(WIRE_PROBES)


@pytest.mark.parametrize("name", sorted(PROBES))
def test_supply_mutant_defect_is_observable(name):
    probe, mode = PROBES[name]
    conforming, mutant = probe(build(None, mode)), probe(build(name, mode))
    assert conforming != mutant, f"mutant {name} behaves like the conforming meter: {conforming!r}"


@pytest.mark.parametrize("name", WIRE_PROBES)
def test_push_mutant_defect_is_observable(name, monkeypatch):
    assert push_wport_and_stamp(None, monkeypatch) == (1, 0)
    assert push_wport_and_stamp(name, monkeypatch) != (1, 0)


def test_conforming_meter_keeps_physics_and_reports_together():
    assert relay_during_disconnection(build(None)) == (False, False)
    assert ready_for_reconnection(build(None, 2)) == ("READY_FOR_RECONNECTION", False, False)
    assert refused_transition(build(None, 2)) == (True, "READY_FOR_RECONNECTION", 0)
    assert disconnect_event_code(build(None)) == [62]
    assert limiter_trip_report(build(None)) == (False, False)
    assert abs(register_against_delivered(build(None))) <= 1
    assert limiter_reconnect_time(build(None, 5)) in (29, 30)  # min_under counts from the trip (power 0)
    assert limiter_trip_time(build(None)) == 60
    switches = emergency_switch_times(build(None))  # 5 s samples: a switch due on a sample may land on either
    assert [value for _, value in switches] == [1000, 3000]
    assert 120 <= switches[0][0] <= 125 and 720 <= switches[1][0] <= 725
    assert emergency_switch_times(build(None), group=8) == []
    assert threshold_applied(build(None)) == (2000, 2000)
    assert alarm_clear(build(None)) == 0


def test_supply_probes_are_of_supply_mutants():
    # That every mutant has a probe somewhere is test_mutants.py's check (PROBED_MUTANTS of each area).
    for name in PROBES:
        assert MUTANTS[name].aspect in (6, 7, 14, 15)
