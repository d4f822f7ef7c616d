"""Byte streams: the pyserial workarounds they carry (pinned), line-setting changes
in place or by reopening, echo cancelling, the shared bus port."""
from __future__ import annotations

import socket
import threading
import time

import pytest
import serial
from smmc_bench.drivers.dlms.errors import ConnectFailed, DlmsTimeout, LinkClosed
from smmc_bench.drivers.links.stream import BusStream, SerialStream, SharedPort
from smmc_bench.fixtures.links.lines import PtyMedium


@pytest.fixture
def listener():
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()
    for sock in accepted:
        sock.close()


def test_pyserial_socket_close_still_sleeps_and_ours_does_not(listener):
    """Pins the workaround in stream._port_for: pyserial 3.5 sleeps 0.3 s in close() of
    socket:// (and rfc2217://). If this starts failing, pyserial dropped the sleep: remove ours."""
    port, _ = listener
    theirs = serial.serial_for_url(f"socket://127.0.0.1:{port}")
    started = time.monotonic()
    theirs.close()
    assert time.monotonic() - started >= 0.25
    ours = SerialStream(f"socket://127.0.0.1:{port}")
    ours.open()
    started = time.monotonic()
    ours.close()
    assert time.monotonic() - started < 0.2  # far below pyserial's 0.3 s, with room for a loaded machine


def test_socket_peer_closing_is_link_closed(listener):
    port, accepted = listener
    stream = SerialStream(f"socket://127.0.0.1:{port}")
    stream.open()
    deadline = time.monotonic() + 10
    while not accepted and time.monotonic() < deadline:
        time.sleep(0.01)
    accepted[0].close()
    with pytest.raises(LinkClosed):
        stream.read(1.0)


def test_read_is_bounded_and_open_failure_names_the_port():
    medium = PtyMedium()
    try:
        stream = SerialStream(medium.path)
        stream.open()
        started = time.monotonic()
        assert stream.read(0.2) == b""
        assert 0.15 < time.monotonic() - started < 2.0  # waited its bound; the upper bound only guards a hang
        stream.close()
    finally:
        medium.close()
    with pytest.raises(ConnectFailed, match="cannot open /dev/nonexistent"):
        SerialStream("/dev/nonexistent").open()


def test_reconfigure_in_place_or_by_reopening(monkeypatch):
    medium = PtyMedium()
    try:
        stream = SerialStream(medium.path, baudrate=300)
        stream.open()
        assert stream.reconfigure(baudrate=9600) == "in place"
        assert medium.settings()[0] == 9600

        def refuse(self, settings):
            raise serial.SerialException("not in place")

        monkeypatch.setattr(type(stream._port), "apply_settings", refuse)
        assert stream.reconfigure(baudrate=19200) == "by closing and reopening the port"
        assert medium.settings()[0] == 19200 and stream.is_open
        stream.close()
    finally:
        medium.close()


def test_echo_cancelling_drops_our_own_bytes():
    stream = SerialStream("loop://", echo=True)
    stream.open()
    stream.write(b"hello")
    assert stream.read(0.1) == b""
    stream.write(b"abc")
    stream.echo = False
    assert stream.read(0.1) == b""  # the pending echo of "abc" still goes
    stream.close()


def test_echo_cancelling_decides_on_content_not_on_time():
    """A reply that overtakes the echo of a later write (a retransmission on a loaded PC) is kept,
    and the late echo is still dropped; bytes that diverge from the echo pass untouched."""
    stream = SerialStream("loop://", echo=True)
    stream.open()
    stream.write(b"\x7e\xa0first\x7e")
    stream.write(b"\x7e\xa0again\x7e")
    peer = stream._port  # loop://: what is written comes back to read(); take the echoes out to replay them
    assert peer.read(100) == b"\x7e\xa0first\x7e\x7e\xa0again\x7e"
    peer.write(b"\x7e\xa0first\x7e")               # echo of the first write
    assert stream.read(0.5) == b""
    peer.write(b"\x7e\xa0reply\x7e")               # the reply, before the second echo
    assert stream.read(0.5) == b"\x7e\xa0reply\x7e"
    peer.write(b"\x7e\xa0aga")                       # the late echo, in two pieces
    assert stream.read(0.5) == b""
    peer.write(b"in\x7e" + b"\x7e\xa0next\x7e")
    assert stream.read(0.5) == b"\x7e\xa0next\x7e"
    stream.close()


def test_bus_port_is_shared_and_one_transaction_at_a_time():
    medium = PtyMedium()
    try:
        shared = SharedPort.get(medium.path, 9600, 1.0)
        assert SharedPort.get(medium.path, 9600, 1.0) is shared
        with pytest.raises(ConnectFailed, match="already in use at 9600"):
            SharedPort.get(medium.path, 19200, 1.0)
        one, two = BusStream(shared, "meter 17"), BusStream(shared, "meter 18")
        one.open()
        two.open()
        one.begin(1.0)
        with pytest.raises(DlmsTimeout, match="busy"):
            two.begin(0.1)
        one.end()
        two.begin(0.1)
        two.end()
        one.close()
        assert shared.stream.is_open
        two.close()
        assert not shared.stream.is_open
        assert SharedPort.get(medium.path, 19200, 1.0) is not shared  # released: a new bus may use the port
    finally:
        medium.close()
        SharedPort._registry.clear()


HOLD_PORT = """
import sys, time, serial
port = serial.Serial(sys.argv[1], exclusive=True)
print("held", flush=True)
time.sleep(30)
"""


def test_a_local_port_held_by_another_process_is_waited_for_then_named():
    import os
    import subprocess
    import sys

    master, slave = os.openpty()
    path = os.ttyname(slave)
    child = subprocess.Popen([sys.executable, "-c", HOLD_PORT, path], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        stream = SerialStream(path, connect_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(ConnectFailed) as refused:
            stream.open()
        assert time.monotonic() - started >= 0.3
        assert f"held by pid {child.pid}" in str(refused.value) and path in str(refused.value)
    finally:
        child.kill()
        child.wait()
    stream = SerialStream(path, connect_timeout=2.0)  # free again: the kernel dropped the lock
    stream.open()
    stream.close()
    os.close(master)
    os.close(slave)
