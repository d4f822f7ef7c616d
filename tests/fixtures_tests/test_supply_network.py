"""The emulated meter's supply side over the wire: pushes to a head-end, silence while
powered down, associations lost across a power cycle."""
from __future__ import annotations

import socket
import threading
from datetime import datetime, timedelta, timezone

import pytest
from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
from gurux_dlms.enums import InterfaceType
from smmc_bench.drivers.dlms import DataType as T
from smmc_bench.drivers.dlms import (
    DlmsSession,
    SessionSettings,
    TcpWrapperTransport,
    Typed,
)
from smmc_bench.drivers.dlms.errors import LinkError
from smmc_bench.drivers.headend import HeadEndListener
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter, Mutant, axdr, cosem_time
from smmc_bench.fixtures.meter.cosem_objects import CosemError, obis
from smmc_bench.fixtures.meter.push import PushFailed
from smmc_bench.fixtures.meter.supply_objects import PushSetup

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
PASSWORD = b"test-lls-pass"


def session(meter: EmulatedMeter) -> DlmsSession:
    host, port = meter.address
    return DlmsSession(TcpWrapperTransport(host, port, connect_timeout=2),
                       SessionSettings(client_sap=1, server_logical=1, authentication=1, password=PASSWORD,
                                       timeout=2))


@pytest.fixture
def clock():
    return VirtualClock(START)


@pytest.fixture
def head_end(clock):
    with HeadEndListener(clock) as listener:
        yield listener


def outage(meter: EmulatedMeter, seconds: float) -> None:
    meter.set_supply(0.0)
    meter.bench_clock.sleep(seconds)
    meter.set_supply(220.0)


# --- the alarm push ---------------------------------------------------------------------

def test_restoration_push_arrives_after_the_push_delay_in_bench_time(clock, head_end):
    meter = EmulatedMeter(clock=clock, push_destination=head_end.address, lls_password=PASSWORD)
    meter.set_supply(0.0)
    clock.sleep(300)
    restored = clock.now()  # before the restoration: the push delay counts from inside set_supply
    meter.set_supply(220.0)
    notification = head_end.wait_for(timeout_s=60)
    assert notification is not None and not head_end.rejected
    assert 5.0 <= (notification.arrival - restored).total_seconds() < 5.6
    assert (notification.source_wport, notification.client_wport) == (1, 102)
    assert abs((notification.time - meter.clock.now()).total_seconds()) < 60
    push_ln, device_name, alarms = notification.data
    assert push_ln == obis("0.4.25.9.0.255") and device_name == b"EMUEMU0000001" and alarms == 1 << 2


def test_push_is_parsed_by_gurux_too(clock):
    """An independent decoder (gurux's client) reads the emulator's DataNotification."""
    frames = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)

    def capture():
        conn, _ = server.accept()
        with conn:
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
            frames.append(data)

    thread = threading.Thread(target=capture, daemon=True)
    thread.start()
    try:
        meter = EmulatedMeter(clock=clock, push_destination=server.getsockname()[:2])
        meter.push_setup.invoke(1, axdr.integer(0))
        clock.sleep(0.1)
        thread.join(5)
    finally:
        server.close()
    client = GXDLMSClient(True, 102, 1, interfaceType=InterfaceType.WRAPPER)
    reply, notify = GXReplyData(), GXReplyData()
    client.getData(GXByteBuffer(frames[0]), reply, notify)
    assert notify.command == 15 and bytes(notify.value[1]) == b"EMUEMU0000001"


def test_filter_masks_the_push_but_not_the_register(clock, head_end):
    meter = EmulatedMeter(clock=clock, push_destination=head_end.address)
    meter.model.alarm_filter.set(2, axdr.double_long_unsigned(0))
    outage(meter, 300)
    assert head_end.wait_for(timeout_s=120) is None
    assert meter.state.alarm_register == 1 << 2


def test_push_due_while_powered_down_is_lost_and_restoration_pushes_again(clock, head_end):
    meter = EmulatedMeter(clock=clock, push_destination=head_end.address)
    outage(meter, 300)
    meter.set_supply(0.0)  # before the 5 s push delay ends
    clock.sleep(60)
    assert head_end.notifications == []
    meter.set_supply(220.0)
    assert head_end.wait_for(timeout_s=30) is not None
    assert len(head_end.notifications) == 1


