"""An emulated meter behind the bench's own fault-injecting proxy, and sessions through it."""
from __future__ import annotations

import pytest

from bench.cosem import DisconnectControl
from drivers.dlms import Authentication, DlmsSession, FrameTrace, SessionSettings, TcpWrapperTransport
from drivers.secret import Secret
from fixtures.clock import VirtualClock
from fixtures.faults import FaultProxy
from fixtures.meter import EmulatedMeter

DISCONNECT_LN = "0.0.96.3.10.255"
DISCONNECT_OBIS = bytes((0, 0, 96, 3, 10, 255))
TIMEOUT_S = 1.5
# As in the issue (4 s late, 3 s timeout): the late reply lands inside the next request's wait,
# where a session without resynchronisation takes it. With resynchronisation the outcome does
# not depend on when it lands (the old connection is gone), so a loaded machine changes nothing.
LATE_S = 1.5 * TIMEOUT_S
PASSWORD = b"Rb-6e1f0c-unique"  # unique, so a grep of any artefact finds only a leak


@pytest.fixture
def emulated():
    with EmulatedMeter(clock=VirtualClock(), lls_password=PASSWORD, control_mode=2) as meter:
        yield meter


@pytest.fixture
def proxy(emulated):
    with FaultProxy(emulated.address) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def session_via(proxy):
    """session_via() -> an unconnected management session (LLS) through the proxy."""
    made: list[DlmsSession] = []

    def make(timeout: float = TIMEOUT_S) -> DlmsSession:
        host, port = proxy.address
        session = DlmsSession(TcpWrapperTransport(host, port, connect_timeout=2.0),
                              SessionSettings(1, 1, Authentication.LOW, Secret(PASSWORD), timeout=timeout),
                              trace=FrameTrace())
        made.append(session)
        return session

    yield make
    for session in made:
        session.close()


def disconnect_control(session: DlmsSession) -> DisconnectControl:
    return DisconnectControl(session, DISCONNECT_LN)
