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
from dataclasses import dataclass
from typing import Literal, Protocol, Sequence, runtime_checkable

from smmc_bench.drivers.instruments.errors import (
    InstrumentCommandError,
    InstrumentError,
    InstrumentReplyError,
    InstrumentTimeout,
    InstrumentUnreachable,
)
from smmc_bench.drivers.instruments.scpi import ScpiConnection

log = logging.getLogger(__name__)


@runtime_checkable
class Load(Protocol):
    def set_current(self, amps: float) -> None: ...
    def on(self) -> None: ...
    def off(self) -> None: ...
    def current(self) -> float: ...


LoadMode = Literal["CC", "CP", "CR"]


@dataclass(frozen=True)
class LoadCommandTable:
    """One electronic load model's strings. `modes` maps CC/CP/CR to the mode command and
    `levels` to the level setter ({x}: amps, watts or ohms)."""

    model: str
    modes: dict[str, str]
    levels: dict[str, str]
    input_on: str
    input_off: str
    measure_current: str
    on_close: tuple[str, ...] = ()
    unconfirmed: tuple[str, ...] = ()
    sources: tuple[tuple[str, str], ...] = ()
    idn_words: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return f"{self.model} electronic load"

    def idn_matches(self, identification: str) -> bool:
        text = identification.upper()
        return not self.idn_words or any(word.upper() in text for word in self.idn_words)


LOAD_TABLES: dict[str, LoadCommandTable] = {
    "generic": LoadCommandTable(
        model="generic",
        # SCPI-1999 vol. 2 SOURce:FUNCtion (as on Keysight N3300/EL3xxxx-style loads).
        modes={"CC": "FUNC CURR", "CP": "FUNC POW", "CR": "FUNC RES"},
        levels={"CC": "CURR {x:.3f}", "CP": "POW {x:.2f}", "CR": "RES {x:.3f}"},
        input_on="INP ON", input_off="INP OFF", measure_current="MEAS:CURR?",
        on_close=("SYST:LOC",),
        unconfirmed=("FUNC CURR|POW|RES on AC loads (most AC loads name the mode differently)",
                     "SYST:LOC on close"),
        sources=(("INP, CURR, MEAS:CURR?", "SCPI-1999 common subset"),),
    ),
    "chroma-63800": LoadCommandTable(
        model="chroma-63800",
        # Chroma 63800 AC/DC load programming manual: MODE CC|CR|CP..., CURR:STAT:L1, LOAD ON|OFF.
        modes={"CC": "MODE CC", "CP": "MODE CP", "CR": "MODE CR"},
        levels={"CC": "CURR:STAT:L1 {x:.3f}", "CP": "POW:STAT:L1 {x:.2f}", "CR": "RES:STAT:L1 {x:.3f}"},
        input_on="LOAD ON", input_off="LOAD OFF", measure_current="MEAS:CURR?",
        on_close=("CONF:REM OFF",),
        unconfirmed=("MODE CC/CP/CR and CURR:STAT:L1 / POW:STAT:L1 / RES:STAT:L1 headers",
                     "CONF:REM OFF as local on close"),
        sources=(("MODE, LOAD ON|OFF, MEAS:CURR?", "Chroma 63800 programming manual (LOAD/MODE subsystems)"),),
    ),
    "chroma-63600": LoadCommandTable(
        model="chroma-63600",
        # Chroma 63600 DC load: modes per range (CCL/CCM/CCH, CRL.., CPL..), levels per channel.
        modes={"CC": "MODE CCH", "CP": "MODE CPH", "CR": "MODE CRH"},
        levels={"CC": "CURR:STAT:L1 {x:.3f}", "CP": "POW:STAT:L1 {x:.2f}", "CR": "RES:STAT:L1 {x:.3f}"},
        input_on="LOAD ON", input_off="LOAD OFF", measure_current="MEAS:CURR?",
        unconfirmed=("MODE CCH/CPH/CRH range choice (the high range assumed)", "no local command on close"),
        sources=(("MODE CCL|CCM|CCH, LOAD ON|OFF", "Chroma 63600 programming manual"),),
    ),
}
LOAD_MODELS = tuple(LOAD_TABLES)


