"""The load the meter under test supplies: a tiny protocol and two drivers.

- `ScpiElectronicLoad`: an AC electronic load over PyVISA in constant-current
  mode (`CURR <a>`, `INP ON|OFF`, `MEAS:CURR?`).
- `ModbusLoadBank`: a relay board switching fixed load steps (resistor banks,
  heaters), one coil per step, over Modbus TCP, Modbus RTU on a serial port,
  or RTU through a serial device server (RTU framing over TCP).

`current()` is the current the meter sees: measured by an electronic load;
for a relay bank, which cannot measure, the nominal sum of the closed steps
as read back from the board (a test that needs the real figure measures it
at the AC source).
"""
from __future__ import annotations

import itertools
import logging
from typing import Literal, Protocol, Sequence, runtime_checkable

from drivers.instruments.errors import (
    InstrumentCommandError,
    InstrumentReplyError,
    InstrumentTimeout,
    InstrumentUnreachable,
)
from drivers.instruments.scpi import ScpiConnection

log = logging.getLogger(__name__)


@runtime_checkable
class Load(Protocol):
    def set_current(self, amps: float) -> None: ...
    def on(self) -> None: ...
    def off(self) -> None: ...
    def current(self) -> float: ...


class ScpiElectronicLoad:
    """A programmable electronic load in constant-current mode, over PyVISA."""

    def __init__(self, resource: str, *, timeout: float = 2.0, backend: str = "@py",
                 read_termination: str = "\n", write_termination: str = "\n",
                 set_current: str = "CURR {a:.3f}", input_on: str = "INP ON", input_off: str = "INP OFF",
                 measure_current: str = "MEAS:CURR?", name: str = "electronic load") -> None:
        self.name = name
        self.commands = {"set": set_current, "on": input_on, "off": input_off, "measure": measure_current}
        self.link = ScpiConnection(resource, name=name, backend=backend, timeout=timeout,
                                   read_termination=read_termination, write_termination=write_termination)
        self.identification: str | None = None

    def open(self) -> "ScpiElectronicLoad":
        self.link.open()
        try:
            self.link.write("*CLS", check=False)
            self.identify()
        except BaseException:
            self.link.close()
            raise
        return self

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> "ScpiElectronicLoad":
        return self.open() if not self.link.is_open else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def identify(self) -> str:
        self.identification = self.link.query("*IDN?")
        return self.identification

    def set_current(self, amps: float) -> None:
        if amps < 0:
            raise ValueError(f"load current must be >= 0 A, not {amps}")
        self.link.write(self.commands["set"].format(a=amps))

    def on(self) -> None:
        self.link.write(self.commands["on"])

    def off(self) -> None:
        self.link.write(self.commands["off"])

    def current(self) -> float:
        return self.link.query_number(self.commands["measure"])


