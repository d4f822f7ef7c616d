"""The IEC 62056-47 TCP wrapper with a wire trace, directly to a meter or through
a gateway / data concentrator (several meters behind one host:port, chosen by
the destination wPort)."""
from __future__ import annotations

from smmc_bench.drivers.dlms.trace import FrameTrace
from smmc_bench.drivers.dlms.transport import TcpWrapperTransport
from smmc_bench.drivers.secret import Secret


class TracedWrapperTransport(TcpWrapperTransport):
    """TcpWrapperTransport that also keeps the link's wire trace (every wrapper frame, timestamped)."""

    def __init__(self, host: str, port: int, *, connect_timeout: float = 5.0, gateway: str | None = None) -> None:
        super().__init__(host, port, connect_timeout=connect_timeout)
        self.gateway = gateway
        self.wire_trace = FrameTrace()

    @property
    def peer(self) -> str:
        base = f"{self.host}:{self.port}"
        return f"gateway {self.gateway} {base} wPort {self._server_wport}" if self.gateway else base

    def redact(self, secret: bytes) -> None:
        self.wire_trace.redact(secret)

    def open(self, client_address: int, server_address: int) -> None:
        super().open(client_address, server_address)
        self.wire_trace.record("--", b"", f"TCP connected to {self.peer}")

    def send(self, apdu: bytes) -> bytes:
        frame = super().send(apdu)  # a Secret when the APDU carries one (the wire trace masks it)
        self.wire_trace.record("tx", frame.reveal() if isinstance(frame, Secret) else frame,
                               f"wrapper {self._client_wport}->{self._server_wport}, {len(apdu)} B")
        return frame

    def receive(self, timeout: float) -> tuple[bytes, bytes]:
        frame, apdu = super().receive(timeout)
        self.wire_trace.record("rx", frame, f"wrapper {self._server_wport}->{self._client_wport}, {len(apdu)} B")
        return frame, apdu

    def close(self) -> None:
        if self.is_open:
            self.wire_trace.record("--", b"", "TCP closed")
        super().close()
