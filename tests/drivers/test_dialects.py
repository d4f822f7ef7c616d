"""The bench's session against every dialect of the emulated meter: each encoding the standards
allow (IC 15 names as structures, every optional AARE/RLRE element, date-times with fields not
specified, object_list variants) is understood, and judged as the default one is."""
from __future__ import annotations

import pytest
from smmc_bench.drivers.dlms import (
    Authentication,
    CosemDateTime,
    DlmsSession,
    SessionSettings,
    TcpWrapperTransport,
)
from smmc_bench.drivers.dlms.names import context_id, mechanism_id
from smmc_bench.drivers.secret import Secret
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter, default_lls_password
from smmc_bench.fixtures.meter.dialect import DIALECTS, Dialect, dialect_named

ASSOCIATION = (15, "0.0.40.0.0.255")
CLOCK = (8, "0.0.1.0.0.255")
DISCONNECT = (70, "0.0.96.3.10.255")


def session_for(meter: EmulatedMeter, *, max_pdu: int = 1024) -> DlmsSession:
    host, port = meter.address
    settings = SessionSettings(client_sap=1, server_logical=1, authentication=Authentication.LOW,
                               password=Secret(default_lls_password()), timeout=3.0, max_pdu=max_pdu)
    return DlmsSession(TcpWrapperTransport(host, port, connect_timeout=2.0), settings)


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_session_understands_every_dialect(name):
    dialect = DIALECTS[name]
    with EmulatedMeter(clock=VirtualClock(), dialect=name) as meter:
        session = session_for(meter, max_pdu=256)  # small enough that object_list comes in blocks
        session.connect()
        try:
            aare = session.last_aare
            assert aare.accepted and aare.application_context == 1
            assert aare.mechanism == (1 if dialect.full_aare else None)
            assert "implementation-information" in aare.elements if dialect.full_aare else True
            assert aare.initiate.conformance & (1 << 4)  # GET granted
            assert mechanism_id(session.get(*ASSOCIATION, 6)) == 1
            assert context_id(session.get(*ASSOCIATION, 4)) == 1
            time = CosemDateTime.from_bytes(session.get(*CLOCK, 2))  # validates
            assert time.to_datetime() is not None
            if dialect.unspecified_datetime_fields:
                assert (time.weekday, time.hundredths) == (0xFF, 0xFF)
            entries = session.object_list()
            assert any(e.logical_name == "0.0.1.0.0.255" and e.class_id == 8 for e in entries)
            control = next(e for e in entries if e.class_id == DISCONNECT[0])
            assert control.method_access.get(1) == 1
        finally:
            reason = session.release(strict=True)
            session.close()
    assert reason == (None if dialect.rlre == "empty" else 0)


def test_names_in_structure_form_are_seven_integers_with_756_long_unsigned():
    with EmulatedMeter(clock=VirtualClock(), dialect="structure-names") as meter:
        with session_for(meter) as session:
            raw = session.get(*ASSOCIATION, 6)
    assert raw == [2, 16, 756, 5, 8, 2, 1]


def test_dialect_by_name_object_or_unknown():
    assert dialect_named(None).name == "default"
    assert dialect_named(DIALECTS["full-aare"]) is DIALECTS["full-aare"]
    with pytest.raises(KeyError, match="known"):
        dialect_named("no-such-dialect")
    with pytest.raises(ValueError):
        Dialect(name_form="xml")