class ModbusLoadBank:
    """Fixed load steps switched by relay coils (coil `first_coil + i` switches `steps_a[i]`).

    `set_current(a)` picks the combination of steps closest to `a` (not above it when one
    exists, so a limiter threshold is approached from below); `on()` closes those relays,
    `off()` opens them all. `chosen_a` says what was picked.
    """

    def __init__(self, steps_a: Sequence[float], *, transport: Literal["tcp", "rtu", "rtu-over-tcp"] = "tcp",
                 host: str | None = None, port: int = 502, serial_port: str | None = None,
                 baudrate: int = 9600, parity: str = "N", stopbits: int = 1, bytesize: int = 8,
                 device_id: int = 1, first_coil: int = 0, timeout: float = 1.0, retries: int = 1,
                 name: str = "Modbus load bank") -> None:
        if not steps_a or any(step <= 0 for step in steps_a):
            raise ValueError("steps_a must list at least one positive current")
        if len(steps_a) > 16:
            raise ValueError("at most 16 load steps (every combination is tried)")
        self.steps_a = tuple(float(step) for step in steps_a)
        self.transport = transport
        self.host, self.port, self.serial_port = host, port, serial_port
        self.device_id = device_id
        self.first_coil = first_coil
        self.timeout = timeout
        self.name = name
        self._serial = dict(baudrate=baudrate, parity=parity, stopbits=stopbits, bytesize=bytesize)
        self._retries = retries
        self._client = None
        self._selection: tuple[bool, ...] = (False,) * len(self.steps_a)
        self.identification: str | None = None

    @property
    def where(self) -> str:
        if self.transport == "rtu":
            return f"{self.serial_port} (RTU, device {self.device_id})"
        framing = "RTU over TCP" if self.transport == "rtu-over-tcp" else "TCP"
        return f"{self.host}:{self.port} ({framing}, device {self.device_id})"

    @property
    def chosen_a(self) -> float:
        return sum(step for step, closed in zip(self.steps_a, self._selection) if closed)

    # -- lifecycle ------------------------------------------------------------
    def open(self) -> "ModbusLoadBank":
        from pymodbus import FramerType
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient

        if self._client is not None:
            return self
        if self.transport == "rtu":
            client = ModbusSerialClient(self.serial_port, framer=FramerType.RTU, timeout=self.timeout,
                                        retries=self._retries, **self._serial)
        else:
            framer = FramerType.RTU if self.transport == "rtu-over-tcp" else FramerType.SOCKET
            client = ModbusTcpClient(self.host, port=self.port, framer=framer, timeout=self.timeout,
                                     retries=self._retries)
        try:
            connected = client.connect()
        except Exception as exc:  # pymodbus/pyserial raise a variety here; all mean "not reachable"
            raise InstrumentUnreachable(f"{self.name} at {self.where}: cannot connect ({exc})") from None
        if not connected:
            client.close()
            raise InstrumentUnreachable(f"{self.name} at {self.where}: cannot connect "
                                        "(refused or no such port; is the board powered and addressed right?)")
        self._client = client
        try:
            self.identify()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> "ModbusLoadBank":
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- operations -----------------------------------------------------------
    def identify(self) -> str:
        """Reading the coils proves the board answers at this address (relay boards rarely
        implement device identification)."""
        coils = self._read_coils()
        self.identification = (f"Modbus relay board at {self.where}, {len(self.steps_a)} steps "
                               f"({', '.join(f'{s:g} A' for s in self.steps_a)}), closed: "
                               f"{[i for i, c in enumerate(coils) if c] or 'none'}")
        return self.identification

    def set_current(self, amps: float) -> None:
        if amps < 0:
            raise ValueError(f"load current must be >= 0 A, not {amps}")
        self._selection = self._choose(amps)
        if any(self._read_coils()):
            self._write_coils(self._selection)  # already on: follow the new setting at once

    def on(self) -> None:
        self._write_coils(self._selection)

    def off(self) -> None:
        self._write_coils((False,) * len(self.steps_a))

    def current(self) -> float:
        return sum(step for step, closed in zip(self.steps_a, self._read_coils()) if closed)

    # -- internals ------------------------------------------------------------
    def _choose(self, amps: float) -> tuple[bool, ...]:
        # Rank by (above the target?, distance to it): at or below the target wins over above it.
        def rank(combo: tuple[bool, ...]) -> tuple[bool, float]:
            total = sum(step for step, closed in zip(self.steps_a, combo) if closed)
            return total > amps + 1e-9, abs(total - amps)

        return min(itertools.product((False, True), repeat=len(self.steps_a)), key=rank)

    def _read_coils(self) -> list[bool]:
        reply = self._call("read coils", lambda c: c.read_coils(self.first_coil, count=len(self.steps_a),
                                                                device_id=self.device_id))
        return list(reply.bits[: len(self.steps_a)])

    def _write_coils(self, states: Sequence[bool]) -> None:
        self._call("write coils", lambda c: c.write_coils(self.first_coil, list(states), device_id=self.device_id))
        log.debug("%s: coils %s -> %s A", self.name, list(states), self.chosen_a)

    def _call(self, what: str, request):
        from pymodbus.exceptions import ConnectionException, ModbusIOException

        if self._client is None:
            self.open()
        try:
            reply = request(self._client)
        except ModbusIOException:
            raise InstrumentTimeout(f"{self.name} at {self.where}: no reply to {what} within "
                                    f"{self.timeout:g} s (wrong device_id, wiring or baud rate?)",
                                    timeout=self.timeout) from None
        except ConnectionException as exc:
            raise InstrumentUnreachable(f"{self.name} at {self.where}: link lost during {what} ({exc})") from None
        except OSError as exc:
            raise InstrumentUnreachable(f"{self.name} at {self.where}: {what} failed ({exc})") from None
        if reply.isError():
            code = getattr(reply, "exception_code", 0)
            raise InstrumentCommandError(
                f"{self.name} at {self.where}: {what} refused with Modbus exception {code} "
                f"({_MODBUS_EXCEPTIONS.get(code, 'unknown')})", command=what, code=code,
                message=_MODBUS_EXCEPTIONS.get(code, ""))
        if what == "read coils" and len(getattr(reply, "bits", [])) < len(self.steps_a):
            raise InstrumentReplyError(f"{self.name} at {self.where}: read coils returned "
                                       f"{len(reply.bits)} bits for {len(self.steps_a)} steps")
        return reply


_MODBUS_EXCEPTIONS = {
    1: "illegal function", 2: "illegal data address: fewer coils than steps_a?", 3: "illegal data value",
    4: "device failure", 6: "device busy", 10: "gateway path unavailable",
    11: "gateway target did not respond",
}

__all__ = ["Load", "ScpiElectronicLoad", "ModbusLoadBank"]
