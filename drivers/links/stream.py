"""Byte streams under HDLC: a local serial port, a serial device server
(`socket://`) or a remote port (`rfc2217://`), all opened by pyserial URL.

Every read is bounded; a closed or vanished port raises LinkClosed. A stream
carries the wire trace of the link it belongs to (the protocol layer above
records each frame or line in it, with its timestamp).
"""
from __future__ import annotations

import select
import socket
import threading
import time
from typing import Protocol

import serial
import serial.rfc2217
import serial.urlhandler.protocol_socket
from smmc_bench.drivers.dlms.errors import ConnectFailed, DlmsTimeout, LinkClosed
from smmc_bench.drivers.dlms.trace import FrameTrace

_CHUNK = 65536
_POLL_S = 0.01  # read granularity of ports without a file descriptor (rfc2217://, loop://)
PARITIES = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}


class ByteStream(Protocol):
    trace: FrameTrace

    @property
    def peer(self) -> str: ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def write(self, data: bytes) -> None: ...

    def read(self, timeout: float) -> bytes:
        """Whatever arrives within `timeout` s (b"" when nothing did)."""
        ...

    def drain(self) -> bytes:
        """Bytes already waiting (nothing is waited for)."""
        ...

    def begin(self, timeout: float) -> None:
        """Take the wire for one transaction (a shared bus waits for its turn)."""
        ...

    def end(self) -> None: ...


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0]


def _port_for(url: str) -> serial.SerialBase:
    """pyserial's port object for `url`, unopened. socket:// and rfc2217:// get subclasses whose
    close() does not sleep 0.3 s "in case of quick reconnects" (pyserial 3.5): a test run opens
    and closes a link hundreds of times. Pinned by tests/links/test_streams.py."""
    if url.startswith("socket://"):
        port = _QuickSocketSerial(None)
    elif url.startswith("rfc2217://"):
        port = _QuickRfc2217Serial(None)
    else:
        port = serial.serial_for_url(url, do_not_open=True)
        if "://" not in url and hasattr(port, "exclusive"):
            # A local port: no second process (another worker or run) may open it meanwhile.
            port.exclusive = True
        return port
    port.port = url
    return port


def _port_holders(url: str) -> list[int]:
    """The pids holding a local port's exclusive lock (none for URLs, or nobody holding it)."""
    if "://" in url:
        return []
    from smmc_bench.drivers.locks import holders_of

    return sorted({pid for pid, _ in holders_of(url)})


class _QuickSocketSerial(serial.urlhandler.protocol_socket.Serial):
    def close(self) -> None:
        if self.is_open:
            sock, self._socket = self._socket, None
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self.is_open = False


class _QuickRfc2217Serial(serial.rfc2217.Serial):
    def close(self) -> None:
        self.is_open = False
        sock = self._socket
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._thread is not None:
            self._thread.join(2.0)  # its reader ends with the socket
            self._thread = None
        self._socket = None


_ECHO_HELD_MAX = 4096  # bytes of our own writes still awaiting their echo


