"""The station: the bench's meters and instruments, real or emulated, brought up
from `bench.toml` and torn down whatever happens.

Emulated meters are real DLMS servers on loopback sockets, reached through the
same driver as hardware; only the link's address differs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from smmc_bench.clock import BenchClock, RealClock
from smmc_bench.config import Authentication, BenchConfig, ConfigError, MeterSettings
from smmc_bench.cosem.clock import Clock
from smmc_bench.cosem.disconnect import DisconnectControl
from smmc_bench.cosem.event_log import EventLog
from smmc_bench.cosem.register import Register
from smmc_bench.drivers.dlms import Authentication as DlmsAuthentication
from smmc_bench.drivers.dlms import DlmsSession, FrameTrace, SessionSettings
from smmc_bench.drivers.dlms.security import MeterCounterMemory
from smmc_bench.drivers.secret import Secret
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.instruments import EmulatedInstruments, serve_emulated_instruments
from smmc_bench.links import (
    EmulatedLinkServers,
    EmulatedMeterLinks,
    Link,
    open_transport,
    serve_emulated_links,
)
from smmc_bench.profile.meter import MeterProfile, load_profile, profile_path

_AUTHENTICATION = {
    Authentication.NONE: DlmsAuthentication.NONE,
    Authentication.LOW: DlmsAuthentication.LOW,
    Authentication.HIGH_GMAC: DlmsAuthentication.HIGH_GMAC,
}


@dataclass(frozen=True)
class MutantInfo:
    name: str
    description: str
    aspect: int
    # Link kinds a link mutant lives on ("*": every link); empty for a meter mutant.
    link_kinds: tuple[str, ...] = ()
    # The management-client security a meter mutant lives in ("hls-gmac"); None: any.
    management_security: str | None = None


def known_mutants() -> dict[str, MutantInfo]:
    """Every mutant the emulated bench can serve: meter mutants and link mutants."""
    from smmc_bench.fixtures.links import LINK_MUTANTS
    from smmc_bench.fixtures.meter import MUTANTS

    found = {m.name: MutantInfo(m.name, m.description, m.aspect, management_security=m.management_security)
             for m in MUTANTS.values()}
    found.update({m.name: MutantInfo(m.name, m.description, m.aspect, tuple(m.kinds)) for m in LINK_MUTANTS.values()})
    return found


def bench_management_security(config: BenchConfig) -> set[str]:
    """How the bench's emulated meters secure their management client ("lls", "hls-gmac")."""
    return {"hls-gmac" if m.security.authentication is Authentication.HIGH_GMAC else "lls"
            for m in config.meter if m.emulated}


def bench_link_kinds(config: BenchConfig) -> set[str]:
    """The link kinds a bench dials (an emulated meter without links is reached over TCP)."""
    return {link.kind for meter in config.meter for link in meter.all_links or [None] if link} | (
        {"tcp"} if any(m.emulated and not m.all_links for m in config.meter) else set())


def _emulated_security(meter: "StationMeter") -> dict:
    """How the emulated meter secures its management client: as the bench's [meter.security] says."""
    if meter.keys is None:
        return {}
    return {"management_security": "hls-gmac",
            "hls_keys": (meter.keys.authentication_key.reveal(), meter.keys.encryption_key.reveal()),
            "hls_master_key": meter.keys.master_key.reveal() if meter.keys.master_key is not None else None}


def target_ids(settings: MeterSettings) -> list[str]:
    return settings.target_ids()


@dataclass
class StationMeter:
    settings: MeterSettings
    profile: MeterProfile
    password: Secret | None
    keys: "HlsKeys | None" = None  # HLS-GMAC keys (smmc_bench.drivers.dlms.security), when configured
    # HLS-GMAC: the meter's invocation counters over every association the bench makes with it (they
    # must keep rising across associations with the same keys), shared by every session to it.
    counter_memory: MeterCounterMemory = field(default_factory=MeterCounterMemory, repr=False)
    # The links the bench dials (for an emulated meter, known once its servers run).
    links: list[Link] = field(default_factory=list)
    identity: dict[str, str] = field(default_factory=dict)
    identity_error: str | None = None
    unreachable: bool = False
    profile_file: Path | None = None  # the file the limits came from (record: path and SHA-256)

    @property
    def id(self) -> str:
        return self.settings.id

    def link_ids(self) -> list[str]:
        return target_ids(self.settings)


