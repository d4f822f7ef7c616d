"""DlmsSession against a scripted, misbehaving peer: every failure is typed,
bounded in time and diagnosed in one line."""
from __future__ import annotations

import logging
import socket
import struct
import time
from dataclasses import replace

import pytest
from smmc_bench.drivers.dlms import (
    Authentication,
    DataType,
    DlmsSession,
    SessionSettings,
    TcpWrapperTransport,
    Typed,
)
from smmc_bench.drivers.dlms._gurux_quiet import gurux_to_log
from smmc_bench.drivers.dlms.errors import (
    AccessDenied,
    AssociationRejected,
    ConnectFailed,
    DlmsError,
    DlmsTimeout,
    ExceptionResponse,
    LinkClosed,
    MalformedReply,
    ObjectUnavailable,
    ObjectUndefined,
    OtherReason,
    ServiceError,
    TemporaryFailure,
    TypeUnmatched,
    UnsupportedFeature,
)

from .conftest import PASSWORD
from .scripted_peer import (
    CLOSE,
    OCTETS_12,
    RLRE,
    SILENT,
    aare,
    action_result,
    frame,
    get_block,
    get_error,
    get_normal,
    set_result,
)

CLOCK = (8, "0.0.1.0.0.255", 2)
ACCEPT = frame(aare())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connect_refused_is_connect_failed_naming_host_and_port(lls_settings):
    port = _free_port()
    session = DlmsSession(TcpWrapperTransport("127.0.0.1", port, connect_timeout=1.0), lls_settings)
    started = time.monotonic()
    with pytest.raises(ConnectFailed) as info:
        session.connect()
    assert time.monotonic() - started < 1.0
    assert f"127.0.0.1:{port}" in str(info.value)
    assert info.value.reason
    assert str(info.value) == info.value.diagnosis


def test_silent_peer_is_timeout_within_the_timeout(scripted, lls_settings):
    _, session = scripted([SILENT])
    started = time.monotonic()
    with pytest.raises(DlmsTimeout) as info:
        session.connect()
    elapsed = time.monotonic() - started
    assert lls_settings.timeout <= elapsed < lls_settings.timeout + 0.3
    assert "AARQ" in info.value.diagnosis and "0.4 s" in info.value.diagnosis


def test_silence_after_get_names_the_request(scripted):
    _, session = scripted([ACCEPT, SILENT])
    session.connect()
    with pytest.raises(DlmsTimeout, match=r"GET 8/0\.0\.1\.0\.0\.255/2: no reply"):
        session.get(*CLOCK)
    session.close()


def test_peer_closing_is_link_closed(scripted):
    _, session = scripted([ACCEPT, CLOSE])
    session.connect()
    with pytest.raises(LinkClosed, match="closed the connection"):
        session.get(*CLOCK)
    assert not session.is_associated


@pytest.mark.parametrize("reply, fragment", [
    (b"\xde\xad\xbe\xef\x00\x01\x02\x03\x04\x05", "wrapper version"),
    (frame(get_normal(OCTETS_12), version=2), "wrapper version 2"),
    (frame(get_normal(OCTETS_12), source=7), "wPorts 7->1"),
    (frame(get_normal(OCTETS_12), length=40), "truncated frame or wrong wrapper length"),
    (frame(get_normal(OCTETS_12), length=10), "extra"),
    (frame(get_normal(OCTETS_12) + b"\x00\x00"), "2 trailing bytes"),
    (frame(get_normal(OCTETS_12)[:-3]), "truncated"),
    (frame(get_normal(OCTETS_12)) + b"\x99\x99", "extra"),
    (frame(get_normal(OCTETS_12, invoke=0xC5)), "invoke-id"),
    (frame(set_result(0)), "expected get-normal"),
    (frame(bytes((0xC4, 0x01, 0xC1, 0x00, 0x63))), "unknown data tag 0x63"),
])
def test_malformed_replies(scripted, reply, fragment):
    _, session = scripted([ACCEPT, reply])
    session.connect()
    started = time.monotonic()
    with pytest.raises(MalformedReply) as info:
        session.get(*CLOCK)
    assert time.monotonic() - started < session.settings.timeout + 0.3
    assert fragment in info.value.diagnosis
    assert info.value.diagnosis.startswith("GET 8/0.0.1.0.0.255/2")
    assert "malformed" in session.trace.entries[-1].summary
    session.close()


def test_late_garbage_before_the_next_request_is_malformed(scripted):
    _, session = scripted([ACCEPT, [frame(get_normal(OCTETS_12)), 0.05, b"\x01\x02\x03"]])
    session.connect()
    session.get(*CLOCK)
    time.sleep(0.15)
    with pytest.raises(MalformedReply, match="3 unsolicited bytes"):
        session.get(*CLOCK)
    session.close()