class SerialStream:
    """A pyserial port by URL: a device path, `socket://host:port`, `rfc2217://host:port`, `loop://`."""

    def __init__(self, url: str, *, baudrate: int = 9600, bytesize: int = 8, parity: str = "N",
                 stopbits: int = 1, connect_timeout: float = 5.0, write_timeout: float = 5.0,
                 echo: bool = False, trace: FrameTrace | None = None) -> None:
        self.url = url
        self.settings = {"baudrate": baudrate, "bytesize": bytesize, "parity": PARITIES[parity],
                         "stopbits": stopbits}
        self.connect_timeout, self.write_timeout = connect_timeout, write_timeout
        # An optical probe or a 2-wire adapter that hears itself: drop our own bytes from what we read.
        self.echo = echo
        self._echo_pending = b""
        self.trace = trace if trace is not None else FrameTrace()
        self._port: serial.SerialBase | None = None
        self._selectable = False

    @property
    def peer(self) -> str:
        return self.url

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def _url(self) -> str:
        # rfc2217: bound the option negotiation by the connect timeout (pyserial's default is 3 s).
        if self.url.startswith("rfc2217://") and "?" not in self.url:
            return f"{self.url}?timeout={self.connect_timeout:g}"
        return self.url

    def open(self) -> None:
        if self._port is not None:
            return
        deadline = time.monotonic() + self.connect_timeout
        while True:
            try:
                return self._open_once()
            except ConnectFailed:
                # A local port another process holds (pyserial's exclusive flock): wait for it up to
                # the connect timeout, then say who holds it.
                holders = _port_holders(self.url)
                if not holders:
                    raise
                if time.monotonic() >= deadline:
                    named = " and ".join(f"pid {pid}" for pid in holders)
                    raise ConnectFailed(f"cannot open {self.url}: held by {named} for more than "
                                        f"{self.connect_timeout:g} s (another worker or run on this station)",
                                        reason="port busy") from None
                time.sleep(0.05)

    def _open_once(self) -> None:
        try:
            port = _port_for(self._url())
            port.baudrate = self.settings["baudrate"]
            port.bytesize = self.settings["bytesize"]
            port.parity = self.settings["parity"]
            port.stopbits = self.settings["stopbits"]
            # The timeout is set once: pyserial re-applies the line settings on every change
            # (a tcsetattr, or for rfc2217:// a round of network requests).
            selectable = hasattr(port, "fileno") and not self.url.startswith(("rfc2217://", "loop://"))
            port.timeout = 0 if selectable else _POLL_S
            if selectable:  # rfc2217:// does not support a write timeout (its socket bounds writes)
                port.write_timeout = self.write_timeout
            port.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ConnectFailed(f"cannot open {self.url}: {_reason(exc)}", reason=_reason(exc)) from None
        except Exception as exc:  # noqa: BLE001 - termios.error from a port that refuses the settings
            raise ConnectFailed(f"cannot open {self.url}: {_reason(exc)}", reason=_reason(exc)) from None
        self._port = port
        self._selectable = selectable
        self._echo_pending = b""

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # noqa: BLE001 - a port that fails to close is closed for us
                pass

    def _require(self) -> serial.SerialBase:
        if self._port is None:
            raise LinkClosed(f"port {self.url} is not open")
        return self._port

    def write(self, data: bytes) -> None:
        port = self._require()
        try:
            port.write(data)
            port.flush()
        except serial.SerialTimeoutException:
            raise DlmsTimeout(f"{self.url} did not take {len(data)} bytes within {self.write_timeout:g} s",
                              timeout=self.write_timeout) from None
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise LinkClosed(f"writing to {self.url} failed: {_reason(exc)}") from None
        if self.echo:
            # Bounded: a line set to echo that does not echo must not grow this forever.
            self._echo_pending = (self._echo_pending + data)[-_ECHO_HELD_MAX:]

    def read(self, timeout: float) -> bytes:
        port = self._require()
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                if self._selectable:
                    ready, _, _ = select.select([port.fileno()], [], [], max(0.0, deadline - time.monotonic()))
                    data = port.read(_CHUNK) if ready else b""
                else:
                    data = port.read(_CHUNK)  # returns after _POLL_S with what came
            except (serial.SerialException, OSError, ValueError) as exc:
                self.close()
                raise LinkClosed(f"{self.url} closed: {_reason(exc)}") from None
            data = self._strip_echo(data)
            if data or time.monotonic() >= deadline:
                return data

    def _strip_echo(self, data: bytes) -> bytes:
        """Our own bytes coming back, removed; anything else passes untouched.

        Decided on content, never on time: what was written stays pending until its echo
        arrives, however late (a reply may overtake the echo of a later write, as after a
        retransmission on a loaded PC), and bytes that diverge from it are the peer's.
        """
        pending = self._echo_pending
        if not pending or not data:
            return data
        common = 0
        limit = min(len(data), len(pending))
        while common < limit and data[common] == pending[common]:
            common += 1
        if common == len(pending):          # the whole echo, perhaps followed by the reply
            self._echo_pending = b""
            return data[common:]
        if common == len(data):             # the echo so far, more of it to come
            self._echo_pending = pending[common:]
            return b""
        return data                         # diverges inside: not our echo (yet)

    def drain(self) -> bytes:
        """Bytes already waiting (nothing is waited for)."""
        return self.read(0.0) if self._port is not None else b""

    def reconfigure(self, *, baudrate: int, bytesize: int = 8, parity: str = "N") -> str:
        """Change the line settings: in place if the port allows it, else by closing and reopening."""
        self.settings.update(baudrate=baudrate, bytesize=bytesize, parity=PARITIES[parity])
        port = self._require()
        try:
            port.apply_settings({"baudrate": baudrate, "bytesize": bytesize, "parity": PARITIES[parity]})
            return "in place"
        except Exception:  # noqa: BLE001 - pyserial raises termios.error, SerialException or ValueError here
            pass
        self.close()
        self.open()
        return "by closing and reopening the port"

    def begin(self, timeout: float) -> None:
        pass

    def end(self) -> None:
        pass