def _profile_of(config: BenchConfig, index: int) -> MeterProfile:
    """The meter's profile; a missing or broken one is named by the bench key that points at it."""
    try:
        return load_profile(config.meter[index].profile, config.source.parent)
    except ConfigError as exc:
        raise ConfigError(f"{config.source}: meter[{index}].profile:\n{exc}") from None


class Station:
    def __init__(self, config: BenchConfig, mutant: str | None = None, serve_only: set[str] | None = None) -> None:
        self.config = config
        self.mutant = mutant
        self.serve_only = serve_only  # emulated meters to serve (None: all); a parallel worker serves its own
        self.meters = {
            m.id: StationMeter(m, _profile_of(config, index), config.resolve_password(m), config.resolve_keys(m),
                               links=[] if m.emulated else m.all_links,
                               profile_file=profile_path(m.profile, config.source.parent).resolve())
            for index, m in enumerate(config.meter)
        }
        emulated = [m for m in self.meters.values() if m.settings.emulated]
        # Virtual time only when every meter is emulated: a real meter lives in real time.
        self._virtual = VirtualClock()
        self.clock: BenchClock = self._virtual if len(emulated) == len(self.meters) else RealClock()
        self._emulators: dict[str, object] = {}  # meter id -> smmc_bench.fixtures.meter.EmulatedMeter
        self._load_position: str | None = None  # the emulated meter the load hangs on (None: the first)
        self._link_servers: EmulatedLinkServers | None = None
        # The instruments the tests drive; emulated ones are rewritten to their servers by start().
        self.instruments = EmulatedInstruments(ac_source=config.ac_source, load=config.load)

    def start(self) -> "Station":
        from smmc_bench.fixtures.meter import (
            EmulatedMeter,  # the emulator is only loaded on benches that use it
        )

        try:
            mutant = known_mutants().get(self.mutant) if self.mutant else None
            if self.mutant and mutant is None:
                raise ValueError(f"unknown mutant {self.mutant!r}")
            meter_mutant = mutant.name if mutant and not mutant.link_kinds else None
            link_mutant = mutant.name if mutant and mutant.link_kinds else None
            served = []
            for index, meter in enumerate(m for m in self.meters.values() if m.settings.emulated):
                if self.serve_only is not None and meter.id not in self.serve_only:
                    continue
                own = known_mutants().get(meter.settings.mutant) if meter.settings.mutant else None
                if meter.settings.mutant and (own is None or own.link_kinds):
                    raise ValueError(f"meter {meter.id}: unknown meter mutant {meter.settings.mutant!r}"
                                     + (" (a link mutant applies to the whole bench: --mutant)" if own else ""))
                password = meter.password.reveal() if meter.password else b""
                emulator = EmulatedMeter(
                    clock=self._virtual,
                    mutant=own.name if own else meter_mutant,
                    serial=f"EMU{index + 1:07d}",
                    lls_password=password,
                    initial_clock_offset=self.config.emulator.initial_clock_offset,
                    # [emulator] dialect: which encodings the standards allow the emulator uses
                    dialect=self.config.emulator.dialect,
                    **_emulated_security(meter),
                )
                emulator.start()
                self._emulators[meter.id] = emulator
                served.append(EmulatedMeterLinks(meter.id, meter.settings.all_links, emulator))
            self._link_servers = serve_emulated_links(served, link_mutant=link_mutant,
                                                       pace_baud=self.config.emulator.pace_baud)
            for meter_id, links in self._link_servers.links.items():
                self.meters[meter_id].links = links
            self._serve_instruments()
        except BaseException:
            self.stop()
            raise
        return self

    def _serve_instruments(self) -> None:
        """Emulated instruments are wired to the emulated meters as on a real bench: the source
        feeds every meter, the load hangs on the first meter's output."""
        meters = list(self._emulators.values())

        def supply(volts: float, hertz: float) -> None:
            for meter in meters:
                meter.set_supply(volts, hertz)

        def demand(amps: float) -> None:
            # The emulated rack has a load behind every position, switched to the meter under test.
            target = self._emulators.get(self._load_position) if self._load_position else None
            for meter in meters:
                meter.set_load_demand(amps if meter is (target or meters[0]) else 0.0)

        self.instruments = serve_emulated_instruments(
            self.config.ac_source, self.config.load, self._virtual,
            on_supply=supply,
            measured_current=lambda: sum(meter.load_current_a() for meter in meters),
            on_demand=demand,
            load_current=(lambda: self._loaded_meter().load_current_a()) if meters else None,
        )

    def _loaded_meter(self):
        return self._emulators.get(self._load_position) or next(iter(self._emulators.values()))

    def switch_load_to(self, meter_id: str) -> None:
        """On the emulated bench, the load follows the meter under test (one load per rack position)."""
        if meter_id in self._emulators:
            self._load_position = meter_id

    def stop(self) -> None:
        self.instruments.stop()
        if self._link_servers is not None:
            self._link_servers.stop()
            self._link_servers = None
        while self._emulators:
            self._emulators.popitem()[1].stop()

    def __enter__(self) -> "Station":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def emulator(self, meter_id: str):
        """The emulated meter behind `meter_id` (for emulated-only actions such as its button), or None."""
        return self._emulators.get(meter_id)

    def targets(self) -> dict[str, tuple[StationMeter, int]]:
        """Every (meter, link) the suite runs over, by test id."""
        return {
            test_id: (meter, index)
            for meter in self.meters.values()
            for index, test_id in enumerate(meter.link_ids())
        }

    def session(self, meter: StationMeter, trace: FrameTrace, link_index: int = 0,
                client_sap: int | None = None) -> DlmsSession:
        """An unconnected session to `meter` over one of its links, with its configured security
        (or as another client SAP, without authentication)."""
        if link_index >= len(meter.links):
            raise ConfigError(f"meter {meter.id}: not served by this process (another worker of the run serves it)"
                              if self.serve_only is not None and meter.id not in self.serve_only
                              else f"meter {meter.id}: no link {link_index}")
        link = meter.links[link_index]
        security = meter.settings.security
        public = client_sap is not None and client_sap != security.client_sap
        settings = SessionSettings(
            client_sap=client_sap or security.client_sap,
            server_logical=link.server_logical,
            authentication=DlmsAuthentication.NONE if public else _AUTHENTICATION[security.authentication],
            password=None if public else meter.password,
            keys=None if public else meter.keys,
            timeout=link.timeout,
            counter_memory=meter.counter_memory,
        )
        return DlmsSession(open_transport(link, meter.profile.links), settings, trace=trace)


