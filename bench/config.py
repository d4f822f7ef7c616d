"""`bench.toml`: the station, its meters and the emulator, as pydantic models.

A broken file raises `ConfigError` with one message naming the file, the key
path and the problem; the CLI turns it into exit code 2.

Every file (bench and profile) is checked the same way (`validate_document`):
UTF-8 text, valid TOML, every number finite, then the models in pydantic's
strict mode (a port written "27059" or 27059.0, a timeout written true or "5"
are refused, not converted), with bounds on every timeout and limit.
"""
from __future__ import annotations

import json
import math
import os
import tomllib
from datetime import date, datetime, time
from enum import Enum
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from smmc_bench.drivers.secret import Secret
from smmc_bench.instruments import AcSourceSettings, LoadSettings
from smmc_bench.links import Link


class ConfigError(Exception):
    """A configuration file is unusable; the message says where and why."""


class KeyProblem(ValueError):
    """Raised by a model validator about one of the model's keys (or a key below it), so the
    message names that key rather than the table it sits in."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


# The longest a bench waits for one reply or one connection: a cellular modem may take a
# minute to dial, nothing legitimate takes longer, and a typo (1e12) must not hang a lab.
MAX_LINK_TIMEOUT_S = 120.0
# How far the emulated meter's clock may start from the reference (a year either way).
MAX_CLOCK_OFFSET_S = 366 * 86400.0


class _Strict(BaseModel):
    # Unknown keys are typos more often than not: name them instead of ignoring them.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class StationInfo(_Strict):
    station_id: str = Field(min_length=1)
    lab: str = ""
    operator: str = ""


class EmulatorSettings(_Strict):
    enabled: bool = True
    # Seconds the emulated meter's clock starts off the reference, so a clock sync has work to do.
    initial_clock_offset: float = Field(default=-437.0, ge=-MAX_CLOCK_OFFSET_S, le=MAX_CLOCK_OFFSET_S)
    # Which of the encodings the standards allow the emulated meters use (smmc_bench.fixtures.meter.dialect).
    dialect: str = "default"
    # Pace the emulated serial links (HDLC, mode E) at this line rate in real time, as on hardware
    # (None: as fast as the host goes). For timing benchmarks; verdicts do not depend on it.
    pace_baud: int | None = Field(default=None, ge=300, le=115200)

    @field_validator("dialect")
    @classmethod
    def _known_dialect(cls, name: str) -> str:
        from smmc_bench.fixtures.meter.dialect import DIALECTS

        if name not in DIALECTS:
            raise ValueError(f"unknown dialect {name!r}; one of {', '.join(sorted(DIALECTS))}")
        return name


class HeadEndSettings(_Strict):
    """Where the bench listens for the meters' pushes, and the address the meters are told to dial."""

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=0, ge=0, le=65535, description="0: any free port")
    advertise: str | None = Field(default=None, pattern=r"^[^:\s]+:\d{1,5}$",
                                  description="host:port written into the meter's push setup")

    @field_validator("advertise")
    @classmethod
    def _advertised_port(cls, value: str | None) -> str | None:
        if value is not None and not 1 <= int(value.rsplit(":", 1)[1]) <= 65535:
            raise ValueError(f"{value!r}: the port must be 1..65535")
        return value


class Authentication(str, Enum):
    NONE = "none"
    LOW = "low"
    HIGH_GMAC = "high-gmac"


