"""DlmsSession against the team's emulated meter (fixtures/meter)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from smmc_bench.drivers.dlms import (
    Authentication,
    CosemDateTime,
    DataType,
    DlmsSession,
    SessionSettings,
    TcpWrapperTransport,
    Typed,
)
from smmc_bench.drivers.dlms.errors import AccessDenied, AssociationRejected
from smmc_bench.drivers.secret import Secret

meter_module = pytest.importorskip("smmc_bench.fixtures.meter")
from smmc_bench.fixtures.clock import VirtualClock  # noqa: E402

PASSWORD_FILE = "fixtures/secrets/lls-password.txt"
CLOCK = (8, "0.0.1.0.0.255")
DISCONNECT = (70, "0.0.96.3.10.255")


@pytest.fixture
def meter():
    m = meter_module.EmulatedMeter(clock=VirtualClock(), lls_password=Secret.from_file(PASSWORD_FILE).reveal(),
                                   port=0)
    host, port = m.start()
    yield m, host, port
    m.stop()


def session_for(address, sap=1, password=None, auth=Authentication.LOW) -> DlmsSession:
    _, host, port = address
    if auth == Authentication.LOW and password is None:
        password = Secret.from_file(PASSWORD_FILE)
    return DlmsSession(TcpWrapperTransport(host, port, connect_timeout=2.0),
                       SessionSettings(client_sap=sap, server_logical=1, authentication=auth, password=password,
                                       timeout=2.0))


def test_clock_get_set_shift(meter):
    with session_for(meter) as session:
        before = CosemDateTime.from_bytes(session.get(*CLOCK, 2))
        assert session.last_round_trip < 1.0
        target = before.to_datetime() + timedelta(hours=1)
        session.set(*CLOCK, 2, Typed(DataType.OCTET_STRING,
                                     CosemDateTime.from_datetime(target, before.deviation)))
        after = CosemDateTime.from_bytes(session.get(*CLOCK, 2)).to_datetime()
        assert abs((after - target).total_seconds()) < 2
        session.action(*CLOCK, 6, Typed(DataType.LONG, 30))
        shifted = CosemDateTime.from_bytes(session.get(*CLOCK, 2)).to_datetime()
        assert 28 <= (shifted - after).total_seconds() <= 33


def test_disconnect_control_action(meter):
    with session_for(meter) as session:
        session.set(*DISCONNECT, 4, Typed(DataType.ENUM, 2))
        assert session.get(*DISCONNECT, 4) == 2
        session.action(*DISCONNECT, 1, Typed(DataType.INTEGER, 0))
        assert session.get(*DISCONNECT, 2) is False
        session.action(*DISCONNECT, 2, Typed(DataType.INTEGER, 0))
        assert session.get(*DISCONNECT, 3) in (1, 2)


def test_object_list(meter):
    with session_for(meter) as session:
        entries = session.object_list()
    by_name = {(e.class_id, e.logical_name): e for e in entries}
    assert (8, "0.0.1.0.0.255") in by_name and (70, "0.0.96.3.10.255") in by_name
    clock = by_name[(8, "0.0.1.0.0.255")]
    assert clock.attribute_access[2] in (2, 3) and 6 in clock.method_access


def test_object_list_by_block_transfer(meter):
    """A small max PDU forces GET-with-datablock from the meter."""
    _, host, port = meter
    settings = SessionSettings(1, 1, Authentication.LOW, Secret.from_file(PASSWORD_FILE), timeout=2.0, max_pdu=128)
    with DlmsSession(TcpWrapperTransport(host, port), settings) as session:
        entries = session.object_list()
    assert len(entries) > 5
    assert any("GET-Response-With-Datablock block 2" in e.summary for e in session.trace)


def test_public_client_reads_but_cannot_write(meter):
    with session_for(meter, sap=16, auth=Authentication.NONE) as session:
        assert len(session.get(*CLOCK, 2)) == 12
        with pytest.raises(AccessDenied) as info:
            session.set(*DISCONNECT, 4, Typed(DataType.ENUM, 1))
    assert "SET 70/0.0.96.3.10.255/4" in str(info.value)
    assert [e.summary for e in session.trace][-2:] == ["RLRQ", "RLRE normal"]


def test_wrong_password_is_rejected(meter):
    session = session_for(meter, password=Secret(b"not-the-password"))
    with pytest.raises(AssociationRejected) as info:
        session.connect()
    assert info.value.result != 0
    assert "not-the-password" not in session.trace.to_text()
    assert b"not-the-password".hex() not in session.trace.to_text()
