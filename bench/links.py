"""How the bench reaches a meter: the link kinds `bench.toml` can name, the
transport each opens, a quick probe of each (for `bench doctor`), and the
emulated servers behind them on the emulated bench.

Kinds: `tcp` (IEC 62056-47 wrapper), `gateway` (wrapper to a data concentrator,
the meter chosen by wPort), `hdlc-tcp` (serial device server: raw HDLC on a TCP
port), `serial` (HDLC on a serial port by pyserial URL: a device,
`rfc2217://`, `socket://`), `optical` (IEC 62056-21 mode E, then HDLC) and
`rs485` (HDLC on a bus shared by several meters, each by physical address).
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Callable, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator
from smmc_bench.drivers.dlms import Transport
from smmc_bench.drivers.dlms.errors import DlmsError
from smmc_bench.drivers.dlms.trace import FrameTrace

if TYPE_CHECKING:
    from smmc_bench.profile.links import LinkProfile

HDLC_KINDS = ("optical", "serial", "hdlc-tcp", "rs485")
_EMULATED_SCHEMES = ("rfc2217://", "socket://")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _LinkBase(_Strict):
    name: str | None = Field(default=None, description="label for reports; defaults to the kind")
    connect_timeout: float = Field(default=5.0, gt=0)
    timeout: float = Field(default=5.0, gt=0, description="seconds to wait for each reply")

    def missing_address(self) -> list[str]:
        """The addressing keys a real meter's link must give (an emulated meter's are filled in)."""
        return [key for key in self._address_keys() if getattr(self, key) in (None, "")]

    def _address_keys(self) -> tuple[str, ...]:
        return ()


class TcpWrapperLink(_LinkBase):
    """IEC 62056-47 TCP wrapper, as spoken by meters with a LAN/cellular modem."""

    kind: Literal["tcp"] = "tcp"
    # Left out on an emulated meter: the bench fills in the emulator's address.
    host: str | None = Field(default=None, min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    server_wport: int = Field(default=1, ge=0, le=0xFFFF)

    @property
    def server_logical(self) -> int:
        return self.server_wport

    def _address_keys(self) -> tuple[str, ...]:
        return ("host", "port")

    def describe(self) -> str:
        return f"tcp://{self.host}:{self.port} wPort {self.server_wport}"


class GatewayLink(_LinkBase):
    """A gateway / data concentrator: several meters behind one host:port, this one at `wport`."""

    kind: Literal["gateway"] = "gateway"
    gateway: str = Field(default="gateway", min_length=1, description="meters naming the same gateway share it")
    host: str | None = Field(default=None, min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    wport: int | None = Field(default=None, ge=1, le=0xFFFF, description="destination wPort of this meter")

    @property
    def server_logical(self) -> int:
        return self.wport or 0

    def _address_keys(self) -> tuple[str, ...]:
        return ("host", "port", "wport")

    def describe(self) -> str:
        return f"gateway {self.gateway} tcp://{self.host}:{self.port} wPort {self.wport}"


class _HdlcLink(_LinkBase):
    """HDLC addressing and negotiation, common to every HDLC link."""

    logical_address: int = Field(default=1, ge=0, le=0x3FFF, description="server upper HDLC address")
    physical_address: int | None = Field(default=None, ge=0, le=0x3FFF, description="server lower HDLC address")
    physical_from_serial: str | None = Field(
        default=None, min_length=1, description="derive the lower address from this serial number (SN % 10000 + 1000)")
    address_size: Literal[1, 2, 4] | None = Field(default=None, description="server address bytes (default: smallest)")
    max_info_length: int | None = Field(default=None, ge=32, le=2030, description="SNRM proposal; default: profile")
    window_size: int | None = Field(default=None, ge=1, le=7, description="SNRM proposal; default: profile")
    snrm_parameters: bool = Field(default=True, description="false: SNRM without a parameter field (defaults)")
    retries: int = Field(default=3, ge=0, le=10, description="RR polls for a lost frame before a link recovery")

    @model_validator(mode="after")
    def _one_physical(self):
        if self.physical_address is not None and self.physical_from_serial is not None:
            raise ValueError("give physical_address or physical_from_serial, not both")
        if self.physical_from_serial is not None:
            from smmc_bench.drivers.links.hdlc import physical_address_from_serial
            physical_address_from_serial(self.physical_from_serial)  # raises when it has no digits
        if self.address_size == 1 and self.physical is not None:
            raise ValueError("address_size 1 has no room for a physical address")
        return self

    @property
    def server_logical(self) -> int:
        return self.logical_address

    @property
    def physical(self) -> int | None:
        if self.physical_from_serial is not None:
            from smmc_bench.drivers.links.hdlc import physical_address_from_serial
            return physical_address_from_serial(self.physical_from_serial)
        return self.physical_address

    def _hdlc_describe(self) -> str:
        physical = f"/{self.physical}" if self.physical is not None else ""
        return f"HDLC {self.logical_address}{physical}"


class HdlcTcpLink(_HdlcLink):
    """A serial device server: raw HDLC on a TCP port (pyserial `socket://`)."""

    kind: Literal["hdlc-tcp"] = "hdlc-tcp"
    host: str | None = Field(default=None, min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)

    def _address_keys(self) -> tuple[str, ...]:
        return ("host", "port")

    def describe(self) -> str:
        return f"hdlc-tcp socket://{self.host}:{self.port} {self._hdlc_describe()}"


class SerialLink(_HdlcLink):
    """HDLC on a serial port by pyserial URL: `/dev/ttyUSB0`, `rfc2217://host:port`, `socket://host:port`.
    On an emulated meter, `port` may be left out (a pty) or be a bare `rfc2217://` (an RFC 2217 server)."""

    kind: Literal["serial"] = "serial"
    port: str | None = Field(default=None, min_length=1)
    baudrate: int = Field(default=9600, gt=0)
    echo: bool = Field(default=False, description="the adapter echoes what the bench sends")

    def missing_address(self) -> list[str]:
        return ["port"] if self.port is None or self.port in _EMULATED_SCHEMES else []

    def describe(self) -> str:
        return f"serial {self.port} @{self.baudrate} Bd {self._hdlc_describe()}"


class OpticalLink(_HdlcLink):
    """An optical head: IEC 62056-21 mode E sign-on at 300 Bd, then HDLC at the agreed rate."""

    kind: Literal["optical"] = "optical"
    port: str | None = Field(default=None, min_length=1)
    device_address: str = Field(default="", max_length=32, description="the /?address! of the sign-on")
    max_baud: int = Field(default=19200, description="highest rate the bench accepts from the identification")
    wake_up: bool = Field(default=False, description="send the NUL wake-up sequence first (battery meters)")
    echo: bool = Field(default=False, description="the probe echoes what the bench sends (also during HDLC)")

    def _address_keys(self) -> tuple[str, ...]:
        return ("port",)

    def describe(self) -> str:
        return f"optical {self.port} mode E {self._hdlc_describe()}"


class Rs485Link(_HdlcLink):
    """An RS-485 bus: meters naming the same `bus` share one port, each at its physical address;
    one transaction on the wire at a time."""

    kind: Literal["rs485"] = "rs485"
    bus: str = Field(default="rs485", min_length=1, description="meters naming the same bus share its port")
    port: str | None = Field(default=None, min_length=1)
    baudrate: int = Field(default=9600, gt=0)

    def missing_address(self) -> list[str]:
        missing = ["port"] if self.port is None else []
        if self.physical is None:
            missing.append("physical_address")
        return missing

    def describe(self) -> str:
        return f"rs485 bus {self.bus} {self.port} @{self.baudrate} Bd {self._hdlc_describe()}"


Link = Annotated[Union[TcpWrapperLink, GatewayLink, HdlcTcpLink, SerialLink, OpticalLink, Rs485Link],
                 Field(discriminator="kind")]


def link_label(link: Link) -> str:
    return link.name or link.kind


def is_hdlc(link: Link) -> bool:
    return link.kind in HDLC_KINDS


def hdlc_proposal(link: Link, profile: "LinkProfile | None" = None):
    """The SNRM proposal for `link`: the link's override, else the profile's, else the 62056-46 defaults."""
    from smmc_bench.drivers.links.hdlc import HdlcParameters

    if not link.snrm_parameters:
        return None
    info = link.max_info_length or (profile.hdlc.max_info_length if profile else None) or 128
    window = link.window_size or (profile.hdlc.window_size if profile else None) or 1
    return HdlcParameters.symmetric(info, window)


def open_transport(link: Link, profile: "LinkProfile | None" = None) -> Transport:
    """An unopened transport for `link` (the DLMS session opens and closes it). Every
    transport keeps the link's own wire trace as `.wire_trace`."""
    from smmc_bench.drivers.links.hdlc_transport import HdlcTransport
    from smmc_bench.drivers.links.mode_e import OpticalStream
    from smmc_bench.drivers.links.stream import BusStream, SerialStream, SharedPort
    from smmc_bench.drivers.links.tcp import TracedWrapperTransport

    if isinstance(link, TcpWrapperLink):
        return TracedWrapperTransport(link.host, link.port, connect_timeout=link.connect_timeout)
    if isinstance(link, GatewayLink):
        return TracedWrapperTransport(link.host, link.port, connect_timeout=link.connect_timeout,
                                      gateway=link.gateway)
    trace = FrameTrace()
    if isinstance(link, HdlcTcpLink):
        stream = SerialStream(f"socket://{link.host}:{link.port}", connect_timeout=link.connect_timeout, trace=trace)
    elif isinstance(link, SerialLink):
        stream = SerialStream(link.port, baudrate=link.baudrate, connect_timeout=link.connect_timeout,
                              echo=link.echo, trace=trace)
    elif isinstance(link, OpticalLink):
        stream = OpticalStream(link.port, device_address=link.device_address, max_baud=link.max_baud,
                               wake_up=link.wake_up, connect_timeout=link.connect_timeout, echo=link.echo, trace=trace)
    elif isinstance(link, Rs485Link):
        shared = SharedPort.get(link.port, link.baudrate, link.connect_timeout)
        stream = BusStream(shared, f"bus {link.bus} meter {link.physical}", trace=trace)
    else:
        raise TypeError(f"no transport for link kind {link.kind!r}")
    return HdlcTransport(stream, physical_address=link.physical, address_size=link.address_size,
                         proposal=hdlc_proposal(link, profile), timeout=link.timeout,
                         connect_timeout=link.connect_timeout, retries=link.retries)