class SharedPort:
    """One serial port shared by several meters (an RS-485 bus): opened once, one
    transaction on the wire at a time."""

    _registry: dict[str, "SharedPort"] = {}
    _registry_lock = threading.Lock()

    def __init__(self, url: str, baudrate: int, connect_timeout: float) -> None:
        self.url, self.baudrate = url, baudrate
        self.stream = SerialStream(url, baudrate=baudrate, connect_timeout=connect_timeout)
        self.lock = threading.Lock()   # the wire
        self._users = 0
        self._users_lock = threading.Lock()

    @classmethod
    def get(cls, url: str, baudrate: int, connect_timeout: float) -> "SharedPort":
        with cls._registry_lock:
            shared = cls._registry.get(url)
            if shared is None:
                shared = cls._registry[url] = cls(url, baudrate, connect_timeout)
            elif shared.baudrate != baudrate:
                raise ConnectFailed(f"bus {url} is already in use at {shared.baudrate} Bd, not {baudrate} Bd")
            return shared

    def attach(self) -> None:
        with self._users_lock:
            if not self.stream.is_open:
                self.stream.open()
            self._users += 1

    def detach(self) -> None:
        with self._users_lock:
            self._users = max(0, self._users - 1)
            if self._users:
                return
            self.stream.close()
        with SharedPort._registry_lock:
            if SharedPort._registry.get(self.url) is self and not self._users:
                del SharedPort._registry[self.url]


class BusStream:
    """One meter's view of a shared bus port: its own wire trace, the bus's lock."""

    def __init__(self, shared: SharedPort, label: str, trace: FrameTrace | None = None) -> None:
        self.shared, self.label = shared, label
        self.trace = trace if trace is not None else FrameTrace()
        self._attached = False
        self._holding = False

    @property
    def peer(self) -> str:
        return f"{self.shared.url} ({self.label})"

    def open(self) -> None:
        if not self._attached:
            self.shared.attach()
            self._attached = True

    def close(self) -> None:
        self.end()
        if self._attached:
            self._attached = False
            self.shared.detach()

    def begin(self, timeout: float) -> None:
        if self._holding:
            return
        if not self.shared.lock.acquire(timeout=max(0.0, timeout)):
            raise DlmsTimeout(f"bus {self.shared.url} stayed busy with another meter for {timeout:g} s",
                              timeout=timeout)
        self._holding = True

    def end(self) -> None:
        if self._holding:
            self._holding = False
            self.shared.lock.release()

    def _stream(self) -> SerialStream:
        if not self._attached:
            raise LinkClosed(f"bus {self.shared.url} is not open for {self.label}")
        return self.shared.stream

    def write(self, data: bytes) -> None:
        self._stream().write(data)

    def read(self, timeout: float) -> bytes:
        return self._stream().read(timeout)

    def drain(self) -> bytes:
        return self._stream().drain()
