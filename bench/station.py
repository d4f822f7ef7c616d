"""The station: the bench's meters and instruments, real or emulated, brought up
from `bench.toml` and torn down whatever happens.

Emulated meters are real DLMS servers on loopback sockets, reached through the
same driver as hardware; only the link's address differs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.clock import BenchClock, RealClock
from bench.config import BenchConfig, Authentication, MeterSettings, TcpWrapperLink
from bench.cosem import Clock, DisconnectControl, EventLog, Register
from bench.profiles import MeterProfile, load_profile
from drivers.dlms import Authentication as DlmsAuthentication
from drivers.dlms import DlmsSession, FrameTrace, SessionSettings, TcpWrapperTransport
from drivers.secret import Secret
from fixtures.clock import VirtualClock

_AUTHENTICATION = {
    Authentication.NONE: DlmsAuthentication.NONE,
    Authentication.LOW: DlmsAuthentication.LOW,
    Authentication.HIGH_GMAC: DlmsAuthentication.HIGH_GMAC,
}


@dataclass
class StationMeter:
    settings: MeterSettings
    profile: MeterProfile
    password: Secret | None
    link: TcpWrapperLink | None = None
    identity: dict[str, str] = field(default_factory=dict)
    identity_error: str | None = None
    unreachable: bool = False

    @property
    def id(self) -> str:
        return self.settings.id


class Station:
    def __init__(self, config: BenchConfig, mutant: str | None = None) -> None:
        self.config = config
        self.mutant = mutant
        self.meters = {
            m.id: StationMeter(m, load_profile(m.profile, config.source.parent), config.resolve_password(m), m.link)
            for m in config.meter
        }
        emulated = [m for m in self.meters.values() if m.settings.emulated]
        # Virtual time only when every meter is emulated: a real meter lives in real time.
        self._virtual = VirtualClock()
        self.clock: BenchClock = self._virtual if len(emulated) == len(self.meters) else RealClock()
        self._emulators: list = []

    def start(self) -> "Station":
        from fixtures.meter import EmulatedMeter  # the emulator is only loaded on benches that use it

        try:
            for index, meter in enumerate(m for m in self.meters.values() if m.settings.emulated):
                password = meter.password.reveal() if meter.password else b""
                emulator = EmulatedMeter(
                    clock=self._virtual,
                    mutant=self.mutant,
                    serial=f"EMU{index + 1:07d}",
                    lls_password=password,
                    initial_clock_offset=self.config.emulator.initial_clock_offset,
                )
                host, port = emulator.start()
                self._emulators.append(emulator)
                meter.link = TcpWrapperLink(host=host, port=port)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        while self._emulators:
            self._emulators.pop().stop()

    def __enter__(self) -> "Station":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def session(self, meter: StationMeter, trace: FrameTrace, client_sap: int | None = None) -> DlmsSession:
        """An unconnected session to `meter` with its configured security (or another client SAP)."""
        link = meter.link
        assert link is not None, f"meter {meter.id} has no link"
        security = meter.settings.security
        public = client_sap is not None and client_sap != security.client_sap
        settings = SessionSettings(
            client_sap=client_sap or security.client_sap,
            server_logical=link.server_wport,
            authentication=DlmsAuthentication.NONE if public else _AUTHENTICATION[security.authentication],
            password=None if public else meter.password,
            timeout=link.timeout,
        )
        transport = TcpWrapperTransport(link.host, link.port, connect_timeout=link.connect_timeout)
        return DlmsSession(transport, settings, trace=trace)


class MeterUnderTest:
    """What a conformance test holds: the meter's profile and its COSEM objects over one session."""

    def __init__(self, station_meter: StationMeter, session: DlmsSession) -> None:
        self.id = station_meter.id
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
