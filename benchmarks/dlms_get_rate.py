"""GET rate of the clock time: DlmsSession vs a bare GXDLMSClient on a plain socket.

Both associate as the LLS management client (SAP 1) with one EmulatedMeter and
read 8/0.0.1.0.0.255/2 N times. Target: facade rate >= 0.8 x bare rate.
Run: python benchmarks/dlms_get_rate.py [N]
"""
from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gurux_dlms import GXDLMSClient, GXReplyData  # noqa: E402
from gurux_dlms.enums import Authentication as GxAuthentication  # noqa: E402
from gurux_dlms.enums import InterfaceType, ObjectType  # noqa: E402
from smmc_bench.drivers.dlms import (  # noqa: E402
    Authentication,
    DlmsSession,
    SessionSettings,
    TcpWrapperTransport,
)
from smmc_bench.drivers.secret import Secret  # noqa: E402
from smmc_bench.fixtures.clock import VirtualClock  # noqa: E402
from smmc_bench.fixtures.meter import EmulatedMeter  # noqa: E402

PASSWORD_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "secrets" / "lls-password.txt"
CLOCK_LN = "0.0.1.0.0.255"


def _recv_frame(sock: socket.socket) -> bytes:
    """The minimum a bare client must do: read one wrapper frame by its length."""
    buf = b""
    while len(buf) < 8 or len(buf) < 8 + int.from_bytes(buf[6:8], "big"):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("meter closed the connection")
        buf += chunk
    return buf


def bare_rate(host: str, port: int, password: bytes, n: int) -> float:
    client = GXDLMSClient(True, 1, 1, GxAuthentication.LOW, password, InterfaceType.WRAPPER)
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(client.aarqRequest()[0])
        reply = GXReplyData()
        client.getData(_recv_frame(sock), reply)
        client.parseAareResponse(reply.data)
        started = time.perf_counter()
        for _ in range(n):
            sock.sendall(client._read(CLOCK_LN, ObjectType.CLOCK, 2)[0])
            reply = GXReplyData()
            client.getData(_recv_frame(sock), reply)
            assert len(reply.value) == 12
        elapsed = time.perf_counter() - started
        sock.sendall(client.releaseRequest()[0])
        _recv_frame(sock)
    return n / elapsed


def session_rate(host: str, port: int, settings: SessionSettings, n: int) -> float:
    """GETs of the clock time per second through the bench's session (also benchmarks/hls_get_rate.py)."""
    with DlmsSession(TcpWrapperTransport(host, port), settings) as session:
        started = time.perf_counter()
        for _ in range(n):
            assert len(session.get(8, CLOCK_LN, 2)) == 12
        elapsed = time.perf_counter() - started
    return n / elapsed


def facade_rate(host: str, port: int, password: Secret, n: int) -> float:
    return session_rate(host, port, SessionSettings(1, 1, Authentication.LOW, password, timeout=5.0), n)


def main(n: int = 3000) -> float:
    password = Secret.from_file(PASSWORD_FILE)
    meter = EmulatedMeter(clock=VirtualClock(), lls_password=password.reveal(), port=0)
    host, port = meter.start()
    try:
        bare_rate(host, port, password.reveal(), n // 10)      # warm-up, both paths
        facade_rate(host, port, password, n // 10)
        bare = facade = 0.0
        for _ in range(3):  # interleave and keep the best of each, so meter load drifts cancel out
            bare = max(bare, bare_rate(host, port, password.reveal(), n))
            facade = max(facade, facade_rate(host, port, password, n))
    finally:
        meter.stop()
    ratio = facade / bare
    print(f"bare GXDLMSClient: {bare:8.0f} GET/s")
    print(f"DlmsSession:       {facade:8.0f} GET/s")
    print(f"ratio facade/bare: {ratio:.2f} (target >= 0.80)")
    return ratio


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