class ScpiElectronicLoad:
    """A programmable electronic load over PyVISA, through its model's command table (mode
    selected on open: CC by default)."""

    def __init__(self, resource: str, *, timeout: float = 2.0, backend: str = "@py",
                 read_termination: str = "\n", write_termination: str = "\n",
                 model: str = "generic", mode: LoadMode = "CC",
                 overrides: dict[str, str] | None = None, name: str = "electronic load") -> None:
        try:
            self.table = LOAD_TABLES[model]
        except KeyError:
            raise ValueError(f"no load command table for model {model!r}; known: {', '.join(LOAD_MODELS)}") from None
        if mode not in self.table.modes:
            raise ValueError(f"load mode must be one of {', '.join(self.table.modes)}, not {mode!r}")
        self.name = name
        self.mode = mode
        self.commands = {"mode": self.table.modes[mode], "set": self.table.levels[mode],
                         "on": self.table.input_on, "off": self.table.input_off,
                         "measure": self.table.measure_current}
        # bench.toml may override any string (a unit whose manual names a command differently).
        unknown = set(overrides or {}) - set(self.commands)
        if unknown:
            raise ValueError(f"unknown load command {', '.join(sorted(unknown))}; known: {', '.join(self.commands)}")
        self.commands.update(overrides or {})
        self.link = ScpiConnection(resource, name=name, backend=backend, timeout=timeout,
                                   read_termination=read_termination, write_termination=write_termination)
        self.identification: str | None = None

    def open(self) -> "ScpiElectronicLoad":
        self.link.open()
        try:
            self.link.write("*CLS", check=False)
            self.identify()
            self.link.write(self.commands["mode"])
        except BaseException:
            self.link.close()
            raise
        return self

    def close(self) -> None:
        if self.link.is_open:
            for command in self.table.on_close:
                try:
                    self.link.write(command)  # checked: a refusal is logged, not raised
                except InstrumentError as exc:
                    log.warning("%s: %s on close failed: %s", self.name, command, exc.diagnosis)
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
        if self.mode != "CC":
            raise ValueError(f"{self.name} is in {self.mode} mode: use set_level (watts or ohms)")
        self.set_level(amps)

    def set_level(self, value: float) -> None:
        """The level of the selected mode: amps (CC), watts (CP) or ohms (CR)."""
        if value < 0:
            raise ValueError(f"load level must be >= 0, not {value}")
        self.link.write(self.commands["set"].format(x=value))

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
                 registers: Literal["coils", "holding"] = "coils", name: str = "Modbus load bank") -> None:
        if registers not in ("coils", "holding"):
            raise ValueError(f"registers must be coils or holding, not {registers!r}")
        self.registers = registers
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
        if self.registers == "holding":  # FC03: one register per step, nonzero = relay closed
            reply = self._call("read holding registers", lambda c: c.read_holding_registers(
                self.first_coil, count=len(self.steps_a), device_id=self.device_id))
            return [bool(value) for value in reply.registers[: len(self.steps_a)]]
        reply = self._call("read coils", lambda c: c.read_coils(self.first_coil, count=len(self.steps_a),
                                                                device_id=self.device_id))
        return list(reply.bits[: len(self.steps_a)])

    def _write_coils(self, states: Sequence[bool]) -> None:
        if self.registers == "holding":  # FC06 per step: boards of this kind rarely take FC16
            for index, state in enumerate(states):
                self._call("write holding register", lambda c, i=index, v=int(state): c.write_register(
                    self.first_coil + i, v, device_id=self.device_id))
            log.debug("%s: registers %s -> %s A", self.name, list(states), self.chosen_a)
            return
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
        if what == "read holding registers" and len(getattr(reply, "registers", [])) < len(self.steps_a):
            raise InstrumentReplyError(f"{self.name} at {self.where}: read holding registers returned "
                                       f"{len(reply.registers)} registers for {len(self.steps_a)} steps")
        if what == "read coils" and len(getattr(reply, "bits", [])) < len(self.steps_a):
            raise InstrumentReplyError(f"{self.name} at {self.where}: read coils returned "
                                       f"{len(reply.bits)} bits for {len(self.steps_a)} steps")
        return reply


_MODBUS_EXCEPTIONS = {
    1: "illegal function", 2: "illegal data address: fewer coils than steps_a?", 3: "illegal data value",
    4: "device failure", 6: "device busy", 10: "gateway path unavailable",
    11: "gateway target did not respond",
}

__all__ = ["Load", "LoadCommandTable", "LOAD_TABLES", "LOAD_MODELS", "ScpiElectronicLoad", "ModbusLoadBank"]
