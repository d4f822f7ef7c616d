"""A SCPI conversation with one instrument over PyVISA, bounded and diagnosed.

- explicit read/write termination (without them pyvisa-py waits for a
  termination that never comes and every query times out);
- every read bounded by the timeout; a dead, silent or refusing instrument
  raises an `InstrumentError` subclass with a one-line diagnosis, never hangs;
- the error queue (`SYST:ERR?`) is read after every command, so a rejected
  command fails where it was sent, not three steps later;
- an exchange interrupted half-way (timeout, Ctrl-C) leaves a reply that may
  still arrive; the session is then reopened before the next exchange so a
  stale reply is never taken for the answer to a new query.
"""
from __future__ import annotations

import logging
import re
import socket
import threading
from functools import cache
from typing import TYPE_CHECKING

from smmc_bench.drivers.instruments.errors import (
    InstrumentCommandError,
    InstrumentError,
    InstrumentReplyError,
    InstrumentTimeout,
    InstrumentUnreachable,
)

if TYPE_CHECKING:
    import pyvisa

log = logging.getLogger(__name__)


@cache
def _pyvisa():
    """PyVISA on first use: it pulls in numpy, a second of start-up for every worker of a rack that
    drives no VISA instrument."""
    import pyvisa
    import pyvisa.constants
    import pyvisa.errors
    return pyvisa

_MANAGERS: dict[str, pyvisa.ResourceManager] = {}
_MANAGERS_LOCK = threading.Lock()

# A queue longer than this is a source stuck repeating one error: stop reading, report what we have.
_MAX_QUEUE_READS = 32
_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


def resource_manager(backend: str) -> pyvisa.ResourceManager:
    """One ResourceManager per VISA backend for the process (making one scans the backend)."""
    with _MANAGERS_LOCK:
        if backend not in _MANAGERS:
            try:
                _MANAGERS[backend] = _pyvisa().ResourceManager(backend)
            except (OSError, ValueError) as exc:
                raise InstrumentUnreachable(f"VISA backend {backend!r} unusable: {exc}") from None
        return _MANAGERS[backend]


def _disable_nagle(session) -> None:
    """TCP_NODELAY on a TCPIP SOCKET session.

    A command followed by `SYST:ERR?` is two small writes: with Nagle on, the second
    waits for the ACK of the first, which the instrument delays (~40 ms on Linux), so
    every checked command would cost 40 ms. pyvisa-py 0.8 declares
    VI_ATTR_TCPIP_NODELAY but cannot set it ("Unknown attribute"), hence the fallback
    to its session's socket; other backends take the attribute.
    """
    constants = _pyvisa().constants
    if getattr(session, "interface_type", None) != constants.InterfaceType.tcpip:
        return
    try:
        session.set_visa_attribute(constants.ResourceAttribute.tcpip_nodelay, constants.VI_TRUE)
        return
    except Exception:
        pass
    backend_session = getattr(session.visalib, "sessions", {}).get(session.session)
    sock = getattr(backend_session, "interface", None)
    if isinstance(sock, socket.socket):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            log.debug("TCP_NODELAY not set on %s", session.resource_name, exc_info=True)


def parse_number(reply: str, *, what: str) -> float:
    """The leading number of a SCPI reply ("+2.2000E+02", "220.0", "220.0V")."""
    match = _NUMBER.match(reply)
    if not match:
        raise InstrumentReplyError(f"{what}: expected a number, got {reply[:60]!r}", raw=reply)
    return float(match.group(1))


def parse_error_entry(reply: str) -> tuple[int, str]:
    """`-113,"Undefined header"` -> (-113, "Undefined header"); a bare "0" is accepted too."""
    code_text, _, message = reply.partition(",")
    try:
        code = int(code_text.strip())
    except ValueError:
        raise InstrumentReplyError(f"error queue: expected '<code>,\"<message>\"', got {reply[:60]!r}",
                                   raw=reply) from None
    return code, message.strip().strip('"')


