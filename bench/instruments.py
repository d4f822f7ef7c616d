"""The bench's instruments in `bench.toml`: the programmable AC source and the load.

    [ac_source]                       # optional
    model = "chroma-61500"            # generic | chroma-61500 | keysight-ac6800 | ametek-ci
    resource = "GPIB0::30::INSTR"     # or "ASRL/dev/ttyUSB0::INSTR" with baud_rate, "TCPIP::host::5025::SOCKET"
    nominal_voltage = 220.0
    nominal_frequency = 50.0

    [load]                            # optional
    kind = "modbus"                   # scpi | modbus
    transport = "tcp"                 # tcp | rtu | rtu-over-tcp
    host = "192.0.2.30"
    port = 502
    device_id = 1
    steps_a = [1.0, 2.0, 4.0, 8.0]

`emulated = true` (and no address) has the bench serve an emulated
instrument; `serve_emulated_instruments` starts them and rewrites the settings
to point at them, so the fixtures open emulated and real instruments alike.
"""
from __future__ import annotations

import os
import re

import datetime as _dt
from dataclasses import dataclass, field
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from smmc_bench.drivers.instruments import (
    AcSource,
    InstrumentError,
    ModbusLoadBank,
    ScpiElectronicLoad,
)

# Every command table in smmc_bench.drivers.instruments.ac_tables (a test keeps the two in step).
AcModel = Literal["generic", "chroma-61500", "keysight-ac6800", "ametek-ci"]

_DEFAULT_STEPS_A = (1.0, 2.0, 4.0, 8.0)


class _Strict(BaseModel):
    # strict: no "2" for 2.0 nor "true" for true; no inf/nan: every timeout and level is finite.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Calibration(_Strict):
    """[ac_source.calibration] / [load.calibration]: the instrument's last calibration.

        [ac_source.calibration]
        last = 2026-03-01
        due = 2027-03-01
        certificate = "LAB-CAL-2026-0117"
    """

    last: _dt.date
    due: _dt.date
    certificate: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _due_after_last(self) -> "Calibration":
        if self.due <= self.last:
            raise ValueError("due: the calibration due date must come after the last calibration")
        return self

    def overdue(self, today: _dt.date) -> bool:
        return today > self.due


class AcSourceSettings(_Strict):
    emulated: bool = False
    calibration: Calibration | None = None
    # VISA resource string: "TCPIP::192.0.2.20::5025::SOCKET", "GPIB0::30::INSTR", "ASRL/dev/ttyUSB0::INSTR".
    resource: str | None = Field(default=None, min_length=1)
    model: AcModel = "generic"
    nominal_voltage: float = Field(default=220.0, gt=0, le=300)
    nominal_frequency: float = Field(default=50.0, ge=15, le=1000)
    timeout: float = Field(default=2.0, gt=0, le=60, description="seconds to wait for each reply")
    visa_backend: str = Field(default="@py", min_length=1)
    read_termination: str = "\n"
    write_termination: str = "\n"
    baud_rate: int | None = Field(default=None, gt=0, le=4_000_000, description="serial (ASRL) resources only")

    @model_validator(mode="after")
    def _needs_address(self) -> "AcSourceSettings":
        if not self.emulated and self.resource is None:
            raise ValueError("resource: a VISA resource string is required unless emulated = true "
                             "(e.g. \"TCPIP::192.0.2.20::5025::SOCKET\")")
        return self


