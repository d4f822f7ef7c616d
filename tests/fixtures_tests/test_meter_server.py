"""The emulated emu over the TCP wrapper: gurux interop, access control, lifecycle."""
from __future__ import annotations

import socket
import struct
import threading
from datetime import datetime, timedelta, timezone

import pytest
from gurux_dlms import GXDateTime, GXDLMSException
from gurux_dlms.enums import DataType
from gurux_dlms.objects import (
    GXDLMSClock,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSRegister,
)
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter, axdr, default_lls_password
from smmc_bench.fixtures.meter.cosem_objects import ControlState

from tests.fixtures_tests.gurux_link import GuruxLink

PASSWORD = b"test-lls-pass"


@pytest.fixture
def emu():
    with EmulatedMeter(clock=VirtualClock(), lls_password=PASSWORD) as running:
        yield running


def management(emu: EmulatedMeter, **kwargs) -> GuruxLink:
    link = GuruxLink(emu.address, client_sap=1, password=PASSWORD, **kwargs)
    link.associate()
    return link


def raw_exchange(sock: socket.socket, apdu: bytes, source: int = 16, destination: int = 1) -> bytes:
    sock.sendall(struct.pack(">HHHH", 1, source, destination, len(apdu)) + apdu)
    header = sock.recv(8)
    version, src, dst, length = struct.unpack(">HHHH", header)
    assert (version, src, dst) == (1, 1, source)
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return body


def assert_closed(sock: socket.socket) -> None:
    """The meter closed its end (EOF, or a reset when our unread bytes were pending)."""
    try:
        assert sock.recv(16) == b""
    except ConnectionResetError:
        pass


PUBLIC_AARQ = bytes.fromhex("601da109060760857405080101be10040e01000000065f1f0400401e5dffff")
GET_CLOCK_TIME = bytes.fromhex("c001c100080000010000ff0200")


def test_gurux_management_session(emu):
    with management(emu, max_pdu=256) as link:
        client = link.client
        frames_before = link.frames_received
        objects = client.parseObjects(link.exchange(client.getObjectsRequest()).data, True)
        assert link.frames_received - frames_before > 1, "object list should need block transfer"
        names = {str(obj.logicalName) for obj in objects}
        assert {"0.0.1.0.0.255", "0.0.96.3.10.255", "1.0.1.8.0.255", "0.0.99.98.0.255",
                "0.0.40.0.0.255", "0.0.42.0.0.255"} <= names

        clock = GXDLMSClock("0.0.1.0.0.255")
        client.updateValue(clock, 2, link.exchange(client.read(clock, 2)).value)
        assert abs((clock.time.value - emu.clock.now()).total_seconds()) < 1.5

        chile = timezone(timedelta(hours=-4))
        clock.time = GXDateTime(datetime(2025, 6, 1, 10, 0, 0, tzinfo=chile))
        assert link.exchange(client.write(clock, 2)).error == 0
        assert abs((emu.clock.now() - datetime(2025, 6, 1, 14, 0, tzinfo=timezone.utc)).total_seconds()) < 1
        assert [code for _, code in emu.state.standard_events] == [4, 5]

        assert link.exchange(client.method(clock, 6, 60, DataType.INT16)).error == 0
        assert link.exchange(client.method(clock, 6, 5000, DataType.INT16)).error != 0

        control = GXDLMSDisconnectControl("0.0.96.3.10.255")
        assert link.exchange(control.remoteDisconnect(client)).error == 0
        assert emu.state.control_state == ControlState.DISCONNECTED and not emu.state.output_state
        assert link.exchange(client.read(control, 3)).value == 0
        assert link.exchange(client.read(control, 2)).value is False

        energy = GXDLMSRegister("1.0.1.8.0.255")
        assert link.exchange(client.read(energy, 2)).value == emu.state.energy_wh

        assert link.release().data is not None


def test_gurux_reads_identity_and_event_log(emu):
    with management(emu) as link:
        client = link.client
        serial = GXDLMSData("0.0.96.1.0.255")
        assert bytes(link.exchange(client.read(serial, 2)).value) == b"EMU0000001"
        emu.disconnect_control.invoke(1, axdr.integer(0))
        log = link.client.parseObjects(link.exchange(client.getObjectsRequest()).data, True)
        event_log = next(obj for obj in log if str(obj.logicalName) == "0.0.99.98.2.255")
        for attribute in (3, 2):
            client.updateValue(event_log, attribute, link.exchange(client.read(event_log, attribute)).value)
        assert len(event_log.buffer) == 1 and event_log.buffer[0][1] == 62


