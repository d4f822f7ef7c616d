"""The head-end listener: strict parsing, never a crash or a hang, waits in bench time."""
from __future__ import annotations

import random
import socket
import struct
import threading
import time
from datetime import datetime, timezone

import pytest
from gurux_dlms import GXByteBuffer, GXDLMSNotify
from gurux_dlms.enums import DataType as GxType
from gurux_dlms.enums import InterfaceType
from gurux_dlms.internal._GXCommon import _GXCommon
from smmc_bench.clock import RealClock
from smmc_bench.drivers.headend import HeadEndListener, parse_data_notification
from smmc_bench.drivers.headend.notification import MalformedNotification
from smmc_bench.fixtures.clock import VirtualClock

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
# 12:00:00 local, deviation +240 (UTC 16:00), a valid COSEM date-time
STAMP = bytes.fromhex("07e9030a010c000000" + "00f0" + "00")
BODY = bytes.fromhex("0202" "0904454d5531" "0600000004")  # structure {octet-string 'EMU1', 4}


def frame(apdu: bytes, source: int = 1, destination: int = 102, version: int = 1) -> bytes:
    return struct.pack(">HHHH", version, source, destination, len(apdu)) + apdu


def notification(invoke: int = 1, stamp: bytes | None = STAMP, body: bytes = BODY, flags: int = 0) -> bytes:
    date_time = b"\x00" if stamp is None else bytes([len(stamp)]) + stamp
    return b"\x0f" + bytes([flags]) + invoke.to_bytes(3, "big") + date_time + body


def send(address, payload: bytes, *, close: bool = True) -> socket.socket:
    sock = socket.create_connection(address, timeout=2)
    sock.sendall(payload)
    if close:
        sock.close()
    return sock


@pytest.fixture
def clock():
    return VirtualClock(START)


@pytest.fixture
def listener(clock):
    with HeadEndListener(clock) as head_end:
        yield head_end


def test_records_a_notification_with_its_fields(listener, clock):
    send(listener.address, frame(notification(invoke=0x123456)))
    got = listener.wait_for(timeout_s=1)
    assert got is not None and not listener.rejected
    assert (got.source_wport, got.client_wport, got.invoke_id) == (1, 102, 0x123456)
    assert got.time == datetime(2025, 3, 10, 16, 0, 0, tzinfo=timezone.utc)
    assert got.data == [b"EMU1", 4]
    assert abs((got.arrival - clock.now()).total_seconds()) < 1


def test_gurux_notifier_is_understood():
    """An encoder written by others: gurux's server-side notifier."""
    clock = VirtualClock(START)
    notify = GXDLMSNotify(True, 102, 1, InterfaceType.WRAPPER)
    body = GXByteBuffer()
    body.setUInt8(GxType.STRUCTURE)
    body.setUInt8(2)
    _GXCommon.setData(None, body, GxType.OCTET_STRING, b"EMU1")
    _GXCommon.setData(None, body, GxType.UINT32, 4)
    (message,) = notify.generateDataNotificationMessages(datetime(2025, 3, 10, 12, tzinfo=timezone.utc), body)
    with HeadEndListener(clock) as head_end:
        send(head_end.address, bytes(message))
        got = head_end.wait_for(timeout_s=1)
    assert got is not None and got.data == [b"EMU1", 4] and got.high_priority
    assert got.time == datetime(2025, 3, 10, 12, tzinfo=timezone.utc)


def test_several_frames_on_one_connection_and_split_anyhow(listener):
    stream = frame(notification(1)) + frame(notification(2, stamp=None)) + frame(notification(3))
    sock = socket.create_connection(listener.address, timeout=2)
    try:
        for index in range(0, len(stream), 3):
            sock.sendall(stream[index:index + 3])
            time.sleep(0.0005)
    finally:
        sock.close()
    assert listener.wait_for(lambda n: n.invoke_id == 3, timeout_s=2) is not None
    assert [n.invoke_id for n in listener.notifications] == [1, 2, 3]
    assert listener.notifications[1].time is None and listener.notifications[1].raw_time is None


@pytest.mark.parametrize("apdu, why", [
    (b"\xc4\x01\x01\x00\x06\x00\x00\x00\x01", "not a DataNotification"),
    (b"\xdb\x08" + bytes(20), "ciphered"),
    (b"\x0f\x00\x00\x00", "truncated"),
    (notification(flags=0x01), "reserved bits"),
    (notification(stamp=b"\x01"), "presence flag"),
    (notification(stamp=STAMP[:2] + b"\x0d" + STAMP[3:]), "month=13"),
    (notification(body=b""), "body missing"),
    (notification(body=BODY + b"\x00"), "trailing"),
    (notification(body=b"\x02\x05\x09"), "missing"),
    (notification(body=b"\x63"), "unknown data tag"),
])
def test_malformed_apdus_are_rejected_with_a_diagnosis(listener, apdu, why):
    send(listener.address, frame(apdu) + frame(notification(9)))
    assert listener.wait_for(lambda n: n.invoke_id == 9, timeout_s=1) is not None  # the stream goes on
    (rejected,) = listener.rejected
    assert why in rejected.diagnosis and rejected.raw == apdu


