"""The emulated meter's electrical side: supply, load, breaker, power down/up,
power-failure log, alarms, limiter, and the link-side setup objects; driven
through the EmulatedMeter API the instruments use, without the network."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter, axdr, cosem_time
from smmc_bench.fixtures.meter.axdr import Data, DataType
from smmc_bench.fixtures.meter.cosem_objects import (
    ControlState,
    CosemError,
    Result,
    obis,
)

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
ZERO = axdr.integer(0)


def make(control_mode: int = 2, **kwargs) -> EmulatedMeter:
    return EmulatedMeter(clock=VirtualClock(START), control_mode=control_mode, initial_clock_offset=0.0, **kwargs)


def codes(events) -> list[int]:
    return [code for _, code in events]


def outage(meter: EmulatedMeter, seconds: float, voltage: float = 0.0) -> None:
    meter.set_supply(voltage)
    meter.bench_clock.sleep(seconds)
    meter.set_supply(220.0)


def register_value(meter: EmulatedMeter, name: str) -> float:
    obj = meter.model.find(3, obis(name))
    scaler = obj.get(3).value[0].value
    return obj.get(2).value * 10.0 ** scaler


# --- supply, load and breaker --------------------------------------------------------

def test_default_load_until_a_load_demand_is_set():
    meter = make()
    assert meter.load_current_a() == pytest.approx(1000 / 220)
    assert meter.state.power_w == pytest.approx(1000)


def test_resistive_load_scales_with_voltage():
    meter = make()
    meter.set_load_demand(10.0)
    assert meter.load_current_a() == pytest.approx(10.0)
    meter.set_supply(198.0)
    assert meter.load_current_a() == pytest.approx(9.0)
    assert meter.state.power_w == pytest.approx(198 * 9)


def test_no_current_with_breaker_open_or_no_supply():
    meter = make()
    meter.set_load_demand(10.0)
    meter.disconnect_control.invoke(1, ZERO)
    assert meter.load_current_a() == 0.0
    meter.disconnect_control.set(4, axdr.enum(1))
    meter.disconnect_control.invoke(2, ZERO)
    assert meter.load_current_a() == pytest.approx(10.0)
    meter.set_supply(0.0)
    assert meter.load_current_a() == 0.0


def test_sag_below_threshold_powers_down_but_the_load_still_draws():
    meter = make()
    meter.set_load_demand(10.0)
    meter.set_supply(110.0)  # 50 % of nominal: below the 60 % power-down threshold
    assert not meter.powered
    assert meter.load_current_a() == pytest.approx(5.0)


def test_instantaneous_registers_report_voltage_current_power():
    meter = make()
    meter.set_load_demand(10.0)
    meter.set_supply(230.0)
    assert register_value(meter, "1.0.32.7.0.255") == pytest.approx(230.0)
    assert register_value(meter, "1.0.31.7.0.255") == pytest.approx(10 * 230 / 220, abs=0.001)
    assert register_value(meter, "1.0.1.7.0.255") == pytest.approx(230 * 10 * 230 / 220, abs=1)
    units = [meter.model.find(3, obis(n)).get(3).value[1].value
             for n in ("1.0.32.7.0.255", "1.0.31.7.0.255", "1.0.1.7.0.255")]
    assert units == [35, 33, 27]


def test_energy_integrates_real_power_over_bench_time():
    meter = make()
    meter.set_load_demand(10.0)  # 2200 W
    meter.bench_clock.sleep(3600)
    assert meter.state.energy_wh == pytest.approx(2200, abs=2)
    meter.disconnect_control.invoke(1, ZERO)
    meter.bench_clock.sleep(3600)
    assert meter.state.energy_wh == pytest.approx(2200, abs=2)
    meter.disconnect_control.set(4, axdr.enum(1))
    meter.disconnect_control.invoke(2, ZERO)
    outage(meter, 3600)
    assert meter.state.energy_wh == pytest.approx(2200, abs=2)


def test_set_supply_is_thread_safe():
    meter = make()
    meter.set_load_demand(5.0)
    errors = []

    def flap():
        try:
            for _ in range(200):
                meter.set_supply(0.0)
                meter.set_supply(220.0)
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=flap) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors and meter.powered
    events = codes(meter.state.standard_events)
    assert events.count(1) == events.count(2) and events[:2] == [1, 2]


# --- power down and up -----------------------------------------------------------------

def test_outage_logs_events_stamped_at_loss_and_restoration():
    meter = make()
    down = meter.clock.now()
    outage(meter, 300)
    (down_at, down_code), (up_at, up_code) = meter.state.standard_events
    assert (down_code, up_code) == (1, 2)
    assert abs((down_at - down).total_seconds()) < 0.5
    assert abs((up_at - down_at).total_seconds() - 300) < 0.5


def test_clock_keeps_running_through_an_outage():
    meter = make()
    before = meter.clock.now()
    outage(meter, 3600)
    assert abs((meter.clock.now() - before).total_seconds() - 3600) < 0.5


def test_long_outage_gets_a_power_failure_entry_with_its_duration():
    meter = make()
    down = meter.clock.now()
    outage(meter, 300)
    ((when, duration),) = meter.state.power_failures
    assert duration == 300 and abs((when - down).total_seconds()) < 0.5
    log = meter.model.power_failure_log
    assert log.get(7) == axdr.double_long_unsigned(1)
    row = log.get(2).value[0].value
    assert row[1] == axdr.double_long_unsigned(300)
    capture = [item.value[1].value for item in log.get(3).value]
    assert capture == [obis("0.0.1.0.0.255"), obis("0.0.96.7.19.255")]
    assert meter.model.failure_duration_register.get(2) == axdr.double_long_unsigned(300)


def test_short_interruption_is_counted_and_logged_as_events_but_gets_no_entry():
    meter = make()
    outage(meter, 10)
    assert codes(meter.state.standard_events) == [1, 2]
    assert meter.state.power_failures == ()
    assert meter.model.power_failure_count.get(2) == axdr.long_unsigned(1)
    assert meter.model.long_power_failure_count.get(2) == axdr.long_unsigned(0)
    outage(meter, 200)
    assert meter.model.power_failure_count.get(2) == axdr.long_unsigned(2)
    assert meter.model.long_power_failure_count.get(2) == axdr.long_unsigned(1)


def test_long_failure_threshold_is_a_constructor_parameter():
    meter = make(long_failure_threshold_s=5)
    outage(meter, 10)
    assert [d for _, d in meter.state.power_failures] == [10]


def test_voltage_above_threshold_is_no_outage():
    meter = make()
    meter.set_supply(140.0)  # above 60 % of 220 V
    meter.bench_clock.sleep(300)
    meter.set_supply(220.0)
    assert meter.state.standard_events == () and meter.powered


def test_meter_is_silent_while_down_and_while_booting():
    meter = make(boot_time_s=3)
    meter.set_supply(0.0)
    assert not meter.powered and not meter.communicating
    meter.bench_clock.sleep(60)
    meter.set_supply(220.0)
    assert meter.powered and not meter.communicating
    meter.bench_clock.sleep(3.1)
    assert meter.communicating


def test_power_listeners_hear_down_and_up_once_each():
    meter = make()
    heard = []
    meter.add_power_listener(heard.append)
    meter.set_supply(0.0)
    meter.set_supply(0.0)
    meter.set_supply(220.0)
    meter.set_supply(225.0)
    meter.remove_power_listener(heard.append)
    meter.set_supply(0.0)
    assert heard == [False, True]


def test_power_up_raises_alarm_bit_2_whatever_the_filter():
    meter = make()
    meter.model.alarm_filter.set(2, axdr.double_long_unsigned(0))
    outage(meter, 10)
    assert meter.state.alarm_register == 1 << 2
    meter.model.alarm_register.set(2, axdr.double_long_unsigned(0))
    assert meter.state.alarm_register == 0
    with pytest.raises(CosemError):
        meter.model.alarm_register.set(2, axdr.long_unsigned(0))


def test_breaker_keeps_its_state_through_an_outage():
    meter = make(control_mode=1)
    meter.disconnect_control.invoke(1, ZERO)
    outage(meter, 300)
    assert meter.state.control_state is ControlState.DISCONNECTED and not meter.state.output_state


# --- limiter ------------------------------------------------------------------------------

def limiter_setup(meter, threshold=3000, over=60, under=30, mode=None):
    limiter = meter.limiter
    limiter.set(4, Data(DataType.DOUBLE_LONG, threshold))
    limiter.set(6, axdr.double_long_unsigned(over))
    limiter.set(7, axdr.double_long_unsigned(under))
    if mode is not None:
        meter.disconnect_control.set(4, axdr.enum(mode))
    return limiter


def test_limiter_defaults_never_trip_and_read_as_blue_book_types():
    meter = make()
    limiter = meter.limiter
    meter.set_load_demand(60.0)
    meter.bench_clock.sleep(86400)
    assert meter.state.output_state
    assert limiter.get(2) == axdr.structure(axdr.long_unsigned(3), axdr.octet_string(obis("1.0.1.7.0.255")),
                                            axdr.integer(2))
    assert limiter.get(3).type == DataType.DOUBLE_LONG
    assert limiter.get(10) == axdr.boolean(False)
    actions = limiter.get(11).value
    assert [a.value[1].value for a in actions] == [1, 2]


def test_limiter_writes_log_event_67_and_read_back():
    meter = make()
    limiter_setup(meter, threshold=2500, over=45, under=20)
    limiter = meter.limiter
    assert limiter.get(4).value == 2500 and limiter.get(3).value == 2500
    assert (limiter.get(6).value, limiter.get(7).value) == (45, 20)
    assert codes(meter.state.disconnector_events) == [67, 67, 67]


def test_limiter_threshold_type_must_match_the_monitored_value():
    meter = make()
    with pytest.raises(CosemError) as refused:
        meter.limiter.set(4, axdr.double_long_unsigned(3000))
    assert refused.value.result == Result.TYPE_UNMATCHED


def test_overload_shorter_than_min_over_does_not_trip():
    meter = make()
    limiter_setup(meter)
    meter.set_load_demand(20.0)
    meter.bench_clock.sleep(59)
    meter.set_load_demand(5.0)
    meter.bench_clock.sleep(600)
    assert meter.state.output_state and 65 not in codes(meter.state.disconnector_events)


def test_sustained_overload_trips_with_events_65_and_64_and_cuts_the_current():
    meter = make(control_mode=2)
    limiter_setup(meter)
    meter.set_load_demand(20.0)
    meter.bench_clock.sleep(60.5)
    state = meter.state
    assert not state.output_state and state.control_state is ControlState.READY_FOR_RECONNECTION
    assert codes(state.disconnector_events)[-2:] == [65, 64]
    trip_time = state.disconnector_events[-1][0]
    assert abs((trip_time - meter.clock.now()).total_seconds() + 0.5) < 0.2
    assert meter.load_current_a() == 0.0


@pytest.mark.parametrize("mode, reconnects", [(1, False), (2, False), (3, False), (4, False), (5, True), (6, True)])
def test_under_threshold_logs_66_and_reconnects_only_in_modes_with_h(mode, reconnects):
    meter = make(control_mode=mode)
    limiter_setup(meter)
    meter.set_load_demand(20.0)
    meter.bench_clock.sleep(61)  # tripped at 60 s: the power through the meter is 0 from then on
    meter.set_load_demand(5.0)
    meter.bench_clock.sleep(28)
    assert 66 not in codes(meter.state.disconnector_events)
    meter.bench_clock.sleep(2)
    state = meter.state
    assert 66 in codes(state.disconnector_events)
    assert state.output_state is reconnects
    assert (69 in codes(state.disconnector_events)) is reconnects
    if not reconnects:
        assert meter.manual_reconnect() and meter.load_current_a() == pytest.approx(5.0)


def test_limiter_retrips_after_a_local_reconnect_into_the_same_overload():
    meter = make(control_mode=6)
    limiter_setup(meter)
    meter.set_load_demand(20.0)
    meter.bench_clock.sleep(60 + 30 + 61)  # trip at 60, reconnect at 90, trip again at 150
    assert codes(meter.state.disconnector_events)[3:] == [65, 64, 66, 69, 65, 64]


def test_limiter_sleeps_through_an_outage():
    meter = make()
    limiter_setup(meter)
    meter.set_load_demand(20.0)
    meter.bench_clock.sleep(30)
    outage(meter, 300)
    meter.bench_clock.sleep(30)
    assert meter.state.output_state  # the overload timer restarted at power up
    meter.bench_clock.sleep(31)
    assert not meter.state.output_state


def test_emergency_profile_activates_and_expires_on_the_meter_clock():
    meter = make()
    limiter = limiter_setup(meter)
    limiter.set(5, Data(DataType.DOUBLE_LONG, 1000))
    limiter.set(9, axdr.array([axdr.long_unsigned(3)]))
    start = meter.clock.now() + timedelta(seconds=120)
    limiter.set(8, axdr.structure(axdr.long_unsigned(3), axdr.octet_string(cosem_time.encode(start, 240)),
                                  axdr.double_long_unsigned(600)))
    assert limiter.get(3).value == 3000 and limiter.get(10) == axdr.boolean(False)
    meter.bench_clock.sleep(121)
    assert limiter.get(3).value == 1000 and limiter.get(10) == axdr.boolean(True)
    meter.bench_clock.sleep(600)
    assert limiter.get(3).value == 3000 and limiter.get(10) == axdr.boolean(False)


def test_emergency_profile_needs_its_id_in_the_group_list():
    meter = make()
    limiter = limiter_setup(meter)
    limiter.set(5, Data(DataType.DOUBLE_LONG, 1000))
    limiter.set(9, axdr.array([axdr.long_unsigned(4)]))
    start = meter.clock.now() - timedelta(seconds=1)
    limiter.set(8, axdr.structure(axdr.long_unsigned(3), axdr.octet_string(cosem_time.encode(start, 240)),
                                  axdr.double_long_unsigned(600)))
    assert limiter.get(10) == axdr.boolean(False)
    limiter.set(9, axdr.array([axdr.long_unsigned(4), axdr.long_unsigned(3)]))
    assert limiter.get(10) == axdr.boolean(True)


def test_emergency_threshold_trips_a_load_the_normal_one_allows():
    meter = make()
    limiter = limiter_setup(meter)
    meter.set_load_demand(10.0)  # 2200 W: under 3000, over 2000
    limiter.set(5, Data(DataType.DOUBLE_LONG, 2000))
    limiter.set(9, axdr.array([axdr.long_unsigned(1)]))
    start = meter.clock.now() + timedelta(seconds=100)
    limiter.set(8, axdr.structure(axdr.long_unsigned(1), axdr.octet_string(cosem_time.encode(start, 240)),
                                  axdr.double_long_unsigned(3600)))
    meter.bench_clock.sleep(150)
    assert meter.state.output_state
    meter.bench_clock.sleep(20)
    assert not meter.state.output_state


def test_limiter_refuses_bad_actions_and_monitored_values():
    meter = make()
    limiter = meter.limiter
    bad_script = axdr.structure(axdr.structure(axdr.octet_string(obis("0.0.10.0.1.255")), axdr.long_unsigned(1)),
                                axdr.structure(axdr.octet_string(bytes(6)), axdr.long_unsigned(0)))
    with pytest.raises(CosemError):
        limiter.set(11, bad_script)
    with pytest.raises(CosemError):
        limiter.set(2, axdr.structure(axdr.long_unsigned(1), axdr.octet_string(obis("0.0.42.0.0.255")),
                                      axdr.integer(2)))
    limiter.set(2, axdr.structure(axdr.long_unsigned(3), axdr.octet_string(obis("1.0.31.7.0.255")),
                                  axdr.integer(2)))
    assert limiter.get(4).type == DataType.DOUBLE_LONG_UNSIGNED


def test_no_over_action_means_event_65_without_a_trip():
    meter = make()
    limiter = limiter_setup(meter)
    limiter.set(11, axdr.structure(axdr.structure(axdr.octet_string(bytes(6)), axdr.long_unsigned(0)),
                                   axdr.structure(axdr.octet_string(bytes(6)), axdr.long_unsigned(0))))
    meter.set_load_demand(20.0)
    meter.bench_clock.sleep(61)
    assert meter.state.output_state and codes(meter.state.disconnector_events)[-1] == 65


# --- link-side setup objects ------------------------------------------------------------------

def test_hdlc_setup_defaults_and_validation():
    meter = make(hdlc_address=0x21)
    hdlc = meter.model.hdlc_setup
    assert (hdlc.class_id, hdlc.version, hdlc.logical_name) == (23, 1, obis("0.0.22.0.0.255"))
    assert [hdlc.get(a) for a in range(2, 10)] == [
        axdr.enum(5), axdr.unsigned(1), axdr.unsigned(1), axdr.long_unsigned(128), axdr.long_unsigned(128),
        axdr.long_unsigned(25), axdr.long_unsigned(120), axdr.long_unsigned(0x21)]
    hdlc.set(3, axdr.unsigned(7))
    assert hdlc.get(3) == axdr.unsigned(7)
    with pytest.raises(CosemError):
        hdlc.set(3, axdr.unsigned(8))
    with pytest.raises(CosemError):
        hdlc.set(2, axdr.unsigned(5))


def test_security_setup_reports_policy_suite_and_system_title():
    meter = make()
    security = meter.model.security_setup
    assert (security.class_id, security.version, security.logical_name) == (64, 0, obis("0.0.43.0.0.255"))
    assert security.get(2) == axdr.enum(0) and security.get(3) == axdr.enum(0)
    assert security.get(4) == axdr.octet_string(b"")
    assert security.get(5) == axdr.octet_string(b"EMU" + (1).to_bytes(5, "big"))
    assert not security.methods and not security.is_writable(2)


def test_new_objects_are_in_the_object_list():
    meter = make()
    listed = {(obj.class_id, obj.logical_name) for obj in meter.model.objects}
    for class_id, name in [(71, "0.0.17.0.0.255"), (40, "0.4.25.9.0.255"), (7, "1.0.99.97.0.255"),
                           (1, "0.0.97.98.0.255"), (1, "0.0.97.98.10.255"), (23, "0.0.22.0.0.255"),
                           (64, "0.0.43.0.0.255"), (3, "1.0.32.7.0.255"), (3, "1.0.31.7.0.255"),
                           (3, "1.0.1.7.0.255")]:
        assert (class_id, obis(name)) in listed


def test_breaker_closed_into_the_same_overload_trips_again():
    meter = make(control_mode=1)
    limiter_setup(meter)
    meter.set_load_demand(20.0)
    meter.bench_clock.sleep(61)
    meter.disconnect_control.invoke(1, ZERO)  # b: ready -> disconnected
    meter.disconnect_control.invoke(2, ZERO)  # d: disconnected -> connected, into the overload
    meter.bench_clock.sleep(59)
    assert meter.state.output_state
    meter.bench_clock.sleep(2)
    assert not meter.state.output_state
    assert codes(meter.state.disconnector_events).count(65) == 2


def test_overload_the_breaker_cannot_clear_is_reported_once():
    meter = make(control_mode=0)  # no transition at all: the limiter cannot open the breaker
    limiter_setup(meter)
    meter.set_load_demand(20.0)
    meter.bench_clock.sleep(3600)
    assert meter.state.output_state
    assert codes(meter.state.disconnector_events).count(65) == 1


# --- load profile ----------------------------------------------------------------------------

def test_load_profile_captures_on_meter_time_boundaries_once_started():
    meter = make()
    profile = meter.load_profile
    meter.bench_clock.sleep(3600)
    assert profile.rows == []  # not served: no capture
    profile.start()  # a few ms after 13:00: the first boundary is 13:15
    meter.bench_clock.sleep(3601)
    profile.stop()
    times = [when for when, _, _ in profile.rows]
    assert len(times) == 4 and all(t.minute % 15 == 0 and t.second == 0 for t in times)
    assert all(b - a == timedelta(minutes=15) for a, b in zip(times, times[1:]))
    energies = [wh for _, _, wh in profile.rows]
    assert energies == sorted(energies) and energies[-1] - energies[0] == pytest.approx(750, abs=2)


def test_load_profile_flags_the_interval_after_an_outage_and_a_clock_change():
    meter = make()
    profile = meter.load_profile
    profile.start()  # 12:00 + a few ms
    meter.bench_clock.sleep(901)  # 12:15 captured
    outage(meter, 1800)  # 12:30 and 12:45 pass while the meter is down: no rows for them
    meter.bench_clock.sleep(900)  # 13:00 captured, flagged power down
    meter.clock.invoke(6, axdr.long(30))
    meter.bench_clock.sleep(900)  # 13:15 captured (the clock is 30 s ahead), flagged clock adjusted
    profile.stop()
    assert [(when.strftime("%H:%M"), status) for when, status, _ in profile.rows] == [
        ("12:15", 0), ("13:00", 0x80), ("13:15", 0x20)]


def test_load_profile_fill_reset_capture_and_period():
    meter = make()
    profile = meter.load_profile
    profile.fill(rows=96)
    assert profile.get(7) == axdr.double_long_unsigned(96)
    assert profile.rows[-1][0] - profile.rows[0][0] == timedelta(hours=23, minutes=45)
    profile.invoke(1, axdr.integer(0))
    assert profile.rows == []
    profile.invoke(2, axdr.integer(0))
    assert len(profile.rows) == 1
    profile.set(4, axdr.double_long_unsigned(3600))
    assert profile.rows == [] and profile.get(4) == axdr.double_long_unsigned(3600)
    with pytest.raises(CosemError):
        profile.set(4, axdr.double_long_unsigned(7))
    capture = [item.value[1].value for item in profile.get(3).value]
    assert capture == [obis("0.0.1.0.0.255"), obis("0.0.96.10.1.255"), obis("1.0.1.8.0.255")]