# --- bench doctor --------------------------------------------------------------------------

@dataclass
class LinkProbe:
    """What answered on a link: for `bench doctor`."""

    ok: bool
    identification: str | None = None      # mode E identification (optical)
    negotiated_hdlc: str | None = None     # HDLC parameters agreed at SNRM/UA
    diagnosis: str = ""                    # why not, when not ok
    seconds: float = 0.0


def probe_link(link: Link, profile: "LinkProfile | None" = None, client_sap: int = 16) -> LinkProbe:
    """Open `link` at the data-link level only (no association, no credentials): TCP connect,
    or mode E sign-on and SNRM/UA; then close it. Bounded by the link's connect timeout
    (plus its reply timeout for the DISC)."""
    started = time.monotonic()
    transport = open_transport(link, profile)
    try:
        transport.open(client_sap, link.server_logical)
    except DlmsError as exc:
        return LinkProbe(False, diagnosis=exc.diagnosis, seconds=time.monotonic() - started)
    try:
        stream = getattr(transport, "stream", None)
        ident = getattr(stream, "identification", None)
        negotiated = getattr(transport, "negotiated", None)
        return LinkProbe(True, identification=ident.describe() if ident else None,
                         negotiated_hdlc=negotiated.describe() if negotiated else None,
                         seconds=time.monotonic() - started)
    finally:
        transport.close()