def test_push_method_pushes_at_once_and_invoke_ids_count_up(clock, head_end):
    meter = EmulatedMeter(clock=clock, push_destination=head_end.address)
    meter.push_setup.invoke(1, axdr.integer(0))
    meter.push_setup.invoke(1, axdr.integer(0))
    clock.sleep(0.01)
    assert head_end.wait_for(lambda n: n.invoke_id == 2, timeout_s=1) is not None
    assert [n.invoke_id for n in head_end.notifications] == [1, 2]


def test_push_without_destination_is_refused(clock):
    meter = EmulatedMeter(clock=clock)
    with pytest.raises(CosemError):
        meter.push_setup.invoke(1, axdr.integer(0))


class FailsTwice(PushSetup):
    attempts: list[float] = []

    def _deliver(self, destination, apdu):
        FailsTwice.attempts.append(self._bench.monotonic())
        if len(FailsTwice.attempts) <= 2:
            raise PushFailed("head-end busy")
        super()._deliver(destination, apdu)


def test_failed_push_is_retried_repetition_delay_apart(clock, head_end):
    FailsTwice.attempts = []
    meter = EmulatedMeter(clock=clock, push_destination=head_end.address,
                          mutant=Mutant("fails-twice", "test double", 7, {PushSetup: FailsTwice}))
    meter.push_setup.set(7, axdr.long_unsigned(30))
    meter.push_setup.invoke(1, axdr.integer(0))
    assert head_end.wait_for(timeout_s=120) is not None
    gaps = [round(b - a) for a, b in zip(FailsTwice.attempts, FailsTwice.attempts[1:])]
    assert gaps == [30, 30]


def test_unreachable_destination_gives_up_after_the_retries(clock):
    FailsTwice.attempts = []
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now: connections are refused
    meter = EmulatedMeter(clock=clock, push_destination=("127.0.0.1", port))
    meter.push_setup.set(6, axdr.unsigned(2))
    meter.push_setup.invoke(1, axdr.integer(0))
    clock.sleep(600)
    assert meter.push_setup.delivered == 0


def test_push_waits_for_its_communication_window(clock, head_end):
    meter = EmulatedMeter(clock=clock, push_destination=head_end.address)
    opens = meter.clock.now() + timedelta(minutes=10)
    window = axdr.structure(axdr.octet_string(cosem_time.encode(opens, 240)),
                            axdr.octet_string(cosem_time.encode(opens + timedelta(minutes=5), 240)))
    meter.push_setup.set(4, axdr.array([window]))
    meter.push_setup.invoke(1, axdr.integer(0))
    assert head_end.wait_for(timeout_s=590) is None
    arrived = head_end.wait_for(timeout_s=30)
    assert arrived is not None


def test_send_destination_is_validated(clock):
    meter = EmulatedMeter(clock=clock)
    setup = meter.push_setup

    def destination(transport=0, text=b"127.0.0.1:4059", message=0):
        return axdr.structure(axdr.enum(transport), axdr.octet_string(text), axdr.enum(message))

    setup.set(3, destination())
    assert setup.get(3) == destination()
    for bad in (destination(transport=1), destination(message=1), destination(text=b"no-port"),
                destination(text=b"host:99999")):
        with pytest.raises(CosemError):
            setup.set(3, bad)
    setup.set(3, destination(text=b""))
    assert setup.destination == ""


def test_last_gasp_pushes_at_the_instant_of_loss(clock, head_end):
    meter = EmulatedMeter(clock=clock, push_destination=head_end.address, last_gasp_alarm_bit=3)
    meter.model.alarm_filter.set(2, axdr.double_long_unsigned(1 << 3))
    lost = clock.now()
    meter.set_supply(0.0)
    gasp = head_end.wait_for(timeout_s=1)
    assert gasp is not None and gasp.data[2] == 1 << 3
    assert (gasp.arrival - lost).total_seconds() < 0.5


# --- DLMS while powered down ---------------------------------------------------------------

