"""HeadEndListener: where the bench receives the pushes of meters (real or emulated).

A TCP server speaking the IEC 62056-47 wrapper. Each frame's APDU must be an
unciphered DataNotification; a good one is recorded as a `Notification` with
its arrival in bench time, anything else as a `Rejected` with a diagnosis.
Nothing a peer sends can crash it or make it hang: one I/O thread (a daemon)
with non-blocking sockets, per-connection idle timeouts, a connection cap,
and every socket closed on stop.

`wait_for` waits through the bench clock: on the emulated bench the clock is
virtual and a push the meter schedules 5 s ahead arrives after a 5 s jump,
not 5 s of wall time. Before each look it lets the I/O thread take in every
byte already sent, so a push delivered during a jump is stamped and seen
before the next jump.
"""
from __future__ import annotations

import logging
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Protocol

from smmc_bench.drivers.headend.notification import (
    GENERAL_BLOCK_TRANSFER,
    GeneralBlockAssembler,
    MalformedNotification,
    parse_data_notification,
    parse_general_block,
)

log = logging.getLogger(__name__)

WRAPPER_HEADER = struct.Struct(">HHHH")
WRAPPER_VERSION = 1
IDLE_POLL_S = 0.2
JOIN_TIMEOUT_S = 2.0
SETTLE_TIMEOUT_S = 1.0
_READ_CHUNK = 65536


class Clock(Protocol):
    def now(self) -> datetime: ...
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class Notification:
    arrival: datetime  # bench time the whole frame was in
    source_wport: int  # the pushing logical device
    client_wport: int  # the wPort it addressed on this side
    invoke_id: int
    time: datetime | None  # the notification's date-time (UTC) when it names a point in time
    data: Any  # decoded body: plain values (lists for structures, bytes, int, ...)
    peer: str = ""
    high_priority: bool = False
    raw_time: Any = None  # the CosemDateTime as sent (None when absent)
    apdu: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Rejected:
    arrival: datetime
    peer: str
    diagnosis: str
    raw: bytes = field(default=b"", repr=False)


@dataclass
class _Connection:
    sock: socket.socket
    peer: str
    last_activity: float
    buffer: bytearray = field(default_factory=bytearray)
    # Pushes in general block transfer being reassembled, by source wPort.
    blocks: dict[int, GeneralBlockAssembler] = field(default_factory=dict)


