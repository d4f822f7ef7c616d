"""Emulated meters on real ptys and sockets for the link tests; everything stopped at teardown."""
from __future__ import annotations

from typing import Callable

import pytest
from smmc_bench.drivers.dlms import (
    Authentication,
    DlmsSession,
    FrameTrace,
    SessionSettings,
)
from smmc_bench.drivers.links.hdlc import HdlcParameters
from smmc_bench.drivers.links.hdlc_transport import HdlcTransport
from smmc_bench.drivers.links.stream import SerialStream
from smmc_bench.drivers.secret import Secret
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.links.hdlc_server import (
    CONFORMING,
    HdlcEndpoint,
    LinkBehaviour,
)
from smmc_bench.fixtures.links.lines import LineServer, PtyMedium
from smmc_bench.fixtures.links.serve import session_factory
from smmc_bench.fixtures.meter import EmulatedMeter, default_lls_password

PASSWORD = default_lls_password()


@pytest.fixture
def meters():
    """meters(n) -> n started emulated meters with distinct serial numbers."""
    started: list[EmulatedMeter] = []

    def make(count: int = 1) -> list[EmulatedMeter]:
        for _ in range(count):
            meter = EmulatedMeter(clock=VirtualClock(), serial=f"EMU{len(started) + 1:07d}")
            meter.start()
            started.append(meter)
        return started[-count:]

    yield make
    for meter in started:
        meter.stop()


@pytest.fixture
def emu(meters) -> EmulatedMeter:
    return meters(1)[0]


@pytest.fixture
def stoppers():
    items: list[Callable[[], None]] = []
    yield items
    while items:
        items.pop()()


def endpoint(meter, *, physical: int | None = 0x10, point_to_point: bool = True,
             capability: HdlcParameters = HdlcParameters(), behaviour: LinkBehaviour = CONFORMING,
             cls: type = HdlcEndpoint, **kwargs) -> HdlcEndpoint:
    return cls(session_factory(meter, behaviour), physical=physical, point_to_point=point_to_point,
               capability=capability, behaviour=behaviour, **kwargs)


@pytest.fixture
def pty_line(stoppers):
    """pty_line(endpoints, **LineServer options) -> (slave path, LineServer)."""

    def make(endpoints: list[HdlcEndpoint], **options) -> tuple[str, LineServer]:
        medium = PtyMedium()
        front_factory = options.pop("front", None)
        front = front_factory(medium) if front_factory else None
        line = LineServer(medium, endpoints, front=front, **options).start()
        stoppers.append(line.stop)
        return medium.path, line

    return make


def hdlc_transport(port: str, *, physical: int | None = None, proposal=HdlcParameters(), timeout: float = 1.0,
                   **options) -> HdlcTransport:
    return HdlcTransport(SerialStream(port, connect_timeout=1.0), physical_address=physical, proposal=proposal,
                         timeout=timeout, connect_timeout=timeout, **options)


def management(transport, *, timeout: float = 1.0, trace: FrameTrace | None = None,
               server_logical: int = 1) -> DlmsSession:
    settings = SessionSettings(client_sap=1, server_logical=server_logical, authentication=Authentication.LOW,
                               password=Secret(PASSWORD), timeout=timeout)
    return DlmsSession(transport, settings, trace=trace or FrameTrace())


def public(transport, *, timeout: float = 1.0, server_logical: int = 1) -> DlmsSession:
    return DlmsSession(transport, SessionSettings(client_sap=16, server_logical=server_logical, timeout=timeout))
