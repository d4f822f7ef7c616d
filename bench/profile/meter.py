"""Meter profiles: what a meter model implements (features, OBIS codes, event codes)
and the figures it is judged by (limits, each with the Anexo article it stands for).

A profile is a TOML file; `bench.toml` names it by file name (looked up in
`bench/profiles/`) or by path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from smmc_bench.config import ConfigError, KeyProblem, read_toml, validate_document
from smmc_bench.profile.base import Limit, ObisCode, StrictModel
from smmc_bench.profile.customer import CustomerProfile
from smmc_bench.profile.display import DISPLAY_FEATURES, DisplayProfile
from smmc_bench.profile.firmware import FIRMWARE_FEATURES, FirmwareProfile
from smmc_bench.profile.links import LINK_FEATURES, LinkProfile
from smmc_bench.profile.readings import READINGS_FEATURES, ReadingsProfile
from smmc_bench.profile.security import SECURITY_FEATURES, SecurityProfile
from smmc_bench.profile.supply import SUPPLY_FEATURES, SupplyProfile
from smmc_bench.profile.tariffs import TARIFF_FEATURES, TariffProfile

BUILTIN_PROFILES = Path(__file__).resolve().parents[1] / "profiles"

CORE_FEATURES = (
    "disconnector",
    "clock_shift_time",
    "clock_adjust_to_quarter",
    "limiter",
    "image_transfer",
    "load_profile",
)
KNOWN_FEATURES = frozenset(CORE_FEATURES + LINK_FEATURES + SUPPLY_FEATURES + DISPLAY_FEATURES + TARIFF_FEATURES
                           + READINGS_FEATURES + FIRMWARE_FEATURES + SECURITY_FEATURES)



class ProfileInfo(StrictModel):
    name: str
    description: str = ""
    maker: str = ""
    model: str = ""


class Clients(StrictModel):
    management_sap: int = Field(default=1, ge=1, le=0x7F)
    public_sap: int = Field(default=16, ge=1, le=0x7F)


class Objects(StrictModel):
    association: ObisCode = "0.0.40.0.0.255"
    logical_device_name: ObisCode = "0.0.42.0.0.255"
    serial_number: ObisCode = "0.0.96.1.0.255"
    firmware_id: ObisCode = "1.0.0.2.0.255"
    clock: ObisCode = "0.0.1.0.0.255"
    active_energy_import: ObisCode = "1.0.1.8.0.255"
    disconnect_control: ObisCode = "0.0.96.3.10.255"
    standard_event_log: ObisCode = "0.0.99.98.0.255"
    disconnector_event_log: ObisCode = "0.0.99.98.2.255"



EventCode = Annotated[int, Field(ge=0, le=255)]  # an event object's value is an unsigned


class EventCodes(StrictModel):
    clock_adjusted_old_time: EventCode = 4
    clock_adjusted_new_time: EventCode = 5
    remote_disconnect: EventCode = 62
    remote_reconnect: EventCode = 63


class Disconnector(StrictModel):
    control_modes: list[int] = Field(default=[1], min_length=1)

    @field_validator("control_modes")
    @classmethod
    def _modes(cls, modes: list[int]) -> list[int]:
        bad = [m for m in modes if not 0 <= m <= 6]
        if bad:
            raise ValueError(f"control modes are 0..6 (IEC 62056-6-2 IC 70); got {bad}")
        return modes


class Limits(StrictModel):
    clock_sync_tolerance: Limit
    clock_desync_offset: Limit
    clock_shift_step: Limit
    clock_shift_tolerance: Limit
    event_timestamp_tolerance: Limit
    disconnect_operation_time: Limit
    disconnected_observation_time: Limit
    energy_while_disconnected: Limit
    # Free run (art. 3-11): how long the bench leaves the clock alone, and the deviation it may gain.
    clock_free_run_duration: Limit = Limit(
        value=86400.0, unit="s", article="3-11", provisional=True,
        note="time the clock runs unsynchronised while the bench watches its drift")
    clock_free_run_drift: Limit = Limit(
        value=2.0, unit="s", article="3-11", provisional=True,
        note="largest deviation gained over the free-run time (IEC 62054-21: 0.5 s/day at reference "
             "conditions, plus the 1 s resolution of clock.time)")

    @model_validator(mode="after")
    def _clock_figures(self) -> "Limits":
        # IC 8 shift_time takes a long of -900..900 s; a zero shift or desync shows nothing.
        for name, low, high in (("clock_shift_step", 0.0, 900.0), ("clock_desync_offset", 0.0, 86400.0)):
            value = getattr(self, name).value
            if not low < value <= high:
                raise KeyProblem(f"{name}.value", f"must be more than {low:g} and at most {high:g} s (got {value:g})")
        return self


class MeterProfile(StrictModel):
    profile: ProfileInfo
    features: dict[str, bool] = {}
    clients: Clients = Clients()
    objects: Objects = Objects()
    events: EventCodes = EventCodes()
    disconnector: Disconnector = Disconnector()
    limits: Limits
    # Sections owned by the link and supply-side tests (their own modules say what they hold).
    links: LinkProfile = LinkProfile()
    supply: SupplyProfile = SupplyProfile()
    display: DisplayProfile = DisplayProfile()  # I1, aspect 4 (smmc_bench.profile.display)
    tariffs: TariffProfile = TariffProfile()  # aspect 8 (smmc_bench.profile.tariffs)
    customer: CustomerProfile = CustomerProfile()  # aspect 3 (smmc_bench.profile.customer)
    readings: ReadingsProfile = ReadingsProfile()  # aspects 2, 10 and 12 (smmc_bench.profile.readings)
    firmware: FirmwareProfile = FirmwareProfile()  # aspect 9 (smmc_bench.profile.firmware)
    security: SecurityProfile = SecurityProfile()  # HLS-GMAC failures, aspect 1 (smmc_bench.profile.security)

    @field_validator("features")
    @classmethod
    def _known_features(cls, features: dict[str, bool]) -> dict[str, bool]:
        unknown = sorted(set(features) - KNOWN_FEATURES)
        if unknown:
            raise ValueError(f"unknown feature(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_FEATURES))}")
        return features

    def has(self, feature: str) -> bool:
        return self.features.get(feature, False)


def profile_path(name_or_path: str, relative_to: Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or "/" in name_or_path:
        return candidate if candidate.is_absolute() else relative_to / candidate
    return BUILTIN_PROFILES / f"{name_or_path}.toml"


# (resolved path, mtime, size) -> the profile read from it. A rack names one profile for dozens of
# positions and the bench reads it for each: parsing the TOML again each time was, on a 32-position
# rack, a fifth of every worker's CPU. An edited file has another key, so it is read again.
_PROFILES: dict[tuple[Path, int, int], MeterProfile] = {}


def load_profile(name_or_path: str, relative_to: Path = Path(".")) -> MeterProfile:
    path = profile_path(name_or_path, relative_to)
    try:
        stat = path.stat()
    except OSError:
        known = ", ".join(sorted(p.stem for p in BUILTIN_PROFILES.glob("*.toml")))
        raise ConfigError(f"{path}: meter profile not found (built-in profiles: {known})") from None
    key = (path.resolve(), stat.st_mtime_ns, stat.st_size)
    if key not in _PROFILES:
        _PROFILES[key] = validate_document(MeterProfile, path, read_toml(path))
    return _PROFILES[key]  # frozen (StrictModel): the meters that name one file can share it
