"""The pytest plugin (entry point `smmc_bench`): bench options, fixtures, markers,
verdicts and the run record.

Fixtures: `bench_config`, `bench_station`, `bench_clock`, `meter` (parametrized
over the bench's meters, connected with the meter's security) and `usecase`
(steps and measurements). Markers: `aspect(n)`, `ntd("3-11")`, `feature(name)`.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import allure
import pytest

from bench import instrument_fixtures, link_fixtures, supply_fixtures
from bench.catalogue import ASPECTS
from bench.config import BenchConfig, ConfigError, load_bench
from bench.evidence import UseCase
from bench.record import MeterRecord, RunRecord, TestRecord, Verdict, file_sha256, new_run_id, now_iso, software_identity
from bench.links import link_label
from bench.station import MeterUnderTest, Station, StationMeter, read_identity, target_ids, trace_path
from drivers.dlms import FrameTrace
from drivers.dlms.errors import ConnectFailed, DlmsError, DlmsTimeout, LinkError, ServiceError

MARKERS = (
    "aspect(n): the SMMC aspect (1-15) a conformance test belongs to",
    "ntd(article): the Anexo Tecnico article a conformance test checks, e.g. '3-11'",
    "feature(name): skip unless the meter profile declares this feature",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("smmc-bench")
    group.addoption("--bench", default="bench.toml", help="bench file (default: ./bench.toml)")
    group.addoption("--mutant", default=None, help="serve the emulated meters as this mutant (method validation)")
    group.addoption("--run-dir", default=None, help="where the run record and traces go (default: reports/<run-id>)")


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config.pluginmanager.register(BenchRecorder(config), BenchRecorder.name)
    # Fixtures for links and instruments live beside the drivers they wrap.
    for module in (link_fixtures, instrument_fixtures, supply_fixtures):
        if not config.pluginmanager.is_registered(module):
            config.pluginmanager.register(module)


def recorder_of(config: pytest.Config) -> "BenchRecorder":
    return config.pluginmanager.get_plugin(BenchRecorder.name)


@dataclass
class _TestState:
    verdict: Verdict | None = None
    diagnosis: str = ""
    duration: float = 0.0
    usecase: UseCase | None = None
    trace: str | None = None
    wire_trace: str | None = None


_STATE = pytest.StashKey[_TestState]()


def note_wire_trace(item: pytest.Item, path: Path) -> None:
    """Record where a test's link-level (wire) trace was written, for the run record."""
    item.stash.setdefault(_STATE, _TestState()).wire_trace = str(path)


def diagnose(exc: BaseException) -> str:
    """One line that says what went wrong, for the verdict table and the record."""
    if isinstance(exc, DlmsError):
        return exc.diagnosis
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if isinstance(exc, AssertionError):
        return first or "assertion failed"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def classify(exc: BaseException) -> Verdict:
    """FAIL: the meter did or answered something non-conforming, including a well-framed reply
    whose content breaks the standard (MalformedReply: trailing bytes, inconsistent lengths, a
    wrong type or tag; its bytes are in the trace). ERROR: the bench could not judge: no answer
    at all (DlmsTimeout, LinkClosed, ConnectFailed), a line that keeps corrupting frames after
    retries (LinkOutOfStep), a feature the bench lacks, its own configuration or instruments."""
    from drivers.dlms.errors import MalformedReply  # kept inside: the rest of this module is not this change's

    if isinstance(exc, (AssertionError, ServiceError, MalformedReply)):
        return Verdict.FAIL
    return Verdict.ERROR