class LoadSettings(_Strict):
    kind: Literal["scpi", "modbus"]
    emulated: bool = False
    calibration: Calibration | None = None
    # kind = "scpi": the command table (smmc_bench.drivers.instruments.load.LOAD_TABLES), the mode selected
    # on open, and per-command overrides for a unit whose manual names one differently:
    #   commands = { on = "LOAD ON", off = "LOAD OFF" }   (keys: mode, set, on, off, measure)
    model: Literal["generic", "chroma-63800", "chroma-63600"] = "generic"
    mode: Literal["CC", "CP", "CR"] = "CC"
    commands: dict[str, str] | None = None
    timeout: float = Field(default=2.0, gt=0, le=60, description="seconds to wait for each reply")
    # kind = "scpi": an electronic load over VISA.
    resource: str | None = Field(default=None, min_length=1)
    visa_backend: str = Field(default="@py", min_length=1)
    # kind = "modbus": a relay board switching fixed load steps.
    transport: Literal["tcp", "rtu", "rtu-over-tcp"] = "tcp"
    host: str | None = Field(default=None, min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    serial_port: str | None = Field(default=None, min_length=1)
    baudrate: int = Field(default=9600, gt=0, le=4_000_000)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    device_id: int = Field(default=1, ge=1, le=247)
    first_coil: int = Field(default=0, ge=0, le=65535)
    # The register map: "coils" (FC01/FC05/FC15, one coil per step from first_coil) or
    # "holding" (FC03/FC06, one holding register per step from first_coil, 1 closes the relay).
    registers: Literal["coils", "holding"] = "coils"
    steps_a: list[float] | None = Field(default=None, min_length=1, max_length=16)

    @model_validator(mode="after")
    def _kind_keys(self) -> "LoadSettings":
        if any(step <= 0 for step in self.steps_a or ()):
            raise ValueError("steps_a: every load step must be a positive current in A")
        if self.kind == "scpi":
            if set(self.commands or {}) - {"mode", "set", "on", "off", "measure"}:
                raise ValueError("commands: keys are mode, set, on, off, measure")
            foreign = [key for key in ("host", "port", "serial_port", "steps_a") if getattr(self, key) is not None]
            if foreign:
                raise ValueError(f"{', '.join(foreign)}: not used by kind = \"scpi\" (it takes resource)")
            if not self.emulated and self.resource is None:
                raise ValueError("resource: kind = \"scpi\" needs a VISA resource string unless emulated = true")
            return self
        if self.resource is not None:
            raise ValueError("resource: not used by kind = \"modbus\" (it takes host/port or serial_port)")
        if self.emulated:
            return self
        if self.steps_a is None:
            raise ValueError("steps_a: kind = \"modbus\" needs the current of each relay step, in coil order")
        if self.transport == "rtu" and self.serial_port is None:
            raise ValueError("serial_port: transport = \"rtu\" needs a serial port (e.g. \"/dev/ttyUSB0\")")
        if self.transport != "rtu" and (self.host is None or self.port is None):
            missing = [key for key in ("host", "port") if getattr(self, key) is None]
            raise ValueError(f"{', '.join(missing)}: transport = \"{self.transport}\" needs host and port")
        return self


# -- opening the drivers -------------------------------------------------------
def open_ac_source(settings: AcSourceSettings) -> AcSource:
    """The AC source driver, connected and identified (InstrumentError with a diagnosis otherwise)."""
    if settings.resource is None:
        raise InstrumentError("AC source: emulated but not served yet (serve_emulated_instruments first)")
    source = AcSource(settings.resource, model=settings.model, nominal_voltage=settings.nominal_voltage,
                      nominal_frequency=settings.nominal_frequency, timeout=settings.timeout,
                      backend=settings.visa_backend, read_termination=settings.read_termination,
                      write_termination=settings.write_termination, baud_rate=settings.baud_rate)
    return source.open()


def open_load(settings: LoadSettings) -> ScpiElectronicLoad | ModbusLoadBank:
    """The load driver, connected and identified."""
    if settings.kind == "scpi":
        if settings.resource is None:
            raise InstrumentError("load: emulated but not served yet (serve_emulated_instruments first)")
        return ScpiElectronicLoad(settings.resource, timeout=settings.timeout, backend=settings.visa_backend,
                                  model=settings.model, mode=settings.mode, overrides=settings.commands).open()
    if (settings.serial_port if settings.transport == "rtu" else settings.port) is None:
        raise InstrumentError("load: emulated but not served yet (serve_emulated_instruments first)")
    bank = ModbusLoadBank(settings.steps_a or _DEFAULT_STEPS_A, transport=settings.transport,
                          host=settings.host, port=settings.port or 502, serial_port=settings.serial_port,
                          baudrate=settings.baudrate, parity=settings.parity, stopbits=settings.stopbits,
                          device_id=settings.device_id, first_coil=settings.first_coil, timeout=settings.timeout,
                          registers=settings.registers)
    return bank.open()


# -- the emulated instruments --------------------------------------------------
@dataclass
class EmulatedInstruments:
    """The instrument settings the bench uses (emulated ones rewritten to their servers)."""

    ac_source: AcSourceSettings | None = None
    load: LoadSettings | None = None
    ac_emulator: object | None = None  # smmc_bench.fixtures.instruments.EmulatedAcSource
    load_emulator: object | None = None  # EmulatedScpiLoad | EmulatedModbusLoadBank
    _stoppers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        while self._stoppers:
            self._stoppers.pop()()


def serve_emulated_instruments(ac: AcSourceSettings | None, load: LoadSettings | None, clock, *,
                               on_supply: Callable[[float, float], None] | None = None,
                               measured_current: Callable[[], float] | None = None,
                               on_demand: Callable[[float], None] | None = None,
                               load_current: Callable[[], float] | None = None) -> EmulatedInstruments:
    """Serve the instruments marked `emulated`; pass real ones through unchanged.

    `on_supply(volts, hertz)`: the emulated source's terminals changed (the bench powers the
    emulated meters from it). `measured_current()`: the current the source delivers.
    `on_demand(amps)`: the load current asked for. `load_current()`: optional, what the SCPI
    load's `MEAS:CURR?` reads (default: the commanded current while its input is on).
    """
    from smmc_bench.fixtures.instruments import (
        EmulatedAcSource,
        EmulatedModbusLoadBank,
        EmulatedScpiLoad,
    )

    served = EmulatedInstruments(ac_source=ac, load=load)
    try:
        if ac is not None and ac.emulated:
            source = EmulatedAcSource(clock, model=ac.model, nominal_voltage=ac.nominal_voltage,
                                      nominal_frequency=ac.nominal_frequency, on_supply=on_supply,
                                      measured_current=measured_current)
            source.start()
            served._stoppers.append(source.stop)
            served.ac_emulator = source
            served.ac_source = ac.model_copy(update={"resource": source.resource, "visa_backend": "@py"})
        if load is not None and load.emulated:
            if load.kind == "scpi":
                emulator = EmulatedScpiLoad(on_demand, actual_current=load_current, model=load.model)
                emulator.start()
                served.load = load.model_copy(update={"resource": emulator.resource, "visa_backend": "@py"})
            else:
                framer = "rtu" if load.transport != "tcp" else "socket"
                emulator = EmulatedModbusLoadBank(load.steps_a or _DEFAULT_STEPS_A, on_demand=on_demand,
                                                  device_id=load.device_id, first_coil=load.first_coil,
                                                  framer=framer, registers=load.registers)
                host, port = emulator.start()
                # A serial RTU bank is served as RTU over TCP: same frames, no serial port needed.
                served.load = load.model_copy(update={
                    "host": host, "port": port, "serial_port": None,
                    "transport": "tcp" if load.transport == "tcp" else "rtu-over-tcp",
                    "steps_a": list(emulator.steps_a)})
            served._stoppers.append(emulator.stop)
            served.load_emulator = emulator
    except BaseException:
        served.stop()
        raise
    return served


# -- bench doctor ----------------------------------------------------------------
@dataclass(frozen=True)
class InstrumentProbe:
    name: str  # "AC source" | "load"
    ok: bool
    identification: str = ""
    diagnosis: str = ""


def probe_instruments(ac: AcSourceSettings | None, load: LoadSettings | None, clock=None) -> list[InstrumentProbe]:
    """Open and identify each configured instrument. Emulated ones not yet served are served for
    the probe (on `clock`, a fresh VirtualClock by default) and stopped after."""
    probes: list[InstrumentProbe] = []
    unserved_ac = ac is not None and ac.emulated and ac.resource is None
    unserved_load = load is not None and load.emulated and (
        load.resource is None if load.kind == "scpi" else load.port is None)
    served = None
    if unserved_ac or unserved_load:
        if clock is None:
            from smmc_bench.fixtures.clock import VirtualClock
            clock = VirtualClock()
        served = serve_emulated_instruments(ac if unserved_ac else None, load if unserved_load else None, clock)
        ac = served.ac_source if unserved_ac else ac
        load = served.load if unserved_load else load
    try:
        if ac is not None:
            probes.append(_probe("AC source", lambda: open_ac_source(ac), ac))
        if load is not None:
            probes.append(_probe("load", lambda: open_load(load), load))
    finally:
        if served is not None:
            served.stop()
    return probes


def _probe(name: str, opener: Callable[[], object], settings) -> InstrumentProbe:
    try:
        driver = opener()
    except InstrumentError as exc:
        return InstrumentProbe(name, False, diagnosis=exc.diagnosis)
    try:
        identification = driver.identification or ""
        diagnosis = "emulated" if settings.emulated else ""
        table = getattr(driver, "table", None)
        if table is not None and not table.idn_matches(identification):
            diagnosis = f"*IDN? does not look like a {table.description}; check model = \"{table.model}\""
            return InstrumentProbe(name, False, identification, diagnosis)
        unconfirmed = len(getattr(table, "unconfirmed", ()))
        if unconfirmed:
            note = f"{unconfirmed} unconfirmed command-table entries (bench doctor --instruments lists them)"
            identification = f"{identification}; {note}" if identification else note
        return InstrumentProbe(name, True, identification, diagnosis)
    finally:
        driver.close()


# -- calibration, for the run record ---------------------------------------------
@dataclass(frozen=True)
class InstrumentCalibration:
    """One instrument's identity and calibration, as a run record carries it."""

    name: str  # "AC source" | "load"
    identification: str  # *IDN? (or the Modbus board's description); "" if not read
    certificate: str | None
    last: _dt.date | None
    due: _dt.date | None
    overdue: bool  # past its due date on `today`; an instrument with no calibration data is not overdue
    emulated: bool

    def as_record(self) -> dict[str, object]:
        return {"name": self.name, "identification": self.identification, "certificate": self.certificate,
                "last": self.last.isoformat() if self.last else None,
                "due": self.due.isoformat() if self.due else None,
                "overdue": self.overdue, "emulated": self.emulated}


def calibration_summary(ac: AcSourceSettings | None, load: LoadSettings | None, today: _dt.date,
                        identities: dict[str, str] | None = None) -> list[InstrumentCalibration]:
    """Per configured instrument: identity and calibration, with `overdue` against `today` (the
    bench clock's date). `identities` maps "AC source"/"load" to their *IDN? replies."""
    identities = identities or {}
    summary = []
    for name, settings in (("AC source", ac), ("load", load)):
        if settings is None:
            continue
        cal = settings.calibration
        summary.append(InstrumentCalibration(
            name=name, identification=identities.get(name, ""),
            certificate=cal.certificate if cal else None, last=cal.last if cal else None,
            due=cal.due if cal else None, overdue=bool(cal and cal.overdue(today)), emulated=settings.emulated))
    return summary


def lock_name(kind: str, settings) -> str:
    """The physical resource an instrument's settings drive, as the inter-process lock names it:
    one name however the bench file spells it (VISA's default board 0 and ::INSTR suffix, letter
    case, a serial port by one of its /dev/serial/by-id links)."""
    resource = getattr(settings, "resource", None)
    if resource:
        return f"{kind} {canonical_visa(resource)}"
    serial_port = getattr(settings, "serial_port", None)
    if serial_port:
        return f"{kind} {canonical_port(serial_port)}"
    return f"{kind} {str(getattr(settings, 'host', None)).lower()}:{getattr(settings, 'port', None)}"


def canonical_port(port: str) -> str:
    return os.path.realpath(port) if port.startswith("/") else port


def canonical_visa(resource: str) -> str:
    """'tcpip::192.0.2.20::inst0::INSTR' and 'TCPIP0::192.0.2.20::inst0' name one instrument."""
    text = resource.strip()
    if text.upper().startswith("ASRL") and "/" in text:  # ASRL/dev/ttyUSB0::INSTR: a path keeps its case
        path = text[4:].split("::", 1)[0]
        return f"ASRL{canonical_port(path)}::INSTR"
    parts = text.upper().split("::")
    head = re.fullmatch(r"([A-Z]+?)(\d*)", parts[0])
    if head:
        parts[0] = head.group(1) + (head.group(2) or "0")
    if parts[-1] != "INSTR" and parts[-1] != "SOCKET":
        parts.append("INSTR")
    return "::".join(parts)