def test_aare_rejected(scripted):
    _, session = scripted([frame(aare(result=1, diagnostic=13))])
    with pytest.raises(AssociationRejected) as info:
        session.connect()
    assert (info.value.result, info.value.diagnostic) == (1, 13)
    assert "authentication-failure" in info.value.diagnosis
    assert not session.transport.is_open


def test_aare_with_trailing_bytes_is_malformed(scripted):
    _, session = scripted([frame(aare() + b"\x00")])
    with pytest.raises(MalformedReply, match="AARQ SAP1 LLS"):
        session.connect()


@pytest.mark.parametrize("code, cls", [
    (2, TemporaryFailure), (3, AccessDenied), (4, ObjectUndefined), (11, ObjectUnavailable),
    (12, TypeUnmatched), (250, OtherReason), (13, ServiceError),
])
def test_data_access_results_map_to_subclasses(scripted, code, cls):
    _, session = scripted([ACCEPT, frame(get_error(code)), frame(set_result(code)),
                           frame(action_result(code)), frame(RLRE)])
    with session:
        with pytest.raises(cls) as info:
            session.get(*CLOCK)
        assert type(info.value) is cls and info.value.code == code
        assert "GET 8/0.0.1.0.0.255/2" in str(info.value) and f"({code})" in str(info.value)
        with pytest.raises(cls):
            session.set(70, "0.0.96.3.10.255", 4, Typed(DataType.ENUM, 2))
        with pytest.raises(cls) as info:
            session.action(70, "0.0.96.3.10.255", 1, Typed(DataType.INTEGER, 0))
        assert "ACTION 70/0.0.96.3.10.255/1" in str(info.value)


def test_exception_response_is_a_service_error(scripted):
    _, session = scripted([ACCEPT, frame(bytes((0xD8, 0x01, 0x02)))])
    session.connect()
    with pytest.raises(ExceptionResponse) as info:
        session.get(*CLOCK)
    assert isinstance(info.value, ServiceError)
    assert "service-not-allowed" in str(info.value) and "service-not-supported" in str(info.value)
    session.close()


def test_get_set_action_happy_path_and_release(scripted):
    peer, session = scripted([ACCEPT, frame(get_normal(OCTETS_12)), frame(set_result(0)),
                              frame(action_result(0, bytes((0x11, 0x05)))), frame(action_result(0)),
                              frame(RLRE)])
    with session:
        assert session.get(*CLOCK) == bytes.fromhex("07ea0b1a04020e151300f000")
        assert session.last_round_trip is not None and 0 < session.last_round_trip < 0.4
        session.set(8, "0.0.1.0.0.255", 2, Typed(DataType.OCTET_STRING, bytes(12)))
        assert session.action(70, "0.0.96.3.10.255", 1, Typed(DataType.INTEGER, 0)) == 5
        assert session.action(70, "0.0.96.3.10.255", 2) is None
    assert peer.received[2][-15:] == b"\x00\x09\x0c" + bytes(12)   # no selector, then our data untouched
    assert peer.received[4][-1:] == b"\x00"                          # ACTION without parameters
    assert peer.received[5][:1] == b"\x62"                           # RLRQ
    summaries = [e.summary for e in session.trace]
    assert summaries[:4] == ["AARQ SAP1 LLS", "AARE accepted (acse-service-user: null)",
                             "GET 8/0.0.1.0.0.255/2", "GET-Response-Normal ok (octet-string 12)"]
    assert "ACTION-Response 70/0.0.96.3.10.255/1 ok (unsigned 5)" in summaries
    assert not session.transport.is_open


def test_get_block_transfer_reassembles(scripted):
    value = bytes((0x01, 0x03, 0x12, 0x00, 0x01, 0x12, 0x00, 0x02, 0x12, 0x00, 0x03))
    peer, session = scripted([ACCEPT, frame(get_block(1, value[:4], False)),
                              frame(get_block(2, value[4:8], False)), frame(get_block(3, value[8:], True))])
    session.connect()
    assert session.get(15, "0.0.40.0.0.255", 2) == [1, 2, 3]
    assert [apdu[:2] for apdu in peer.received[2:]] == [b"\xc0\x02", b"\xc0\x02"]
    assert peer.received[3][3:7] == b"\x00\x00\x00\x02"
    session.close()


def test_get_block_out_of_sequence_is_malformed(scripted):
    _, session = scripted([ACCEPT, frame(get_block(1, b"\x01\x02", False)), frame(get_block(3, b"\x00\x00", True))])
    session.connect()
    with pytest.raises(MalformedReply, match="block number 3, expected 2"):
        session.get(15, "0.0.40.0.0.255", 2)
    session.close()