def test_powered_down_meter_drops_and_refuses_dlms_then_answers_after_boot(clock):
    with EmulatedMeter(clock=clock, lls_password=PASSWORD, boot_time_s=3) as meter:
        dlms = session(meter)
        dlms.connect()
        assert dlms.get(1, "0.0.96.1.0.255", 2) == b"EMU0000001"
        meter.set_supply(0.0)
        with pytest.raises(LinkError):
            dlms.get(1, "0.0.96.1.0.255", 2)
        dlms.close()
        with pytest.raises(LinkError):
            session(meter).connect()
        meter.set_supply(220.0)
        with pytest.raises(LinkError):
            session(meter).connect()  # still booting
        clock.sleep(3.5)
        with session(meter) as again:
            assert again.get(3, "1.0.32.7.0.255", 2) == 2200


def test_power_cycle_loses_the_association_on_a_connection_that_survives(clock):
    """A link server that keeps its connection (e.g. a serial line) must not keep the association."""
    from smmc_bench.fixtures.meter.services import MeterSilent, Session

    meter = EmulatedMeter(clock=clock, lls_password=PASSWORD)
    serial_line = Session(meter.model, meter.clients)
    aarq = bytes.fromhex("601da109060760857405080101be10040e01000000065f1f0400401e5dffff")
    get_serial = bytes.fromhex("c001c100010000600100ff0200")
    assert serial_line.handle(16, aarq)[0] == 0x61
    assert serial_line.handle(16, get_serial)[0] == 0xC4
    meter.set_supply(0.0)
    with pytest.raises(MeterSilent):
        serial_line.handle(16, get_serial)
    meter.set_supply(220.0)
    clock.sleep(3)
    assert serial_line.handle(16, get_serial)[0] == 0xD8  # exception-response: no association


def test_limiter_written_over_dlms_with_the_bench_driver(clock):
    with EmulatedMeter(clock=clock, lls_password=PASSWORD) as meter, session(meter) as dlms:
        dlms.set(71, "0.0.17.0.0.255", 4, Typed(T.DOUBLE_LONG, 3000))
        dlms.set(71, "0.0.17.0.0.255", 6, Typed(T.DOUBLE_LONG_UNSIGNED, 30))
        start = meter.clock.now() + timedelta(minutes=2)
        dlms.set(71, "0.0.17.0.0.255", 8, Typed(T.STRUCTURE, [
            Typed(T.LONG_UNSIGNED, 1), Typed(T.OCTET_STRING, cosem_time.encode(start, 240)),
            Typed(T.DOUBLE_LONG_UNSIGNED, 600)]))
        assert dlms.get(71, "0.0.17.0.0.255", 4) == 3000
        assert dlms.get(71, "0.0.17.0.0.255", 8)[2] == 600
        profile = dlms.get(40, "0.4.25.9.0.255", 2)
        assert [entry[0] for entry in profile] == [40, 1, 1]
        assert dlms.get(23, "0.0.22.0.0.255", 2) == 5
        assert dlms.get(64, "0.0.43.0.0.255", 5) == b"EMU" + (1).to_bytes(5, "big")


def test_client_parameter_writes_log_event_47_the_emulators_own_do_not(clock):
    with EmulatedMeter(clock=clock, lls_password=PASSWORD) as meter, session(meter) as dlms:
        meter.model.hdlc_setup.set(9, axdr.long_unsigned(0x21))  # the bench placing the meter on a bus
        dlms.set(8, "0.0.1.0.0.255", 3, Typed(T.LONG, 180))
        dlms.set(71, "0.0.17.0.0.255", 6, Typed(T.DOUBLE_LONG_UNSIGNED, 30))
        dlms.set(1, "0.0.97.98.0.255", 2, Typed(T.DOUBLE_LONG_UNSIGNED, 0))  # clearing alarms: not a parameter
        assert [code for _, code in meter.state.standard_events] == [47, 47]


def test_load_profile_of_a_thousand_rows_reads_over_dlms_in_blocks(clock):
    with EmulatedMeter(clock=clock, lls_password=PASSWORD) as meter, session(meter) as dlms:
        meter.load_profile.fill(rows=1000)
        rows = dlms.get(7, "1.0.99.1.0.255", 2)
        assert len(rows) == 1000 and dlms.get(7, "1.0.99.1.0.255", 7) == 1000
        assert [row[2] for row in rows] == sorted(row[2] for row in rows)
