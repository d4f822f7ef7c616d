"""`bench.toml`: the station, its meters and the emulator, as pydantic models.

A broken file raises `ConfigError` with one message naming the file, the key
path and the problem; the CLI turns it into exit code 2.
"""
from __future__ import annotations

import os
import tomllib
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from bench.instruments import AcSourceSettings, LoadSettings
from bench.links import Link
from drivers.secret import Secret


class ConfigError(Exception):
    """A configuration file is unusable; the message says where and why."""


class _Strict(BaseModel):
    # Unknown keys are typos more often than not: name them instead of ignoring them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class StationInfo(_Strict):
    station_id: str = Field(min_length=1)
    lab: str = ""
    operator: str = ""


class EmulatorSettings(_Strict):
    enabled: bool = True
    # Seconds the emulated meter's clock starts off the reference, so a clock sync has work to do.
    initial_clock_offset: float = -437.0


class HeadEndSettings(_Strict):
    """Where the bench listens for the meters' pushes, and the address the meters are told to dial."""

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=0, ge=0, le=65535, description="0: any free port")
    advertise: str | None = Field(default=None, pattern=r"^[^:\s]+:\d{1,5}$",
                                  description="host:port written into the meter's push setup")


class Authentication(str, Enum):
    NONE = "none"
    LOW = "low"
    HIGH_GMAC = "high-gmac"


class SecuritySettings(_Strict):
    client_sap: int = Field(default=1, ge=1, le=0x7F)
    authentication: Authentication = Authentication.LOW
    # Secrets are named, never written inline: an env variable or a key file.
    password_env: str | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _one_password_source(self) -> "SecuritySettings":
        sources = [s for s in (self.password_env, self.password_file) if s]
        if len(sources) > 1:
            raise ValueError("give either password_env or password_file, not both")
        if self.authentication is Authentication.LOW and not sources:
            raise ValueError("authentication 'low' needs password_env or password_file")
        return self


class MeterSettings(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    profile: str = Field(min_length=1)
    # An emulated meter is served by the bench itself; its link addresses are filled in at run time.
    emulated: bool = False
    # One link ([meter.link]) or several ([[meter.links]]): the suite runs over each.
    link: Link | None = None
    links: list[Link] = []
    security: SecuritySettings = SecuritySettings(authentication=Authentication.NONE, client_sap=16)

    @model_validator(mode="after")
    def _links(self) -> "MeterSettings":
        if self.link is not None and self.links:
            raise ValueError("give [meter.link] or [[meter.links]], not both")
        if not self.emulated:
            if not self.all_links:
                raise ValueError("a meter that is not emulated needs a [meter.link] table")
            for index, link in enumerate(self.all_links):
                missing = link.missing_address()
                if missing:
                    where = "link" if self.link is not None else f"links[{index}]"
                    raise ValueError(f"{where}: a meter that is not emulated needs {', '.join(missing)}")
        labels = [link.name or link.kind for link in self.all_links]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"links need distinct names; give each a name = ... (repeated: {', '.join(repeated)})")
        return self

    @property
    def all_links(self) -> list[Link]:
        return [self.link] if self.link is not None else list(self.links)

    def target_ids(self) -> list[str]:
        """Test ids for this meter: its id, or id-link for each link when it declares several."""
        declared = self.all_links
        if len(declared) <= 1:
            return [self.id]
        return [f"{self.id}-{link.name or link.kind}" for link in declared]


class BenchConfig(_Strict):
    bench: StationInfo
    emulator: EmulatorSettings = EmulatorSettings()
    meter: list[MeterSettings] = Field(min_length=1)
    ac_source: AcSourceSettings | None = None
    load: LoadSettings | None = None
    head_end: HeadEndSettings | None = None

    # Where the file was read from: relative key-file paths are taken from there.
    _source: Path = PrivateAttr(default=Path("bench.toml"))

    @property
    def source(self) -> Path:
        return self._source

    @model_validator(mode="after")
    def _unique_meter_ids(self) -> "BenchConfig":
        ids = [m.id for m in self.meter]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"meter ids must be unique; repeated: {', '.join(duplicates)}")
        targets = [target for m in self.meter for target in m.target_ids()]
        clashes = sorted({t for t in targets if targets.count(t) > 1})
        if clashes:
            raise ValueError(f"meter/link names clash ({', '.join(clashes)}): a meter id equals another "
                             "meter's id-link name; rename one")
        if any(m.emulated for m in self.meter) and not self.emulator.enabled:
            raise ValueError("a meter is marked emulated but [emulator] enabled = false")
        return self

    def resolve_password(self, meter: MeterSettings) -> Secret | None:
        """The meter's password, from its env variable or key file; a ConfigError names what is missing."""
        security = meter.security
        where = f"{self.source}: meter[{self.meter.index(meter)}].security"
        if security.password_env:
            value = os.environ.get(security.password_env, "")
            if not value:
                raise ConfigError(
                    f"{where}.password_env: environment variable {security.password_env} is not set or empty"
                )
            return Secret(value.encode())
        if security.password_file:
            path = security.password_file
            if not path.is_absolute():
                path = self.source.parent / path
            try:
                value = path.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(f"{where}.password_file: cannot read {path}: {exc.strerror}") from None
            if not value:
                raise ConfigError(f"{where}.password_file: {path} is empty")
            return Secret(value)
        return None


def format_validation_error(source: Path, error: ValidationError) -> str:
    """One line per problem: file, dotted key path (list items as [i]), message."""
    lines = []
    for problem in error.errors():
        path = ""
        previous: object = None
        for part in problem["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif previous == "link" or (isinstance(previous, int) and path.endswith(f"links[{previous}]")):
                pass  # the link kind pydantic picked the model by: not a key the user wrote
            else:
                path += f".{part}" if path else str(part)
            previous = part
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {path or '(top level)'}: {message}")
    return "\n".join(lines)


def read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_bench(path: str | os.PathLike[str]) -> BenchConfig:
    source = Path(path)
    data = read_toml(source)
    try:
        config = BenchConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None
    config._source = source
    return config
