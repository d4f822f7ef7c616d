"""Ctrl-C between a request and its reply leaves that reply on the wire. The next request (a
teardown putting the meter back, say) must still work: the session starts the link afresh."""
from __future__ import annotations

import time

import pytest
from smmc_bench.drivers.dlms import DlmsSession, SessionSettings, TcpWrapperTransport
from smmc_bench.drivers.secret import Secret
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter, default_lls_password


def test_request_after_an_interrupted_exchange_works():
    password = default_lls_password()
    with EmulatedMeter(clock=VirtualClock(), lls_password=password) as meter:
        host, port = meter.address
        session = DlmsSession(TcpWrapperTransport(host, port), SessionSettings(1, 1, 1, Secret(password)))
        with session:
            receive = session.transport.receive

            def interrupted(timeout):
                time.sleep(0.05)  # the reply arrives meanwhile and stays unread
                raise KeyboardInterrupt

            session.transport.receive = interrupted
            with pytest.raises(KeyboardInterrupt):
                session.get(8, "0.0.1.0.0.255", 2)
            session.transport.receive = receive
            assert session.get(70, "0.0.96.3.10.255", 3) in (0, 1, 2)
            assert session.recoveries == 1
