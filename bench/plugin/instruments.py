"""pytest fixtures for the bench's instruments (registered by smmc_bench.plugin.session once a bench is asked for).

- `ac_source`: the AC source driver (`smmc_bench.drivers.instruments.AcSource`), opened once
  per session from the station's instrument settings and held in a
  `SafeStateGuard` for the whole session (nominal voltage and frequency, output
  on, restored at the end, after an exception, on Ctrl-C and on SIGTERM); after
  each test that used it, it is put back in the safe state.
- `load`: the load driver (`smmc_bench.drivers.instruments.Load`), opened once per session;
  switched off after each test that used it and at the end.

Both read `bench_station.instruments` (`.ac_source` / `.load` settings, already
pointing at the emulators on the emulated bench) and skip, saying why, when the
bench has no such instrument.
"""
from __future__ import annotations

import logging
from typing import Iterator

import pytest
from smmc_bench.drivers.instruments import (
    AcSource,
    InstrumentError,
    Load,
    SafeStateGuard,
)
from smmc_bench.drivers.locks import ResourceLock
from smmc_bench.instruments import lock_name, open_ac_source, open_load
from smmc_bench.plugin.recorder import recorder_of

log = logging.getLogger(__name__)


def _settings(request: pytest.FixtureRequest, name: str):
    station = request.getfixturevalue("bench_station")
    instruments = getattr(station, "instruments", None)
    return getattr(instruments, name, None) if instruments is not None else None


def _note_identity(request: pytest.FixtureRequest, name: str, driver) -> None:
    """The instrument's *IDN? for the run record, beside its calibration data."""

    recorder = recorder_of(request.config)
    if recorder is not None:
        recorder.instrument_ids[name] = getattr(driver, "identification", None) or ""


@pytest.fixture(scope="session")
def _ac_source_guard(request: pytest.FixtureRequest) -> Iterator[SafeStateGuard]:
    settings = _settings(request, "ac_source")
    if settings is None:
        pytest.skip("the bench has no AC source ([ac_source] in bench.toml)")
    source = open_ac_source(settings)
    _note_identity(request, "AC source", source)
    try:
        guard = SafeStateGuard(source)
        with guard:
            guard.restore()  # start every run from the same place
            yield guard
    finally:
        source.close()


@pytest.fixture
def ac_source(request: pytest.FixtureRequest, _ac_source_guard: SafeStateGuard) -> Iterator[AcSource]:
    try:
        yield _ac_source_guard.source
    finally:
        _ac_source_guard.restore()  # a Ctrl-C meanwhile waits until the source is safe
        _meter_answering_again(request)


def _meter_answering_again(request: pytest.FixtureRequest) -> None:
    """A supply test can leave its meter still booting: wait for it with a restore's patience, so the
    next test finds it answering (the restart time itself is judged by the test, not here)."""
    if "meter" not in request.fixturenames:
        return
    from smmc_bench.drivers.dlms.errors import DlmsError
    from smmc_bench.procedures import reassociate_for_restore

    meter = request.getfixturevalue("meter")
    if meter.session.is_associated:
        return
    try:
        reassociate_for_restore(meter.session, request.getfixturevalue("bench_clock"),
                                meter.profile.supply.limits.restart_time.value)
    except DlmsError as exc:
        log.warning("meter %s not answering after the supply test: %s", meter.id, exc.diagnosis)


@pytest.fixture(scope="session")
def _load_session(request: pytest.FixtureRequest) -> Iterator[Load]:
    settings = _settings(request, "load")
    if settings is None:
        pytest.skip("the bench has no load ([load] in bench.toml)")
    driver = open_load(settings)
    _note_identity(request, "load", driver)
    try:
        driver.off()
        yield driver
    finally:
        try:
            driver.off()
        except InstrumentError as exc:
            log.error("load not switched off at the end of the session: %s", exc.diagnosis)
        driver.close()


@pytest.fixture
def load(request: pytest.FixtureRequest, _load_session: Load) -> Iterator[Load]:
    # One test at a time drives the load, whatever the workers or runs on the station.
    with ResourceLock(lock_name("load", _settings(request, "load"))):
        try:
            yield _load_session
        finally:
            _load_session.off()
