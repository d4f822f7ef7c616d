"""Transports: the only place that touches sockets. Every wait is bounded."""
from __future__ import annotations

import select
import socket
import time
from typing import Protocol

from ..secret import Secret
from . import wrapper
from .errors import ConnectFailed, DlmsTimeout, LinkClosed, MalformedReply


class Transport(Protocol):
    """What DlmsSession needs from a link. Frames in, APDUs out."""

    @property
    def peer(self) -> str: ...  # for diagnoses, e.g. "127.0.0.1:4059"

    def open(self, client_address: int, server_address: int) -> None: ...

    def send(self, apdu: bytes) -> bytes:
        """Send one APDU; return the frame as written (for the trace)."""
        ...

    def receive(self, timeout: float) -> tuple[bytes, bytes]:
        """Wait at most `timeout` s for one reply; return (frame, apdu).
        Raises DlmsTimeout, LinkClosed or MalformedReply (with `.raw`)."""
        ...

    def close(self) -> None: ...


class TcpWrapperTransport:
    """IEC 62056-47 over TCP. The client wPort is the client SAP and the server
    wPort the server logical address (given by the session at open())."""

    _CHUNK = 65536 + wrapper.HEADER_SIZE

    def __init__(self, host: str, port: int, *, connect_timeout: float = 5.0) -> None:
        self.host, self.port, self.connect_timeout = host, port, connect_timeout
        self._sock: socket.socket | None = None
        self._poller: select.poll | None = None
        self._client_wport = self._server_wport = 0

    @property
    def peer(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def open(self, client_address: int, server_address: int) -> None:
        self._client_wport, self._server_wport = client_address, server_address
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except socket.timeout:
            raise ConnectFailed(f"connect to {self.peer} got no answer within {self.connect_timeout:g} s",
                                host=self.host, port=self.port, reason="timeout") from None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConnectFailed(f"connect to {self.peer} failed: {reason}",
                                host=self.host, port=self.port, reason=reason) from None
        # One request is one segment; Nagle would only add latency to the exchange.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)

    def close(self) -> None:
        sock, self._sock, self._poller = self._sock, None, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise LinkClosed(f"link to {self.peer} is not open")
        return self._sock

    # An APDU that carries a secret (the AARQ) comes as a Secret and is revealed only inside the
    # call that writes it: no local of a traceback ever holds it in clear.
    takes_secret_apdus = True

    def send(self, apdu: bytes | Secret) -> bytes | Secret:
        sock = self._socket()
        self._reject_unsolicited(sock)
        secret = isinstance(apdu, Secret)
        frame = Secret(wrapper.wrap(self._client_wport, self._server_wport, apdu.reveal())) if secret else \
            wrapper.wrap(self._client_wport, self._server_wport, apdu)
        try:
            sock.sendall(frame.reveal() if secret else frame)
        except socket.timeout:
            raise DlmsTimeout(f"{self.peer} did not accept the request within the timeout") from None
        except OSError as exc:
            raise LinkClosed(f"sending to {self.peer} failed: {exc.strerror or exc}") from None
        return frame

    def _reject_unsolicited(self, sock: socket.socket) -> None:
        """Bytes waiting before a request are garbage or a late reply: the link is out of step."""
        # poll(0) costs one syscall and leaves the socket's timeout mode alone.
        if self._poller is None or not self._poller.poll(0):
            return
        try:
            sock.settimeout(0.05)
            stale = sock.recv(self._CHUNK)
        except socket.timeout:
            return
        except OSError as exc:
            raise LinkClosed(f"link to {self.peer} failed: {exc.strerror or exc}") from None
        if not stale:
            raise LinkClosed(f"{self.peer} closed the connection")
        raise MalformedReply(f"{len(stale)} unsolicited bytes from {self.peer} arrived after the previous "
                             f"reply (garbage or a late answer)", raw=stale)

    def receive(self, timeout: float) -> tuple[bytes, bytes]:
        sock = self._socket()
        deadline = time.monotonic() + timeout
        buf = bytearray()
        need = wrapper.HEADER_SIZE
        length = -1
        while True:
            while len(buf) < need:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._timed_out(buf, need, timeout)
                sock.settimeout(remaining)
                try:
                    chunk = sock.recv(self._CHUNK)
                except socket.timeout:
                    self._timed_out(buf, need, timeout)
                except OSError as exc:
                    raise LinkClosed(f"receiving from {self.peer} failed: {exc.strerror or exc}") from None
                if not chunk:
                    if buf:
                        raise MalformedReply(f"{self.peer} closed the connection after {len(buf)} of "
                                             f"{need} frame bytes (truncated frame)", raw=bytes(buf))
                    raise LinkClosed(f"{self.peer} closed the connection")
                buf += chunk
            if length < 0:
                length = wrapper.check_header(buf[:wrapper.HEADER_SIZE], expect_source=self._server_wport,
                                              expect_destination=self._client_wport)
                need = wrapper.HEADER_SIZE + length
                continue
            break
        frame = bytes(buf)
        if len(frame) > need:
            raise MalformedReply(f"wrapper frame announces {length} bytes but {len(frame) - wrapper.HEADER_SIZE} "
                                 f"arrived ({len(frame) - need} extra)", raw=frame)
        return frame, frame[wrapper.HEADER_SIZE:]

    def _timed_out(self, buf: bytearray, need: int, timeout: float) -> None:
        if buf:
            raise MalformedReply(f"only {len(buf)} of {need} frame bytes from {self.peer} within "
                                 f"{timeout:g} s (truncated frame or wrong wrapper length)", raw=bytes(buf))
        raise DlmsTimeout(f"no reply from {self.peer} within {timeout:g} s", timeout=timeout)