class ScpiConnection:
    """One VISA session speaking SCPI; thread-safe (one exchange at a time)."""

    def __init__(self, resource: str, *, name: str = "instrument", backend: str = "@py",
                 timeout: float = 2.0, open_timeout: float | None = None,
                 read_termination: str = "\n", write_termination: str = "\n",
                 error_query: str | None = "SYST:ERR?", baud_rate: int | None = None) -> None:
        self.resource = resource
        self.name = name
        self.backend = backend
        self.timeout = timeout
        self.open_timeout = open_timeout if open_timeout is not None else timeout
        self.read_termination = read_termination
        self.write_termination = write_termination
        self.error_query = error_query
        self.baud_rate = baud_rate  # serial (ASRL) resources only
        self._session = None
        self._dirty = False
        self._lock = threading.RLock()

    # -- lifecycle ------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._session is not None

    def open(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            manager = resource_manager(self.backend)
            options = {}
            if self.baud_rate is not None and self.resource.upper().startswith("ASRL"):
                options["baud_rate"] = self.baud_rate
            try:
                session = manager.open_resource(
                    self.resource,
                    open_timeout=int(self.open_timeout * 1000),
                    timeout=int(self.timeout * 1000),
                    read_termination=self.read_termination,
                    write_termination=self.write_termination,
                    **options,
                )
            except _pyvisa().errors.VisaIOError as exc:
                raise InstrumentUnreachable(
                    f"{self.name} at {self.resource}: cannot open ({exc.abbreviation})") from None
            except Exception as exc:  # pyvisa-py raises a bare Exception when the TCP connect times out
                raise InstrumentUnreachable(f"{self.name} at {self.resource}: cannot open ({exc})") from None
            _disable_nagle(session)
            self._session = session
            self._dirty = False

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
            if session is not None:
                try:
                    session.close()
                except Exception:  # closing a dead session must not hide why it died
                    log.debug("closing %s failed", self.resource, exc_info=True)

    def reopen(self) -> None:
        """A fresh session: nothing in flight, nothing stale to read."""
        with self._lock:
            self.close()
            self.open()

    def __enter__(self) -> "ScpiConnection":
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- exchanges ------------------------------------------------------------
    def write(self, command: str, *, check: bool = True) -> None:
        """Send `command`, then read the error queue; an entry raises InstrumentCommandError."""
        with self._lock:
            self._exchange(command, expect_reply=False)
            if check:
                self.check_errors(command)

    def query(self, command: str) -> str:
        with self._lock:
            return self._exchange(command, expect_reply=True)

    def query_number(self, command: str) -> float:
        return parse_number(self.query(command), what=f"{self.name}: reply to {command!r}")

    def read_errors(self) -> list[tuple[int, str]]:
        """Drain the error queue: every (code, message) until 0."""
        if not self.error_query:
            return []
        entries = []
        with self._lock:
            for _ in range(_MAX_QUEUE_READS):
                code, message = parse_error_entry(self._exchange(self.error_query, expect_reply=True))
                if code == 0:
                    break
                entries.append((code, message))
        return entries

    def check_errors(self, command: str) -> None:
        entries = self.read_errors()
        if entries:
            code, message = entries[0]
            more = f" (and {len(entries) - 1} more: " + "; ".join(f"{c} {m}" for c, m in entries[1:]) + ")" \
                if len(entries) > 1 else ""
            raise InstrumentCommandError(
                f"{self.name}: {command!r} rejected: {code} {message}{more}",
                command=command, code=code, message=message,
            )

    # -- internals ------------------------------------------------------------
    def _exchange(self, command: str, *, expect_reply: bool) -> str:
        if self._session is None:
            self.open()
        elif self._dirty:
            self.reopen()
        session = self._session
        # Dirty until the exchange completes: an exception (or Ctrl-C) half-way may leave a reply in flight.
        self._dirty = True
        try:
            session.write(command)
            reply = session.read().strip() if expect_reply else ""
        except _pyvisa().errors.VisaIOError as exc:
            raise self._diagnose_visa(command, exc) from None
        except ConnectionRefusedError:
            raise InstrumentUnreachable(
                f"{self.name} at {self.resource}: connection refused (is it on, and is its SCPI port right?)") from None
        except OSError as exc:
            raise InstrumentUnreachable(
                f"{self.name} at {self.resource}: link lost during {command!r} ({exc.strerror or exc})") from None
        self._dirty = False
        log.debug("%s <- %s%s", self.name, command, f" -> {reply}" if expect_reply else "")
        return reply

    def _diagnose_visa(self, command: str, exc: pyvisa.errors.VisaIOError) -> InstrumentError:
        status = _pyvisa().constants.StatusCode
        if exc.error_code == status.error_timeout:
            hint = self._late_diagnosis(command)
            return InstrumentTimeout(
                f"{self.name} at {self.resource}: no reply to {command!r} within {self.timeout:g} s{hint}",
                timeout=self.timeout,
            )
        if exc.error_code in (status.error_connection_lost, status.error_resource_not_found, status.error_io):
            return InstrumentUnreachable(f"{self.name} at {self.resource}: {exc.abbreviation} during {command!r}")
        return InstrumentError(f"{self.name} at {self.resource}: {exc.abbreviation} during {command!r}")

    def _late_diagnosis(self, command: str) -> str:
        """After a query timed out: did the instrument reject it (an unknown query is never answered)?"""
        if not self.error_query or command == self.error_query:
            return " (silent: wrong port, not a SCPI socket, or hung)"
        try:
            self.reopen()
            entries = self.read_errors()
        except InstrumentError:
            return " (silent: wrong port, not a SCPI socket, or hung)"
        if entries:
            code, message = entries[0]
            return f"; its error queue says {code} {message} (a command this model does not know?)"
        return " (it answers its error queue, so the query itself was not answered)"