class HeadEndListener:
    def __init__(self, clock: Clock, host: str = "127.0.0.1", port: int = 0, *,
                 idle_timeout_s: float = 10.0, max_connections: int = 64,
                 expected_client_wport: int | None = None) -> None:
        self.clock = clock
        self._bind = (host, port)
        self.idle_timeout_s = idle_timeout_s
        self.max_connections = max_connections
        self.expected_client_wport = expected_client_wport
        self.address: tuple[str, int] | None = None
        self._lock = threading.Lock()
        self._notifications: list[Notification] = []
        self._rejected: list[Rejected] = []
        self._connections: dict[socket.socket, _Connection] = {}
        self._settle_requests: list[threading.Event] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> tuple[str, int]:
        if self._thread is not None:
            raise RuntimeError("listener already started")
        listener = socket.socket(socket.AF_INET6 if ":" in self._bind[0] else socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(self._bind)
            listener.listen(self.max_connections)
            listener.setblocking(False)
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._selector = selectors.DefaultSelector()
            self._selector.register(listener, selectors.EVENT_READ)
            self._selector.register(self._wake_r, selectors.EVENT_READ)
        except BaseException:
            listener.close()
            self._close_wake()
            raise
        self._listener = listener
        self.address = listener.getsockname()[:2]
        self._thread = threading.Thread(target=self._run, name=f"head-end-{self.address[1]}", daemon=True)
        self._thread.start()
        return self.address

    def stop(self) -> None:
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
        # The I/O thread closes its sockets on exit; these cover a thread that did not start or stalled.
        for conn in list(self._connections.values()):
            conn.sock.close()
        if self._listener is not None:
            self._listener.close()
        self._close_wake()

    def __enter__(self) -> "HeadEndListener":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def destination(self) -> str:
        """'host:port' as a push setup's send_destination names this listener."""
        if self.address is None:
            raise RuntimeError("listener not started")
        host, port = self.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    # -- what arrived ------------------------------------------------------------------
    @property
    def notifications(self) -> list[Notification]:
        with self._lock:
            return list(self._notifications)

    @property
    def rejected(self) -> list[Rejected]:
        with self._lock:
            return list(self._rejected)

    def clear(self) -> None:
        with self._lock:
            self._notifications.clear()
            self._rejected.clear()

    def wait_for(self, predicate: Callable[[Notification], bool] = lambda n: True, timeout_s: float = 60.0,
                 poll_s: float = 0.5) -> Notification | None:
        """The first recorded notification (already here or arriving) that satisfies `predicate`,
        waiting up to `timeout_s` of bench time in `poll_s` steps; None when none came."""
        if timeout_s < 0 or poll_s <= 0:
            raise ValueError("timeout must be >= 0 and poll step > 0")
        start = self.clock.monotonic()
        while True:
            self.settle()
            for notification in self.notifications:
                if predicate(notification):
                    return notification
            elapsed = self.clock.monotonic() - start
            if elapsed >= timeout_s:
                return None
            self.clock.sleep(min(poll_s, timeout_s - elapsed))

    def settle(self, timeout_s: float = SETTLE_TIMEOUT_S) -> bool:
        """Let the I/O thread take in every byte already sent to us (bounded in wall time)."""
        if self._thread is None or not self._thread.is_alive():
            return False
        request = threading.Event()
        with self._lock:
            self._settle_requests.append(request)
        self._wake()
        return request.wait(timeout_s)

    # -- the I/O thread ------------------------------------------------------------------
    def _run(self) -> None:
        selector = self._selector
        try:
            while not self._stopping.is_set():
                self._handle(selector.select(IDLE_POLL_S))
                with self._lock:
                    requests, self._settle_requests = self._settle_requests, []
                if requests:
                    # Requested before this pass began: what was sent by then is readable now.
                    for _ in range(1000):
                        ready = [e for e in selector.select(0) if e[0].fileobj is not self._wake_r]
                        if not ready:
                            break
                        self._handle(ready)
                    for request in requests:
                        request.set()
                self._expire_idle()
        except Exception:
            log.exception("head-end listener I/O thread failed")
        finally:
            for conn in list(self._connections.values()):
                self._close(conn)
            selector.close()

    def _handle(self, events: list) -> None:
        for key, _ in events:
            sock = key.fileobj
            if sock is self._wake_r:
                try:
                    while sock.recv(4096):
                        pass
                except (BlockingIOError, OSError):
                    pass
            elif sock is self._listener:
                self._accept()
            else:
                conn = self._connections.get(sock)
                if conn is not None:
                    self._read(conn)

    def _accept(self) -> None:
        while True:
            try:
                sock, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.info("accept failed: %s", exc)
                return
            label = f"{peer[0]}:{peer[1]}"
            if len(self._connections) >= self.max_connections:
                self._reject(label, f"more than {self.max_connections} connections open: refused")
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Connection(sock, label, time.monotonic())
            self._connections[sock] = conn
            self._selector.register(sock, selectors.EVENT_READ)

    def _read(self, conn: _Connection) -> None:
        try:
            chunk = conn.sock.recv(_READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._end(conn, f"connection failed: {exc}")
            return
        if not chunk:
            self._end(conn, "peer closed the connection")
            return
        conn.last_activity = time.monotonic()
        conn.buffer += chunk
        self._frames(conn)

    def _frames(self, conn: _Connection) -> None:
        while len(conn.buffer) >= WRAPPER_HEADER.size:
            version, source, destination, length = WRAPPER_HEADER.unpack_from(conn.buffer)
            if version != WRAPPER_VERSION:
                # The stream can no longer be trusted: reject and hang up.
                self._reject(conn.peer, f"wrapper version {version} (expected {WRAPPER_VERSION}); "
                                        f"connection closed", bytes(conn.buffer[:64]))
                conn.buffer.clear()
                self._close(conn)
                return
            end = WRAPPER_HEADER.size + length
            if len(conn.buffer) < end:
                return
            apdu = bytes(conn.buffer[WRAPPER_HEADER.size:end])
            del conn.buffer[:end]
            self._record(conn.peer, source, destination, apdu, conn)

    def _record(self, peer: str, source: int, destination: int, apdu: bytes,
                conn: _Connection | None = None) -> None:
        arrival = self.clock.now()
        if not apdu:
            self._reject(peer, f"wrapper frame {source}->{destination} carries an empty APDU", arrival=arrival)
            return
        if self.expected_client_wport is not None and destination != self.expected_client_wport:
            self._reject(peer, f"frame for wPort {destination}, this head-end is wPort "
                               f"{self.expected_client_wport}", apdu, arrival)
            return
        if apdu[0] == GENERAL_BLOCK_TRANSFER and conn is not None:
            # A long push comes block by block: the notification is the blocks joined, arrived with the last.
            assembler = conn.blocks.setdefault(source, GeneralBlockAssembler())
            try:
                whole = assembler.add(parse_general_block(apdu))
            except MalformedNotification as exc:
                self._reject(peer, f"from wPort {source}: {exc.diagnosis}", apdu, arrival)
                return
            if whole is None:
                return
            apdu = whole
        try:
            parsed = parse_data_notification(apdu)
        except MalformedNotification as exc:
            self._reject(peer, f"from wPort {source}: {exc.diagnosis}", apdu, arrival)
            return
        time_point = None
        if parsed.date_time is not None:
            try:
                time_point = parsed.date_time.to_datetime()
            except ValueError:
                time_point = None  # valid but with unspecified fields: kept as raw_time
        notification = Notification(arrival=arrival, source_wport=source, client_wport=destination,
                                    invoke_id=parsed.invoke_id, time=time_point, data=parsed.data, peer=peer,
                                    high_priority=parsed.high_priority, raw_time=parsed.date_time, apdu=apdu)
        with self._lock:
            self._notifications.append(notification)
        log.debug("notification from %s wPort %d: invoke %d", peer, source, parsed.invoke_id)

    def _reject(self, peer: str, diagnosis: str, raw: bytes = b"", arrival: datetime | None = None) -> None:
        log.info("push from %s rejected: %s", peer, diagnosis)
        with self._lock:
            self._rejected.append(Rejected(arrival or self.clock.now(), peer, diagnosis, raw))

    def _end(self, conn: _Connection, why: str) -> None:
        for source, assembler in conn.blocks.items():
            if assembler.pending:
                self._reject(conn.peer, f"{why} in the middle of a block-transferred push from wPort {source} "
                                        f"(block {assembler.expected} never came)")
        if conn.buffer:
            self._reject(conn.peer, f"{why} after {len(conn.buffer)} bytes of an incomplete frame "
                                    f"(truncated)", bytes(conn.buffer[:64]))
        self._close(conn)

    def _expire_idle(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self._connections.values() if now - c.last_activity > self.idle_timeout_s]:
            self._end(conn, f"idle for {self.idle_timeout_s:g} s")

    def _close(self, conn: _Connection) -> None:
        self._connections.pop(conn.sock, None)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _wake(self) -> None:
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"\0")
            except OSError:
                pass  # closed by stop(), or full: a wake-up is pending anyway

    def _close_wake(self) -> None:
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
