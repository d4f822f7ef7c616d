"""The run record: one JSON document a lab can archive and sign, with the station,
each meter's identity as read from it, and every test's verdict and measurements."""
from __future__ import annotations

import hashlib
import json
import platform
import secrets
import subprocess
from datetime import datetime, timezone
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_core import to_json


class Verdict(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    SKIP = "SKIP"


class TestRecord(BaseModel):
    __test__ = False  # not a pytest class
    id: str
    name: str
    aspect: int | None = None
    article: str | None = None
    meter: str | None = None
    link: str | None = None
    verdict: Verdict
    duration: float = 0.0
    diagnosis: str = ""
    steps: list[dict[str, Any]] = Field(default_factory=list)
    measurements: list[dict[str, Any]] = Field(default_factory=list)
    series: list[dict[str, Any]] = Field(default_factory=list)  # time series for the report's plots
    # Relative to the run folder (the folder holding record.json), so a moved or archived run still resolves.
    trace: str | None = None  # DLMS frames (APDUs)
    wire_trace: str | None = None  # link-level bytes, per link the test used
    # The meter data the test read (report/meter_data.py): load-profile, event, power-failure and
    # billing rows, each {kind, obis, stamp, values}; bounded, the rows past the bound only counted.
    meter_data: list[dict[str, Any]] = Field(default_factory=list)
    meter_data_dropped: int = 0


class MeterRecord(BaseModel):
    id: str
    profile: str
    # The profile file that held the limits this meter was judged by, and its SHA-256.
    profile_file: str | None = None
    profile_sha256: str | None = None
    emulated: bool
    # The deliberate non-conformity of this emulated position (`mutant =` in its [[meter]]), if any.
    mutant: str | None = None
    links: list[str] = Field(default_factory=list)
    identity: dict[str, str] = Field(default_factory=dict)
    identity_error: str | None = None


SCHEMA_VERSION = "2"


class Outcome(str, Enum):
    """The run as a whole: FAIL where any test found a non-conformity, else ERROR where any test
    could not judge, else PASS; INTERRUPTED before all of that was known; NO_TESTS if nothing ran."""
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    INTERRUPTED = "INTERRUPTED"
    NO_TESTS = "NO_TESTS"


class RunRecord(BaseModel):
    # Bumped when a field changes meaning or goes away (2: outcome, profile hashes, relative paths).
    schema_version: str = SCHEMA_VERSION
    run_id: str
    started: str
    finished: str | None = None
    station: dict[str, str]
    bench_file: str
    bench_sha256: str | None = None
    mutant: str | None = None
    software: dict[str, str] = Field(default_factory=dict)
    meters: list[MeterRecord] = Field(default_factory=list)
    # The AC source and load: *IDN? as read by the run, calibration certificate and dates; a run with
    # an instrument past its calibration due date says so here (`overdue`).
    instruments: list[dict] = Field(default_factory=list)
    instrument_calibration_overdue: bool = False
    # Tests selected for the run; fewer in `tests` means the run did not judge them all.
    collected: int | None = None
    # Stopped by SIGINT/SIGTERM: the verdicts are those judged so far, the test running then
    # is an ERROR "interrupted", and `safe_state` says what the bench found and did afterwards.
    interrupted: bool = False
    interrupted_by: str | None = None
    safe_state: list[str] = Field(default_factory=list)
    tests: list[TestRecord] = Field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {v.value: sum(t.verdict is v for t in self.tests) for v in Verdict}

    @property
    def outcome(self) -> Outcome:
        counts = self.counts()
        if self.interrupted:
            return Outcome.INTERRUPTED
        if counts["FAIL"]:
            return Outcome.FAIL
        if counts["ERROR"]:
            return Outcome.ERROR
        return Outcome.PASS if self.tests else Outcome.NO_TESTS

    @property
    def ok(self) -> bool:
        counts = self.counts()
        return counts["FAIL"] == 0 and counts["ERROR"] == 0

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.model_dump(mode="json")
        data["outcome"] = self.outcome.value
        data["summary"] = self.counts()
        tmp = path.with_suffix(path.suffix + ".tmp")
        # pydantic_core's encoder: json.dumps with indent runs in pure Python, seconds for a 32-position rack.
        tmp.write_bytes(to_json(data, indent=2))
        tmp.replace(path)  # a reader never sees half a record

    @classmethod
    def read(cls, path: Path) -> "RunRecord":
        data = json.loads(path.read_text())
        data.pop("summary", None)
        data.pop("outcome", None)
        return cls.model_validate(data)


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def file_sha256(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def software_identity() -> dict[str, str]:
    info = {"python": platform.python_version()}
    for dist in ("smmc-bench", "gurux-dlms", "dlms-cosem"):
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = "not installed"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        if sha:
            info["git"] = sha
            # A run from uncommitted code cannot be reproduced from the commit alone.
            status = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                timeout=5, cwd=Path(__file__).resolve().parent,
            )
            if status.returncode == 0:
                info["git_dirty"] = "true" if status.stdout.strip() else "false"
    except (OSError, subprocess.SubprocessError):
        pass
    return info
