from __future__ import annotations

import pytest
from smmc_bench.drivers.dlms import (
    Authentication,
    DlmsSession,
    FrameTrace,
    SessionSettings,
    TcpWrapperTransport,
)
from smmc_bench.drivers.secret import Secret

from .scripted_peer import ScriptedPeer

PASSWORD = b"Pw-7f3a9c1e"


@pytest.fixture
def lls_settings() -> SessionSettings:
    return SessionSettings(client_sap=1, server_logical=1, authentication=Authentication.LOW,
                           password=Secret(PASSWORD), timeout=0.4, max_pdu=1024)


@pytest.fixture
def scripted(lls_settings):
    """scripted(steps) -> (peer, session); the peer stops at teardown."""
    peers: list[ScriptedPeer] = []

    def make(steps, settings: SessionSettings = lls_settings):
        peer = ScriptedPeer(steps).__enter__()
        peers.append(peer)
        session = DlmsSession(TcpWrapperTransport(peer.host, peer.port, connect_timeout=1.0), settings,
                              trace=FrameTrace())
        return peer, session

    yield make
    for peer in peers:
        peer.__exit__(None, None, None)