# --- the emulated bench ----------------------------------------------------------------

@dataclass
class EmulatedMeterLinks:
    """An emulated meter and the links `bench.toml` declares for it (none: its own TCP wrapper)."""

    meter_id: str
    declared: list[Link]
    emulator: object  # smmc_bench.fixtures.meter.EmulatedMeter, started


@dataclass
class EmulatedLinkServers:
    """Concrete links to the emulated meters, and how to stop what serves them."""

    links: dict[str, list[Link]] = field(default_factory=dict)
    stoppers: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        while self.stoppers:
            try:
                self.stoppers.pop()()
            except Exception:  # noqa: BLE001 - one server failing to stop must not keep the others up
                pass


def _place(members, address_of, first: int, where: str, what: str) -> list:
    """Members of a shared bus or gateway with their addresses: the declared ones, and free
    ones from `first` up for the others; two meters at one address is a configuration error."""
    used = {address_of(link) for _, _, _, link in members if address_of(link) is not None}
    placed = []
    for index, _, meter, link in members:
        address = address_of(link)
        if address is None:
            address = _free(used, first)
            used.add(address)
        placed.append((index, address, meter, link))
    addresses = [address for _, address, _, _ in placed]
    if len(set(addresses)) != len(addresses):
        raise ValueError(f"{where}: two meters at the same {what}")
    return placed


def _free(used: set[int], start: int) -> int:
    return next(n for n in itertools.count(start) if n not in used)


def serve_emulated_links(meters: list[EmulatedMeterLinks], link_mutant: str | None = None, *,
                         pace_baud: int | None = None) -> EmulatedLinkServers:
    """Serve each emulated meter over each link it declares; return the links the bench dials.
    Meters whose links name the same `bus` (rs485) or `gateway` share one; `link_mutant`
    (a name in smmc_bench.fixtures.links.LINK_MUTANTS) plants its defect in every link of its kind."""
    from smmc_bench.fixtures.links import LINK_MUTANTS, behaviour_for
    from smmc_bench.fixtures.links import serve as emulate

    if link_mutant is not None and link_mutant not in LINK_MUTANTS:
        raise ValueError(f"unknown link mutant {link_mutant!r}; known: {', '.join(sorted(LINK_MUTANTS))}")
    servers = EmulatedLinkServers()
    try:
        _serve(meters, link_mutant, pace_baud, servers, behaviour_for, emulate)
    except BaseException:
        servers.stop()
        raise
    return servers