class SecuritySettings(_Strict):
    client_sap: int = Field(default=1, ge=1, le=0x7F)
    authentication: Authentication = Authentication.LOW
    # Secrets are named, never written inline: an env variable or a key file.
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    password_file: Path | None = None
    # HLS-GMAC (authentication = "high-gmac", security suite 0): the authentication key and the
    # global unicast encryption key, each 32 hex digits, from an env variable or a key file only.
    authentication_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    authentication_key_file: Path | None = None
    encryption_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    encryption_key_file: Path | None = None
    # The master key (KEK) that wraps new keys in a global key transfer (IC 64 method 2); without
    # it the key-change test skips.
    master_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    master_key_file: Path | None = None
    system_title: str = Field(default="534D4D4342454E43", pattern=r"^[0-9A-Fa-f]{16}$")  # the bench's, 8 bytes
    ciphering: Literal["glo", "general-glo"] = "glo"
    security_policy: Literal["authenticated-encrypted", "authenticated", "encrypted"] = "authenticated-encrypted"

    @model_validator(mode="after")
    def _one_password_source(self) -> "SecuritySettings":
        sources = [s for s in (self.password_env, self.password_file) if s]
        if len(sources) > 1:
            raise ValueError("give either password_env or password_file, not both")
        for key in ("authentication_key", "encryption_key", "master_key"):
            if getattr(self, f"{key}_env") and getattr(self, f"{key}_file"):
                raise ValueError(f"give either {key}_env or {key}_file, not both")
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
    # The meter's local customer interface I1 (aspect 4), a pyserial URL; the emulator opens its own pty.
    display_port: str | None = Field(default=None, min_length=1)
    # An emulated position with one deliberate non-conformity (a meter mutant), e.g. one bad meter in a rack.
    mutant: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _links(self) -> "MeterSettings":
        security = self.security
        if security.authentication is Authentication.HIGH_GMAC and not self.emulated:
            for key in ("authentication_key", "encryption_key"):
                if not (getattr(security, f"{key}_env") or getattr(security, f"{key}_file")):
                    raise KeyProblem("security", f"authentication 'high-gmac' needs {key}_env or {key}_file "
                                     f"(only an emulated meter may omit them: it uses the emulator's test keys)")
        if security.authentication is Authentication.LOW and not (security.password_env or security.password_file) \
                and not self.emulated:
            raise KeyProblem("security", "authentication 'low' needs password_env or password_file "
                             "(only an emulated meter may omit both: it uses the emulator's test password)")
        if self.link is not None and self.links:
            raise ValueError("give [meter.link] or [[meter.links]], not both")
        if self.mutant is not None and not self.emulated:
            raise KeyProblem("mutant", "only an emulated meter can be a mutant (emulated = true)")
        if not self.emulated:
            if not self.all_links:
                raise ValueError("a meter that is not emulated needs a [meter.link] table")
            for index, link in enumerate(self.all_links):
                missing = link.missing_address()
                if missing:
                    where = "link" if self.link is not None else f"links[{index}]"
                    raise ValueError(f"{where}: a meter that is not emulated needs {', '.join(missing)}")
        labels = [link.name or link.kind for link in self.all_links]
        for index, label in enumerate(labels):
            if label in labels[:index]:
                raise KeyProblem(f"links[{index}].name", f"links need distinct names; give each a name = ... "
                                 f"({label!r} is links[{labels.index(label)}]'s too)")
        for index, link in enumerate(self.all_links):
            where = "link" if self.link is not None else f"links[{index}]"
            for key in ("timeout", "connect_timeout"):
                # smmc_bench.links bounds them below only; above, a typo would hang the run.
                if getattr(link, key) > MAX_LINK_TIMEOUT_S:
                    raise KeyProblem(f"{where}.{key}", f"at most {MAX_LINK_TIMEOUT_S:g} s "
                                     f"(got {getattr(link, key):g})")
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


class StoreSettings(_Strict):
    """The results store (aspect 11). Default: SQLite in the reports folder (results.sqlite)."""

    enabled: bool = True
    # SQLite file, relative to the bench file's folder ...
    path: Path | None = None
    # ... or a database URL (postgresql+psycopg://user@host/db); the password never in the URL.
    url: str | None = Field(default=None, min_length=1)
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="after")
    def _one_place(self) -> "StoreSettings":
        if self.path is not None and self.url is not None:
            raise ValueError("give either path (SQLite) or url, not both")
        if self.url is not None:
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                url = make_url(self.url)
            except ArgumentError:
                raise KeyProblem("url", "not a database URL (e.g. postgresql+psycopg://bench@db.lab/smmc)") from None
            if url.password is not None:
                raise KeyProblem("url", "a password in the URL would end up in logs; name an environment "
                                 "variable in password_env instead")
            if url.get_backend_name() not in ("sqlite", "postgresql"):
                raise KeyProblem("url", f"backend {url.get_backend_name()!r}: use sqlite or postgresql")
        return self


