"""The bench side of the supply tests against the emulated meter: COSEM views
(bench.cosem_supply), the shared procedures, and the head-end/local-operator
fixtures' building blocks."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from smmc_bench.cosem.disconnect import (
    ControlState,
    DisconnectControl,
    restore_connected,
)
from smmc_bench.cosem.event_log import PowerFailureLog
from smmc_bench.cosem.limiter import Limiter
from smmc_bench.cosem.push import PushSetup
from smmc_bench.cosem.register import DataValue
from smmc_bench.drivers.dlms import (
    DataType,
    DlmsSession,
    SessionSettings,
    TcpWrapperTransport,
)
from smmc_bench.drivers.dlms.errors import LinkError
from smmc_bench.drivers.headend import HeadEndListener
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter
from smmc_bench.plugin.supply import (
    EmulatedButton,
    _head_end_settings,
    source_current_a,
)
from smmc_bench.procedures import reassociate, wait_until
from smmc_bench.profile.meter import load_profile

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
PASSWORD = b"bench-side-pass"


@pytest.fixture
def clock():
    return VirtualClock(START)


@pytest.fixture
def emulator(clock):
    with EmulatedMeter(clock=clock, lls_password=PASSWORD) as meter:
        yield meter


@pytest.fixture
def session(emulator):
    host, port = emulator.address
    dlms = DlmsSession(TcpWrapperTransport(host, port, connect_timeout=2),
                       SessionSettings(client_sap=1, server_logical=1, authentication=1, password=PASSWORD,
                                       timeout=2))
    dlms.connect()
    try:
        yield dlms
    finally:
        dlms.close()


def outage(emulator, seconds):
    emulator.set_supply(0.0)
    emulator.bench_clock.sleep(seconds)
    emulator.set_supply(220.0)


def test_push_setup_view_writes_the_destination_the_meter_pushes_to(emulator, session, clock):
    push = PushSetup(session, "0.4.25.9.0.255")
    assert push.destination() == ""
    assert [(o.class_id, o.obis, o.attribute) for o in push.object_list()] == [
        (40, "0.4.25.9.0.255", 1), (1, "0.0.42.0.0.255", 2), (1, "0.0.97.98.0.255", 2)]
    with HeadEndListener(clock) as head_end:
        push.set_destination(head_end.destination)
        assert push.destination() == head_end.destination
        push.push()
        got = head_end.wait_for(timeout_s=5)
    values = push.values(got.data, push.object_list())
    assert values[(1, "0.0.42.0.0.255", 2)] == b"EMUEMU0000001"


def test_limiter_view_round_trips_every_setting(emulator, session):
    limiter = Limiter(session, "0.0.17.0.0.255", DataType.DOUBLE_LONG)
    assert limiter.monitored_value() == (3, "1.0.1.7.0.255", 2)
    limiter.set_threshold_normal(2500)
    limiter.set_threshold_emergency(1200)
    limiter.set_min_over_threshold_duration(45)
    limiter.set_min_under_threshold_duration(15)
    assert (limiter.threshold_normal(), limiter.threshold_emergency(), limiter.threshold_active()) == (2500, 1200, 2500)
    assert (limiter.min_over_threshold_duration(), limiter.min_under_threshold_duration()) == (45, 15)
    assert limiter.emergency_profile().activation is None
    raw = limiter.raw_emergency_profile()
    start = emulator.clock.now() + timedelta(minutes=5)
    limiter.set_emergency_group_ids([4, 9])
    limiter.set_emergency_profile(9, start, 300, deviation_minutes=240)
    profile = limiter.emergency_profile()
    assert profile.profile_id == 9 and profile.duration_s == 300
    assert abs((profile.activation - start).total_seconds()) < 1
    assert limiter.emergency_group_ids() == [4, 9] and not limiter.emergency_profile_active()
    limiter.restore_emergency_profile(raw)
    assert limiter.emergency_profile().activation is None


def test_power_failure_log_and_counter_views_after_an_outage(emulator, session, clock):
    log = PowerFailureLog(session, "1.0.99.97.0.255")
    count = DataValue(session, "0.0.96.7.21.255", DataType.LONG_UNSIGNED)
    before = log.entries()
    outage(emulator, 400)
    reassociate(session, clock, 30)
    (entry,) = log.new_since(before)
    assert entry.duration_s == 400 and count.read() == 1


def test_alarm_views_write_and_read(emulator, session):
    alarm_filter = DataValue(session, "0.0.97.98.10.255")
    alarm_filter.write(0b100)
    assert alarm_filter.read() == 0b100


def test_reassociate_waits_out_the_boot_in_bench_time(emulator, session, clock):
    emulator.set_supply(0.0)
    emulator.set_supply(220.0)  # boots for 2 s
    took = reassociate(session, clock, 30)
    assert 2.0 <= took <= 3.5 and session.is_associated


def test_reassociate_gives_up_after_its_bench_time(emulator, session, clock):
    emulator.set_supply(0.0)
    wall = time.monotonic()
    with pytest.raises(LinkError):
        reassociate(session, clock, 120)
    assert time.monotonic() - wall < 5


def test_wait_until_in_bench_time(clock):
    began = clock.monotonic()
    assert wait_until(lambda: clock.monotonic() - began >= 7, clock, 60, 1.0) == pytest.approx(7, abs=0.1)
    assert wait_until(lambda: False, clock, 30, 1.0) is None
    assert clock.monotonic() - began >= 37


def test_restore_connected_from_ready_for_reconnection(emulator, session):
    dc = DisconnectControl(session, "0.0.96.3.10.255")
    dc.set_control_mode(2)
    emulator.local_disconnect()  # g: connected -> ready_for_reconnection
    assert dc.control_state() is ControlState.READY_FOR_RECONNECTION
    restore_connected(dc, [1, 2], 2)
    assert dc.control_state() is ControlState.CONNECTED and dc.control_mode() == 2


def test_emulated_button_is_the_manual_reconnect(emulator):
    emulator.local_disconnect()
    EmulatedButton(emulator).press_reconnect()
    state = emulator.state
    assert state.control_state.name == "CONNECTED" and state.disconnector_events[-1][1] == 61


def test_source_current_reads_the_measurement_object_or_a_tuple():
    measured = SimpleNamespace(measure=lambda: SimpleNamespace(voltage_v=230.0, current_a=4.5, power_w=1035.0))
    assert source_current_a(measured) == 4.5
    assert source_current_a(SimpleNamespace(measure=lambda: (230.0, 2.5, 575.0))) == 2.5


def test_head_end_listens_on_loopback_unless_the_bench_says_otherwise():
    assert _head_end_settings(SimpleNamespace()) == ("127.0.0.1", 0, None)
    configured = SimpleNamespace(head_end=SimpleNamespace(host="0.0.0.0", port=4060, advertise="192.0.2.5:4060"))
    assert _head_end_settings(configured) == ("0.0.0.0", 4060, "192.0.2.5:4060")


def test_default_supply_profile_is_consistent():
    supply = load_profile("emulated-idis").supply
    limits = supply.limits
    assert limits.short_interruption_length.value < limits.short_interruption_threshold.value <= \
        limits.outage_length.value
    assert limits.short_overload_length.value < limits.limiter_min_over_threshold_duration.value
    assert limits.underload_power.value < limits.limiter_emergency_threshold.value < limits.limiter_threshold.value \
        < limits.overload_power.value
    assert all(limit.provisional and limit.note for _, limit in limits)
    assert 1 <= supply.limiter.local_control_mode <= 4