def test_exit_tolerates_a_dead_link(scripted):
    _, session = scripted([ACCEPT, CLOSE])
    with session:
        pass   # RLRQ meets a closed connection: no exception
    assert not session.transport.is_open


def test_hls_gmac_without_keys_is_refused_before_any_io():
    # HLS-GMAC itself is tested in test_hls_security.py; without keys nothing is sent.
    with pytest.raises(ValueError, match="HIGH_GMAC authentication needs keys"):
        SessionSettings(1, 1, Authentication.HIGH_GMAC, timeout=0.4)


def test_not_associated_is_link_closed(lls_settings):
    session = DlmsSession(TcpWrapperTransport("127.0.0.1", 1), lls_settings)
    with pytest.raises(LinkClosed, match="not associated"):
        session.get(*CLOCK)


def test_password_never_leaks(scripted, lls_settings):
    _, session = scripted([frame(aare(result=1, diagnostic=13))])
    with pytest.raises(DlmsError) as info:
        session.connect()
    _, session2 = scripted([ACCEPT, frame(get_normal(OCTETS_12) + b"\x00"), SILENT])
    session2.connect()
    errors = [info.value]
    for call in (lambda: session2.get(*CLOCK), lambda: session2.get(*CLOCK)):
        with pytest.raises(DlmsError) as more:
            call()
        errors.append(more.value)
    text = "\n".join([session.trace.to_text(), session2.trace.to_text(), str(session.trace.to_jsonable()),
                      repr(lls_settings), str(lls_settings), repr(session), *map(str, errors),
                      *map(repr, errors)])
    for form in (PASSWORD.hex(), PASSWORD.decode(), PASSWORD.hex().upper()):
        assert form not in text
    assert "Secret(***)" in repr(lls_settings)
    aarq = session.trace.entries[0]
    assert aarq.summary == "AARQ SAP1 LLS" and b"*" * len(PASSWORD) in aarq.raw
    session2.close()


def test_trace_writes_text_and_json(scripted, tmp_path):
    _, session = scripted([ACCEPT, frame(get_normal(OCTETS_12)), frame(RLRE)])
    with session:
        session.get(*CLOCK)
    path = session.trace.write_text(tmp_path / "trace.txt")
    lines = path.read_text().splitlines()
    assert len(lines) == 6 and " tx GET 8/0.0.1.0.0.255/2 " in lines[2]
    assert lines[2].endswith(session.trace.entries[2].raw.hex())
    entry = session.trace.to_jsonable()[3]
    assert entry["direction"] == "rx" and entry["summary"].startswith("GET-Response-Normal ok")


def test_gurux_prints_go_to_the_log(capsys, caplog):
    import sys

    from gurux_dlms import GXDLMSClient, GXReplyData
    from gurux_dlms.enums import InterfaceType
    client = GXDLMSClient(True, 1, 1, interfaceType=InterfaceType.WRAPPER)
    with caplog.at_level(logging.INFO, logger="smmc_bench.drivers.dlms.gurux"), gurux_to_log():
        # gurux prints (and then accepts) a wrapper frame longer than its header says
        client.getData(frame(get_normal(OCTETS_12)) + b"\x00\x00", GXReplyData())
    assert capsys.readouterr().out == ""
    assert "Data length is" in caplog.text
    assert "print" not in vars(sys.modules["gurux_dlms.GXDLMS"])   # restored on exit


def _big_block(number: int, raw: bytes, last: bool, invoke: int = 0xC1) -> bytes:
    return (bytes((0xC4, 0x02, invoke, int(last))) + struct.pack(">I", number) + b"\x00\x82"
            + struct.pack(">H", len(raw)) + raw)


def test_get_of_64_kib_or_more_is_decoded(scripted, lls_settings):
    """A value whose A-XDR length needs the 3-byte form (0x83): gurux cannot parse it, so the
    reassembled data is decoded by our own codec only."""
    payload = bytes(range(256)) * 260  # 66,560 bytes
    value = b"\x09\x83" + len(payload).to_bytes(3, "big") + payload
    size = 960
    blocks = [value[i:i + size] for i in range(0, len(value), size)]
    steps = [ACCEPT] + [frame(_big_block(n, raw, n == len(blocks))) for n, raw in enumerate(blocks, 1)]
    _, session = scripted(steps, replace(lls_settings, timeout=2.0))
    session.connect()
    assert session.get(1, "0.0.96.1.0.255", 2) == payload
    session.close()
