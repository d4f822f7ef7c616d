"""The bench's pytest session, registered by the plugin (smmc_bench.plugin) once a session
asks for a bench: markers, the recorder (verdicts and the run record) and the fixtures.

Fixtures: `bench_config`, `bench_station`, `bench_clock`, `meter` (parametrized
over the bench's meters, connected with the meter's security) and `usecase`
(steps and measurements). Markers: `smmc_aspect(n)`, `smmc_ntd("3-11")`, `smmc_feature(name)`.

A bad bench file or profile, or an unknown mutant, is one usage error (exit 2)
before anything runs. SIGINT and SIGTERM stop the run the same way under
`pytest --smmc-bench` as under `bench run` (smmc_bench.safety.interrupt): the test running then is
an ERROR "interrupted", every fixture is torn down, the bench's safe state is read
back (smmc_bench.safety.safe_state), the record says `interrupted`, and pytest exits 130.
"""
from __future__ import annotations

import contextlib
import traceback
from typing import Iterator

import pytest
from smmc_bench.clock import RealClock
from smmc_bench.config import BenchConfig, ConfigError
from smmc_bench.drivers.dlms import FrameTrace
from smmc_bench.drivers.dlms.errors import (
    ConnectFailed,
    DlmsError,
    DlmsTimeout,
    LinkError,
)
from smmc_bench.drivers.locks import ResourceLock
from smmc_bench.instruments import lock_name
from smmc_bench.plugin import display, instruments, links, parallel, rack_supply, supply, tariffs
from smmc_bench.plugin.recorder import _STATE, BenchRecorder, _TestState, recorder_of
from smmc_bench.report.evidence import UseCase
from smmc_bench.safety.safe_state import check_safe_state
from smmc_bench.station import (
    MeterUnderTest,
    Station,
    StationMeter,
    read_identity,
    trace_path,
)

MARKERS = (
    "smmc_aspect(n): the SMMC aspect (1-15) a conformance test belongs to; select with -m 'smmc_aspect(n=13)'",
    "smmc_ntd(article): the Anexo Tecnico article a test checks, e.g. '3-11'; select with -m \"smmc_ntd(article='3-11')\"",
    "smmc_feature(name): skip unless the meter profile declares this feature",
    "smmc_fills_logs: the test floods the meter's logs (e.g. dozens of clock sets); runs after the others, "
    "whose evidence (entries_in_use before a log first fills) it would otherwise mask",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    config.pluginmanager.register(BenchRecorder(config), BenchRecorder.name)
    for module in (links, instruments, supply, rack_supply, display, tariffs):
        if not config.pluginmanager.is_registered(module):
            config.pluginmanager.register(module)


# -- fixtures -----------------------------------------------------------------
@pytest.fixture(scope="session")
def bench_config(request: pytest.FixtureRequest) -> BenchConfig:
    return recorder_of(request.config).bench_config()


@pytest.fixture(scope="session")
def bench_station(request: pytest.FixtureRequest, bench_config: BenchConfig) -> Iterator[Station]:
    recorder = recorder_of(request.config)
    try:
        # A worker of a parallel run serves only the emulated positions it runs.
        serve_only = parallel.owned_positions(request.config, bench_config.meter)
        station = Station(bench_config, mutant=recorder.mutant, serve_only=serve_only)
    except ConfigError as exc:
        pytest.exit(f"bench configuration error\n{exc}", returncode=2)
    if isinstance(station.clock, RealClock):
        station.clock.progress_every = request.config.getoption("smmc_progress_every")
        station.clock.report = recorder.progress_line
        station.clock.activity = recorder.activity
    with station:
        recorder.station = station
        try:
            for meter in station.meters.values():
                if meter.links:  # positions another worker serves have none here
                    _read_identity(station, meter)
            yield station
        finally:
            if recorder.interrupt.interrupted:
                # Every other fixture is down (each put its device back): read the devices back.
                recorder.safe_state += check_safe_state(station)


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


def supply_lock(request: pytest.FixtureRequest, station: Station):
    """Every meter on a bench's AC source is powered by it: a test that cuts the supply must have it
    alone (exclusive), any other test of a powered meter shares it, across workers and runs."""
    source = station.instruments.ac_source
    if source is None:
        return contextlib.nullcontext()
    return ResourceLock(lock_name("ac_source", source), shared="ac_source" not in request.fixturenames)


@pytest.fixture
def meter(request: pytest.FixtureRequest, bench_station: Station, usecase: UseCase) -> Iterator[MeterUnderTest]:
    station_meter, link_index = bench_station.targets()[request.param]
    for mark in request.node.iter_markers("smmc_feature"):
        feature = mark.args[0]
        if not station_meter.profile.has(feature):
            pytest.skip(f"profile {station_meter.profile.profile.name} does not declare feature '{feature}'")
    if station_meter.unreachable:
        # Waiting out the same link timeout in every test would only repeat what the start of the run found.
        raise ConnectFailed(f"meter {station_meter.id} unreachable since the start of the run: {station_meter.identity_error}")
    bench_station.switch_load_to(station_meter.id)
    trace = FrameTrace()
    session = bench_station.session(station_meter, trace, link_index)
    recorder = recorder_of(request.config)
    try:
        with supply_lock(request, bench_station), session:
            yield MeterUnderTest(station_meter, session, station_meter.links[link_index])
    finally:
        path = trace_path(recorder.run_dir, request.param, request.node.name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            trace.write_text(path)
            request.node.stash.setdefault(_STATE, _TestState()).trace = str(path)  # attached by the recorder
        except OSError:
            traceback.print_exc()