def test_public_client_reads_but_cannot_write_or_act(emu):
    with GuruxLink(emu.address, client_sap=16) as link:
        link.associate()
        client = link.client
        clock = GXDLMSClock("0.0.1.0.0.255")
        client.updateValue(clock, 2, link.exchange(client.read(clock, 2)).value)
        clock.time = GXDateTime(datetime(2025, 6, 1, 10, 0, 0, tzinfo=timezone.utc))
        offset = emu.clock.offset_s
        assert link.exchange(client.write(clock, 2)).error == 3
        assert emu.clock.offset_s == offset
        control = GXDLMSDisconnectControl("0.0.96.3.10.255")
        assert link.exchange(control.remoteDisconnect(client)).error == 3
        assert emu.state.control_state == ControlState.CONNECTED
        assert link.exchange(client.read(control, 3)).error == 3


@pytest.mark.parametrize("password", [b"wrong", b""])
def test_wrong_password_rejected_with_authentication_failure(emu, password):
    with GuruxLink(emu.address, client_sap=1, password=password or b"x" * 0) as link:
        with pytest.raises(GXDLMSException) as rejected:
            link.associate()
        assert rejected.value.result == 1 and rejected.value.diagnostic == 13


def test_management_without_authentication_is_rejected(emu):
    with GuruxLink(emu.address, client_sap=1) as link:
        with pytest.raises(GXDLMSException) as rejected:
            link.associate()
        assert rejected.value.diagnostic == 12


def test_unknown_client_sap_is_rejected(emu):
    with GuruxLink(emu.address, client_sap=99) as link:
        with pytest.raises(GXDLMSException) as rejected:
            link.associate()
        assert rejected.value.result == 1 and rejected.value.diagnostic == 1


def test_raw_requests_unknown_object_and_no_association(emu):
    with socket.create_connection(emu.address, timeout=3) as sock:
        assert raw_exchange(sock, GET_CLOCK_TIME) == bytes.fromhex("d80102")  # not associated
        assert raw_exchange(sock, PUBLIC_AARQ)[:2] == b"\x61\x29"
        unknown_object = bytes.fromhex("c001c100010000636363ff0200")
        assert raw_exchange(sock, unknown_object) == bytes.fromhex("c401c10104")
        class_unknown_to_dlms_cosem = bytes.fromhex("c001c1fff10000636363ff0200")
        assert raw_exchange(sock, class_unknown_to_dlms_cosem) == bytes.fromhex("c401c10104")
        wrong_class = bytes.fromhex("c001c100010000010000ff0200")
        assert raw_exchange(sock, wrong_class) == bytes.fromhex("c401c10109")
        unknown_attribute = bytes.fromhex("c001c100080000010000ff1e00")
        assert raw_exchange(sock, unknown_attribute) == bytes.fromhex("c401c10104")
        assert raw_exchange(sock, b"\xc0\x07\x01") == bytes.fromhex("d80202")
        assert raw_exchange(sock, bytes.fromhex("6203800100")) == bytes.fromhex("6303800100")
        assert raw_exchange(sock, GET_CLOCK_TIME) == bytes.fromhex("d80102")


def test_frames_for_another_wport_are_dropped(emu):
    with socket.create_connection(emu.address, timeout=3) as sock:
        sock.sendall(struct.pack(">HHHH", 1, 16, 7, len(PUBLIC_AARQ)) + PUBLIC_AARQ)
        assert raw_exchange(sock, PUBLIC_AARQ)[:2] == b"\x61\x29"


def test_bad_wrapper_version_closes_only_that_connection(emu):
    with socket.create_connection(emu.address, timeout=3) as bad:
        bad.sendall(b"\x00\x02\x00\x10\x00\x01\x00\x01\x00")
        assert_closed(bad)
    with socket.create_connection(emu.address, timeout=3) as good:
        assert raw_exchange(good, PUBLIC_AARQ)[:2] == b"\x61\x29"


def test_stop_frees_port_and_leaves_no_threads():
    emu = EmulatedMeter()
    host, port = emu.start()
    client = socket.create_connection((host, port), timeout=3)
    raw_exchange(client, PUBLIC_AARQ)
    emu.stop()
    emu.stop()
    assert_closed(client)
    client.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("emu-")]
    assert all(t.daemon for t in threading.enumerate() if t is not threading.main_thread())
    with socket.socket() as rebind:
        rebind.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rebind.bind((host, port))


def test_default_password_comes_from_secrets_file():
    password = default_lls_password()
    assert password and not password.endswith((b"\n", b" "))
    with EmulatedMeter() as emu:
        with GuruxLink(emu.address, client_sap=1, password=password) as link:
            link.associate()