class MeterUnderTest:
    """What a conformance test holds: the meter's profile and its COSEM objects over one session."""

    def __init__(self, station_meter: StationMeter, session: DlmsSession, link: Link) -> None:
        self.id = station_meter.id
        self.station_meter = station_meter
        self.link = link
        self.profile = station_meter.profile
        self.session = session
        objects = self.profile.objects
        self.clock = Clock(session, objects.clock)
        self.disconnect_control = DisconnectControl(session, objects.disconnect_control)
        self.active_energy_import = Register(session, objects.active_energy_import)
        self.standard_event_log = EventLog(session, objects.standard_event_log)
        self.disconnector_event_log = EventLog(session, objects.disconnector_event_log)

    @property
    def limits(self):
        return self.profile.limits

    @property
    def events(self):
        return self.profile.events


def read_identity(session: DlmsSession, profile: MeterProfile) -> dict[str, str]:
    """The meter's identity as it reports it (logical device name, serial, firmware)."""
    identity = {}
    for name in ("logical_device_name", "serial_number", "firmware_id"):
        value = session.get(1, getattr(profile.objects, name), 2)
        identity[name] = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    return identity


def trace_path(run_dir: Path, meter_id: str, test_name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in test_name)
    return run_dir / "traces" / meter_id / f"{safe}.txt"