class BenchRecorder:
    name = "smmc-bench-recorder"

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        option = config.getoption("run_dir")
        # A run folder chosen by the caller names the run, so folder and record agree.
        self.run_id = Path(option).name if option else new_run_id()
        self.run_dir = Path(option) if option else Path("reports") / self.run_id
        self.started = now_iso()
        self.mutant = config.getoption("mutant")
        self.station: Station | None = None
        self.tests: dict[str, TestRecord] = {}
        self._bench: BenchConfig | None = None
        self._software: dict[str, str] | None = None

    def bench_config(self) -> BenchConfig:
        if self._bench is None:
            try:
                self._bench = load_bench(self.config.getoption("bench"))
            except ConfigError as exc:
                pytest.exit(f"bench configuration error:\n{exc}", returncode=2)
        return self._bench

    # -- collection ---------------------------------------------------------
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "meter" in metafunc.fixturenames:
            ids = [test_id for m in self.bench_config().meter for test_id in target_ids(m)]
            metafunc.parametrize("meter", ids, indirect=True, ids=ids, scope="function")

    # -- verdicts -----------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
        outcome = yield
        report = outcome.get_result()
        if "meter" not in getattr(item, "fixturenames", ()):
            return
        state = item.stash.setdefault(_STATE, _TestState())
        state.duration += call.duration
        exc = call.excinfo.value if call.excinfo else None
        if report.skipped and state.verdict is None:
            state.verdict = Verdict.SKIP
            state.diagnosis = _skip_reason(report)
        elif report.failed and exc is not None:
            if call.when == "call":
                state.verdict, state.diagnosis = classify(exc), diagnose(exc)
            elif state.verdict in (None, Verdict.PASS):
                state.verdict, state.diagnosis = Verdict.ERROR, f"{call.when}: {diagnose(exc)}"
            else:  # the verdict stands; the record still says the bench did not put things back
                state.diagnosis += f"; {call.when}: {diagnose(exc)}"
        elif call.when == "call" and report.passed:
            state.verdict = Verdict.PASS
        if call.when == "teardown":
            record = self._finish(item, state)
            # Written after every test, so an interrupted or killed run keeps what it had judged.
            self.record().write(self.run_dir / "record.json")
            # JUnit consumers see the bench's verdict and its reason beside pytest's outcome.
            report.user_properties += [("verdict", record.verdict.value), ("diagnosis", record.diagnosis)]

    def _finish(self, item: pytest.Item, state: _TestState) -> TestRecord:
        aspect = item.get_closest_marker("aspect")
        article = item.get_closest_marker("ntd")
        callspec = getattr(item, "callspec", None)
        target = self._target(callspec.params.get("meter")) if callspec else None
        evidence = state.usecase.to_jsonable() if state.usecase else {"steps": [], "measurements": []}
        self.tests[item.nodeid] = TestRecord(
            id=item.nodeid,
            name=getattr(item, "originalname", item.name),
            aspect=aspect.args[0] if aspect else None,
            article=article.args[0] if article else None,
            meter=target[0] if target else None,
            link=target[1] if target else None,
            verdict=state.verdict or Verdict.ERROR,
            duration=round(state.duration, 3),
            diagnosis=state.diagnosis,
            trace=state.trace,
            wire_trace=state.wire_trace,
            **evidence,
        )
        return self.tests[item.nodeid]

    def _target(self, test_id: str | None) -> tuple[str, str] | None:
        """(meter id, link label) behind a `meter` parameter such as 'emu-1' or 'emu-1-optical'."""
        if test_id is None or self.station is None:
            return None
        found = self.station.targets().get(test_id)
        if found is None:
            return test_id, ""
        meter, index = found
        declared = meter.settings.all_links
        return meter.id, link_label(declared[index]) if declared else "tcp"

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        for name in ("aspect", "ntd"):
            marker = item.get_closest_marker(name)
            if marker:
                item.user_properties.append((name, str(marker.args[0])))
        aspect = item.get_closest_marker("aspect")
        if aspect and aspect.args[0] in ASPECTS:
            info = ASPECTS[aspect.args[0]]
            allure.dynamic.epic("SMMC conformance")
            allure.dynamic.feature(f"Aspect {info.number}: {info.title}")
            allure.dynamic.label("aspect", str(info.number))
        article = item.get_closest_marker("ntd")
        if article:
            allure.dynamic.tag(f"art. {article.args[0]}")

    # -- the record ---------------------------------------------------------
    def record(self) -> RunRecord:
        if self._software is None:
            self._software = software_identity()
        config = self.bench_config() if self._bench is not None else None
        meters = []
        if self.station is not None:
            for meter in self.station.meters.values():
                meters.append(
                    MeterRecord(
                        id=meter.id, profile=meter.settings.profile, emulated=meter.settings.emulated,
                        links=[link.describe() for link in meter.links],
                        identity=meter.identity, identity_error=meter.identity_error,
                    )
                )
        bench_file = Path(self.config.getoption("bench"))
        return RunRecord(
            run_id=self.run_id,
            started=self.started,
            finished=now_iso(),
            station=config.bench.model_dump() if config else {},
            bench_file=str(bench_file),
            bench_sha256=file_sha256(bench_file),
            mutant=self.mutant,
            software=self._software,
            meters=meters,
            tests=list(self.tests.values()),
        )

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.tests:
            self.record().write(self.run_dir / "record.json")


def _skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr or "")


# -- fixtures -----------------------------------------------------------------
@pytest.fixture(scope="session")
def bench_config(request: pytest.FixtureRequest) -> BenchConfig:
    return recorder_of(request.config).bench_config()


@pytest.fixture(scope="session")
def bench_station(request: pytest.FixtureRequest, bench_config: BenchConfig) -> Iterator[Station]:
    recorder = recorder_of(request.config)
    try:
        station = Station(bench_config, mutant=recorder.mutant)
    except ConfigError as exc:
        pytest.exit(f"bench configuration error:\n{exc}", returncode=2)
    with station:
        recorder.station = station
        for meter in station.meters.values():
            _read_identity(station, meter)
        yield station


def _read_identity(station: Station, meter: StationMeter) -> None:
    trace = FrameTrace()
    try:
        with station.session(meter, trace) as session:
            meter.identity = read_identity(session, meter.profile)
    except DlmsError as exc:
        meter.identity_error = exc.diagnosis
        meter.unreachable = isinstance(exc, (LinkError, DlmsTimeout))


@pytest.fixture(scope="session")
def bench_clock(bench_station: Station):
    return bench_station.clock


@pytest.fixture
def usecase(request: pytest.FixtureRequest) -> UseCase:
    record = UseCase()
    request.node.stash.setdefault(_STATE, _TestState()).usecase = record
    return record


@pytest.fixture
def meter(request: pytest.FixtureRequest, bench_station: Station, usecase: UseCase) -> Iterator[MeterUnderTest]:
    station_meter, link_index = bench_station.targets()[request.param]
    for mark in request.node.iter_markers("feature"):
        feature = mark.args[0]
        if not station_meter.profile.has(feature):
            pytest.skip(f"profile {station_meter.profile.profile.name} does not declare feature '{feature}'")
    if station_meter.unreachable:
        # Waiting out the same link timeout in every test would only repeat what the start of the run found.
        raise ConnectFailed(f"meter {station_meter.id} unreachable since the start of the run: {station_meter.identity_error}")
    trace = FrameTrace()
    session = bench_station.session(station_meter, trace, link_index)
    recorder = recorder_of(request.config)
    try:
        with session:
            yield MeterUnderTest(station_meter, session, station_meter.links[link_index])
    finally:
        path = trace_path(recorder.run_dir, request.param, request.node.name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            trace.write_text(path)
            request.node.stash.setdefault(_STATE, _TestState()).trace = str(path)
            allure.attach.file(str(path), name="DLMS frame trace", attachment_type=allure.attachment_type.TEXT)
        except OSError:
            traceback.print_exc()