class BenchConfig(_Strict):
    bench: StationInfo
    emulator: EmulatorSettings = EmulatorSettings()
    meter: list[MeterSettings] = Field(min_length=1)
    ac_source: AcSourceSettings | None = None
    load: LoadSettings | None = None
    head_end: HeadEndSettings | None = None
    store: StoreSettings = StoreSettings()

    # Where the file was read from: relative key-file paths are taken from there.
    _source: Path = PrivateAttr(default=Path("bench.toml"))

    @property
    def source(self) -> Path:
        return self._source

    @model_validator(mode="after")
    def _unique_meter_ids(self) -> "BenchConfig":
        ids = [m.id for m in self.meter]
        for index, meter_id in enumerate(ids):
            if meter_id in ids[:index]:
                raise KeyProblem(f"meter[{index}].id", f"meter ids must be unique; {meter_id!r} is meter["
                                 f"{ids.index(meter_id)}]'s too")
        targets = [target for m in self.meter for target in m.target_ids()]
        clashes = sorted({t for t in targets if targets.count(t) > 1})
        if clashes:
            raise ValueError(f"meter/link names clash ({', '.join(clashes)}): a meter id equals another "
                             "meter's id-link name; rename one")
        if any(m.emulated for m in self.meter) and not self.emulator.enabled:
            raise ValueError("a meter is marked emulated but [emulator] enabled = false")
        real = [m.id for m in self.meter if not m.emulated]
        for name, instrument in (("ac_source", self.ac_source), ("load", self.load)):
            # An emulated instrument powers and loads only the emulated meters: beside a real
            # meter it would measure a current that never flowed through it (false verdicts).
            if instrument is not None and instrument.emulated and real:
                what = {"ac_source": "AC source", "load": "load"}[name]
                raise KeyProblem(f"{name}.emulated", f"an emulated {what} cannot serve a real meter "
                                 f"({', '.join(real)}); describe the bench's real {what} instead")
        return self

    def resolve_keys(self, meter: MeterSettings) -> "HlsKeys | None":
        """HLS-GMAC keys of the meter, from env variables or key files (an emulated meter without
        them: the emulator's test keys); None unless authentication is high-gmac. A ConfigError
        names what is missing or malformed, never the key."""
        security = meter.security
        if security.authentication is not Authentication.HIGH_GMAC:
            return None
        from smmc_bench.drivers.dlms.security import POLICIES, HlsKeys, parse_key

        where = f"{self.source}: meter[{self.meter.index(meter)}].security"
        keys: list[Secret | None] = []
        for index, name in enumerate(("authentication_key", "encryption_key", "master_key")):
            env, file = getattr(security, f"{name}_env"), getattr(security, f"{name}_file")
            if env:
                raw, what = os.environ.get(env, "").encode(), f"{where}.{name}_env ({env})"
                if not raw:
                    raise ConfigError(f"{what}: environment variable {env} is not set or empty")
            elif file:
                path = file if file.is_absolute() else self.source.parent / file
                what = f"{where}.{name}_file ({path})"
                try:
                    raw = path.read_bytes()
                except OSError as exc:
                    raise ConfigError(f"{what}: cannot read: {exc.strerror}") from None
                if not raw.strip():
                    raise ConfigError(f"{what}: the file is empty")
            elif meter.emulated:
                from smmc_bench.fixtures.meter import default_hls_keys, default_hls_master_key

                keys.append(Secret((*default_hls_keys(), default_hls_master_key())[index]))
                continue
            elif name == "master_key":  # optional: only the key-change test needs it
                keys.append(None)
                continue
            else:
                raise ConfigError(f"{where}: high-gmac needs {name}_env or {name}_file")
            try:
                keys.append(Secret(parse_key(raw, what)))
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        return HlsKeys(keys[0], keys[1], bytes.fromhex(security.system_title),
                       POLICIES[security.security_policy], security.ciphering == "general-glo", master_key=keys[2])

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
        if meter.emulated and security.authentication is Authentication.LOW:
            # The bench serves this meter itself: it knows the emulator's own test password.
            from smmc_bench.fixtures.meter import default_lls_password

            return Secret(default_lls_password())
        return None


def format_validation_error(source: Path, error: ValidationError) -> str:
    """One line per problem: file, dotted key path (list items as [i]), message."""
    lines = []
    for problem in error.errors():
        cause = (problem.get("ctx") or {}).get("error")
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
        if isinstance(cause, KeyProblem):
            path = f"{path}.{cause.key}" if path else cause.key
        lines.append(f"{source}: {path or '(top level)'}: {message}")
    return "\n".join(lines)


def _key_path(parts: list[str | int]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path


def _walk(data: Any, parts: list[str | int]):
    """(key path, value) of every leaf of a TOML document."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _walk(value, [*parts, key])
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _walk(value, [*parts, index])
    else:
        yield parts, data


def read_toml(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(_not_utf8(path, raw, exc)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _not_utf8(path: Path, raw: bytes, exc: UnicodeDecodeError) -> str:
    """Name the key whose value holds the first byte that is not UTF-8 (else its line)."""
    line = raw.count(b"\n", 0, exc.start) + 1
    what = f"byte 0x{raw[exc.start]:02x} on line {line} is not UTF-8 (TOML files are UTF-8 text; save it as UTF-8)"
    try:
        replaced = tomllib.loads(raw.decode("utf-8", errors="replace"))
    except tomllib.TOMLDecodeError:
        return f"{path}: {what}"
    for parts, value in _walk(replaced, []):
        if isinstance(value, str) and "\ufffd" in value:
            return f"{path}: {_key_path(parts)}: {what}"
    return f"{path}: {what}"


def _check_finite(source: Path, data: dict) -> None:
    """No setting is meaningfully infinite or NaN: refuse them before any model sees them (a
    model that forgot `allow_inf_nan=False` would otherwise take `timeout = inf`)."""
    problems = [f"{source}: {_key_path(parts)}: must be a finite number (got {value})"
                for parts, value in _walk(data, []) if isinstance(value, float) and not math.isfinite(value)]
    if problems:
        raise ConfigError("\n".join(problems))


def _as_json(value: Any) -> str:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a configuration value")


Model = TypeVar("Model", bound=BaseModel)


def validate_document(model: type[Model], source: Path, data: dict) -> Model:
    """`data` (a TOML document read from `source`) as `model`, or a ConfigError naming each bad key.

    Validated as the JSON document it is, in strict mode: strings still name enums and paths,
    but no value changes type on the way ("27059" is not a port, 27059.0 not an integer, true
    not a number)."""
    _check_finite(source, data)
    try:
        return model.model_validate_json(json.dumps(data, default=_as_json), strict=True)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def load_bench(path: str | os.PathLike[str]) -> BenchConfig:
    source = Path(path)
    config = validate_document(BenchConfig, source, read_toml(source))
    config._source = source
    return config