def test_bad_wrapper_version_closes_the_connection(listener):
    sock = send(listener.address, frame(notification(), version=2), close=False)
    try:
        sock.settimeout(2)
        assert sock.recv(1) == b""
    finally:
        sock.close()
    listener.settle()
    assert "wrapper version 2" in listener.rejected[0].diagnosis and listener.notifications == []


def test_empty_frame_and_wrong_wport_are_rejected(clock):
    with HeadEndListener(clock, expected_client_wport=102) as head_end:
        send(head_end.address, frame(b"") + frame(notification(), destination=5))
        head_end.settle()
        time.sleep(0.05)
        head_end.settle()
        diagnoses = [r.diagnosis for r in head_end.rejected]
    assert len(diagnoses) == 2 and "empty APDU" in diagnoses[0] and "wPort 5" in diagnoses[1]


def test_truncated_frame_is_rejected_when_the_peer_hangs_up(listener):
    send(listener.address, frame(notification())[:-3])
    deadline = time.monotonic() + 2
    while not listener.rejected and time.monotonic() < deadline:
        listener.settle()
    assert "truncated" in listener.rejected[0].diagnosis


def test_idle_partial_frame_times_out(clock):
    with HeadEndListener(clock, idle_timeout_s=0.3) as head_end:
        sock = send(head_end.address, frame(notification())[:5], close=False)
        try:
            deadline = time.monotonic() + 3
            while not head_end.rejected and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            sock.close()
        assert "idle" in head_end.rejected[0].diagnosis


def test_connection_cap(clock):
    with HeadEndListener(clock, max_connections=2) as head_end:
        held = [send(head_end.address, b"", close=False) for _ in range(3)]
        try:
            deadline = time.monotonic() + 2
            while not head_end.rejected and time.monotonic() < deadline:
                head_end.settle()
        finally:
            for sock in held:
                sock.close()
        assert "more than 2 connections" in head_end.rejected[0].diagnosis


def test_random_bytes_never_crash_it(listener):
    rng = random.Random(4)
    for _ in range(40):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 120)))
        send(listener.address, frame(junk) if rng.random() < 0.7 else junk)
    send(listener.address, frame(notification(77)))
    assert listener.wait_for(lambda n: n.invoke_id == 77, timeout_s=2) is not None
    assert listener.settle()  # the I/O thread is alive and answering


def test_wait_for_waits_in_bench_time_not_wall_time(listener, clock):
    """A push due 5 s of bench time ahead arrives without 5 s of wall time."""
    clock.call_later(5.0, lambda: send(listener.address, frame(notification(5))))
    began, wall = clock.monotonic(), time.monotonic()
    got = listener.wait_for(lambda n: n.invoke_id == 5, timeout_s=30)
    assert got is not None and time.monotonic() - wall < 1.0
    assert 5.0 <= clock.monotonic() - began <= 5.6
    assert 0 <= (got.arrival - START).total_seconds() - 5.0 <= 0.6


def test_wait_for_times_out_in_bench_time(listener, clock):
    began, wall = clock.monotonic(), time.monotonic()
    assert listener.wait_for(timeout_s=120) is None
    assert clock.monotonic() - began >= 120 and time.monotonic() - wall < 1.0


def test_wait_for_on_a_real_clock_really_waits():
    with HeadEndListener(RealClock()) as head_end:
        threading.Timer(0.2, lambda: send(head_end.address, frame(notification(8)))).start()
        began = time.monotonic()
        assert head_end.wait_for(lambda n: n.invoke_id == 8, timeout_s=3, poll_s=0.05) is not None
        assert time.monotonic() - began >= 0.2


def test_stop_closes_everything_and_clear_forgets(clock):
    head_end = HeadEndListener(clock)
    address = head_end.start()
    held = send(address, frame(notification())[:4], close=False)
    head_end.settle()
    head_end.stop()
    try:
        held.settimeout(2)
        assert held.recv(1) == b""
    except ConnectionResetError:
        pass
    finally:
        held.close()
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=1)
    assert not head_end.settle()
    head_end.clear()
    assert head_end.notifications == [] and head_end.rejected == []


def test_destination_text(listener):
    host, port = listener.address
    assert listener.destination == f"{host}:{port}"


def test_parser_directly():
    parsed = parse_data_notification(notification(invoke=3, flags=0x80))
    assert parsed.invoke_id == 3 and parsed.high_priority and parsed.data == [b"EMU1", 4]
    with pytest.raises(MalformedNotification) as bad:
        parse_data_notification(b"")
    assert bad.value.diagnosis == "empty APDU"