def _serve(meters, link_mutant, pace_baud, servers, behaviour_for, emulate) -> None:
    concrete: dict[str, list[Link | None]] = {}
    buses: dict[str, list[tuple[int, int, EmulatedMeterLinks, Rs485Link]]] = {}
    gateways: dict[str, list[tuple[int, int, EmulatedMeterLinks, GatewayLink]]] = {}
    for meter in meters:
        emulator = meter.emulator
        declared = meter.declared or [TcpWrapperLink()]
        slots: list[Link | None] = [None] * len(declared)
        concrete[meter.meter_id] = slots
        kinds = {link.kind for link in declared}
        bus_link = next((link for link in declared if isinstance(link, Rs485Link)), None)
        port_behaviour = behaviour_for(link_mutant, next(iter(kinds & set(HDLC_KINDS)), "tcp"))
        emulate.prepare_port(emulator, port_behaviour, bus_address=bus_link.physical if bus_link else None)
        for index, link in enumerate(declared):
            behaviour = behaviour_for(link_mutant, link.kind)
            if isinstance(link, TcpWrapperLink):
                host, port = emulator.address
                slots[index] = link.model_copy(update={"host": host, "port": port})
            elif isinstance(link, Rs485Link):
                buses.setdefault(link.bus, []).append((index, 0, meter, link))
            elif isinstance(link, GatewayLink):
                gateways.setdefault(link.gateway, []).append((index, 0, meter, link))
            elif isinstance(link, OpticalLink):
                served = emulate.serve_optical(emulator, ident=emulate.serial_number(emulator),
                                               logical=link.logical_address, physical=link.physical,
                                               device_address=link.device_address, behaviour=behaviour,
                                               pace_baud=pace_baud)
                servers.stoppers.append(served.stop)
                slots[index] = link.model_copy(update={"port": served.address})
            elif isinstance(link, HdlcTcpLink):
                served = emulate.serve_hdlc_tcp(emulator, logical=link.logical_address, physical=link.physical,
                                                behaviour=behaviour, pace_baud=pace_baud)
                servers.stoppers.append(served.stop)
                host, port = served.address.rsplit(":", 1)
                slots[index] = link.model_copy(update={"host": host, "port": int(port)})
            elif isinstance(link, SerialLink):
                if link.port and link.port not in _EMULATED_SCHEMES:
                    raise ValueError(f"emulated meter {meter.meter_id}: serial link port {link.port!r} is a real "
                                     f"port; leave it out (a pty) or write 'rfc2217://' or 'socket://'")
                if link.port == "rfc2217://":
                    served = emulate.serve_rfc2217(emulator, logical=link.logical_address, physical=link.physical,
                                                   behaviour=behaviour, pace_baud=pace_baud)
                    port = served.address
                elif link.port == "socket://":
                    served = emulate.serve_hdlc_tcp(emulator, logical=link.logical_address, physical=link.physical,
                                                    behaviour=behaviour, pace_baud=pace_baud)
                    port = f"socket://{served.address}"
                else:
                    served = emulate.serve_serial(emulator, logical=link.logical_address, physical=link.physical,
                                                  behaviour=behaviour, pace_baud=pace_baud)
                    port = served.address
                servers.stoppers.append(served.stop)
                slots[index] = link.model_copy(update={"port": port})
            else:
                raise TypeError(f"the emulated bench cannot serve link kind {link.kind!r}")

    for name, members in buses.items():
        placed = _place(members, lambda link: link.physical, 0x11, f"bus {name}", "physical address")
        served = emulate.serve_bus([(m.emulator, p, behaviour_for(link_mutant, "rs485")) for _, p, m, _ in placed],
                                   pace_baud=pace_baud)
        servers.stoppers.append(served.stop)
        for index, physical, meter, link in placed:
            emulate.prepare_port(meter.emulator, behaviour_for(link_mutant, "rs485"), bus_address=physical)
            update = {"port": served.address}
            if link.physical is None:
                update["physical_address"] = physical
            concrete[meter.meter_id][index] = link.model_copy(update=update)

    for name, members in gateways.items():
        placed = _place(members, lambda link: link.wport, 1, f"gateway {name}", "wPort")
        behaviour = behaviour_for(link_mutant, "gateway")
        served = emulate.serve_gateway({w: (m.emulator, behaviour) for _, w, m, _ in placed},
                                       first_meter_only=behaviour.gateway_first_meter)
        servers.stoppers.append(served.stop)
        host, port = served.address.rsplit(":", 1)
        for index, wport, meter, link in placed:
            concrete[meter.meter_id][index] = link.model_copy(update={"host": host, "port": int(port), "wport": wport})

    for meter_id, slots in concrete.items():
        servers.links[meter_id] = list(slots)
