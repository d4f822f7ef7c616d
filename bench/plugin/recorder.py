"""The bench's recorder: a pytest plugin object that turns each test's outcome into a verdict with
a diagnosis, writes live verdicts, the run record and traces, and handles an interrupted run."""
from __future__ import annotations

import contextlib
import gc
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import allure
import pytest
from smmc_bench.catalogue import ASPECTS
from smmc_bench.clock import RealClock
from smmc_bench.config import BenchConfig, ConfigError, load_bench
from smmc_bench.drivers.dlms.errors import (
    DlmsError,
    MalformedReply,
    SecurityFailure,
    ServiceError,
)
from smmc_bench.links import link_label
from smmc_bench.plugin import bench_file, forkserver, parallel
from smmc_bench.report import allure_results, junit, meter_data
from smmc_bench.report.evidence import UseCase
from smmc_bench.report.record import (
    MeterRecord,
    RunRecord,
    TestRecord,
    Verdict,
    file_sha256,
    new_run_id,
    now_iso,
    software_identity,
)
from smmc_bench.safety.interrupt import RUN_INTERRUPT
from smmc_bench.station import (
    Station,
    known_mutants,
    target_ids,
)


def recorder_of(config: pytest.Config) -> "BenchRecorder":
    return config.pluginmanager.get_plugin(BenchRecorder.name)


def bench_path(config: pytest.Config) -> str:
    return bench_file(config) or "bench.toml"


# pytest's exit code for a run stopped by SIGINT/SIGTERM is 2, the bench's "bad configuration":
# an interrupted run exits 128 + SIGINT instead, as a shell reports it.
EXIT_INTERRUPTED = 130


@dataclass
class _TestState:
    verdict: Verdict | None = None
    diagnosis: str = ""
    duration: float = 0.0
    interrupted: bool = False
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
    wrong type or tag; its bytes are in the trace), and a ciphered reply the bench's own checks
    refuse (SecurityFailure: a GCM tag that does not verify, a counter that does not increase,
    a reply in clear, a wrong f(CtoS)). ERROR: the bench could not judge: no answer
    at all (DlmsTimeout, LinkClosed, ConnectFailed), a line that keeps corrupting frames after
    retries (LinkOutOfStep), a feature the bench lacks, its own configuration or instruments."""
    if isinstance(exc, (AssertionError, ServiceError, MalformedReply, SecurityFailure)):
        return Verdict.FAIL
    return Verdict.ERROR


class BenchRecorder:
    name = "smmc-bench-recorder"

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        option = config.getoption("smmc_run_dir")
        # A run folder chosen by the caller names the run, so folder and record agree.
        self.run_id = Path(option).name if option else new_run_id()
        self.run_dir = Path(option) if option else Path("reports") / self.run_id
        self.started = now_iso()
        self.mutant = config.getoption("smmc_mutant")
        self.station: Station | None = None
        self.tests: dict[str, TestRecord] = {}
        self.instrument_ids: dict[str, str] = {}  # "AC source" / "load" -> *IDN?, as the fixtures read it
        self.collected: int | None = None
        self.session: pytest.Session | None = None
        self.current: pytest.Item | None = None
        self.interrupt = RUN_INTERRUPT
        self._owns_signals = self.interrupt.install()  # under `bench run` the CLI holds them already
        self.safe_state: list[str] = []
        self._reported: dict[str, set[str]] = {}  # test -> the phases reported (setup, call, teardown)
        self._config_error: str | None = None
        self._bench: BenchConfig | None = None
        self._software: dict[str, str] | None = None
        self._worker_meters: dict[str, MeterRecord] = {}  # on the controller of a parallel run
        self._forkserver: forkserver.ForkServer | None = None  # on the controller of a parallel run
        self._stations_checked = False  # the bench's profiles and secrets were read without error
        self._collected_ids: set[str] = set()
        self._running: set[str] = set()  # on the controller of a parallel run: tests a worker has started  # on the controller of a parallel run: every worker's
        self._record_written_at = float("-inf")
        self._record_write_s = 0.0  # how long the last rewrite of record.json took

    def bench_config(self) -> BenchConfig:
        if self._bench is None:
            try:
                self._bench = load_bench(bench_path(self.config))
            except ConfigError as exc:
                pytest.exit(f"bench configuration error\n{exc}", returncode=2)
        return self._bench

    # -- usage errors: before anything runs -------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        gc.freeze()  # the start-up heap (see pytest_collection_finish); on an xdist controller, which collects nothing
        self.session = session
        try:
            config = load_bench(bench_path(self.config))
            Station(config)  # every profile and secret, nothing started
            self._stations_checked = True
        except ConfigError as exc:
            pytest.exit(f"bench configuration error\n{exc}", returncode=2)
        if self.mutant and self.mutant not in known_mutants():
            pytest.exit(f"unknown mutant {self.mutant!r}; `bench validate --list` lists them", returncode=2)
        for index, meter in enumerate(config.meter):
            known = known_mutants().get(meter.mutant) if meter.mutant else None
            if meter.mutant and (known is None or known.link_kinds):
                pytest.exit(f"bench configuration error\n{bench_path(self.config)}: meter[{index}].mutant: "
                            f"{meter.mutant!r} is not a meter mutant (`bench validate --list` lists them; a link "
                            f"mutant applies to the whole bench with --mutant)", returncode=2)
        self._bench = self._bench or config
        junit.configure(self.config, f"smmc-bench {config.bench.station_id}")

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        bench = self._bench
        if bench is None:
            return []
        meters = ", ".join(f"{m.id} ({'emulated' if m.emulated else 'real'}, profile {m.profile})" for m in bench.meter)
        return [f"smmc-bench: station {bench.bench.station_id}, bench {bench_path(config)}",
                f"smmc-bench: meters {meters}; mutant {self.mutant or 'none (conforming)'}"
                + "".join(f"; {m.id} is mutant {m.mutant}" for m in bench.meter if m.mutant),
                f"smmc-bench: run folder {self.run_dir}"]

    # -- collection ---------------------------------------------------------
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "meter" in metafunc.fixturenames:
            try:
                if self._bench is None:
                    self._bench = load_bench(bench_path(self.config))
                # A worker of a parallel run collects only the positions it serves: collecting the whole
                # rack in each of N workers costs N^2 items, most of a 32-position rack's CPU.
                owned = parallel.owned_positions(self.config, self._bench.meter)
                ids = [test_id for m in self._bench.meter if owned is None or m.id in owned
                       for test_id in target_ids(m)]
            except ConfigError as exc:
                # An exit here would be a collection error per module: one usage error after collection.
                self._config_error, ids = str(exc), []
            metafunc.parametrize("meter", ids, indirect=True, ids=ids, scope="function")

    @pytest.hookimpl(tryfirst=True)  # before `-m` deselects
    def pytest_collection_modifyitems(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        hardware = self._bench is not None and any(not m.emulated for m in self._bench.meter)
        for item in items:
            # `-m` matches keyword arguments only: each mark also carries its value by name.
            for name, key in (("smmc_aspect", "n"), ("smmc_ntd", "article")):
                mark = item.get_closest_marker(name)
                if mark is not None and mark.args and key not in mark.kwargs:
                    item.add_marker(getattr(pytest.mark, name)(*mark.args, **{key: mark.args[0]}))
            if hardware and "meter" in getattr(item, "fixturenames", ()):
                # The CI ceiling is for the emulated bench: a real outage or emergency profile
                # lasts as long as the profile says, and the drivers bound every wait themselves.
                item.add_marker(pytest.mark.timeout(0))
        if parallel.is_worker(self.config):
            # A worker that serves no position gets pytest's empty-parameter placeholder: not a test.
            items[:] = [item for item in items if "meter" not in getattr(item, "fixturenames", ())
                        or isinstance(getattr(item, "callspec", None) and item.callspec.params.get("meter"), str)]
        # Stable: the suite's order otherwise; log-flooding tests last (a worker runs its items in this order).
        items.sort(key=lambda item: item.get_closest_marker("smmc_fills_logs") is not None)
        if self._bench is not None and self._config_error is None and not self._stations_checked:
            try:
                Station(self._bench)  # the profiles and secrets it names, before any test starts
            except ConfigError as exc:
                self._config_error = str(exc)
        if self._config_error:
            pytest.exit(f"bench configuration error\n{self._config_error}", returncode=2)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # After every deselection (-k, link kinds): the tests this run is to judge.
        self.collected = sum("meter" in getattr(item, "fixturenames", ()) for item in session.items)
        # Imports and collection leave a large heap that lives as long as the run: without freezing it,
        # every full garbage collection (pytest's unraisable-exception plugin forces two at the end) scans
        # it again, a quarter of a worker's CPU when a rack runs one worker per position.
        gc.freeze()

    # -- interruption ---------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None):
        self.current = item
        meter_data.begin()  # the rows this test's COSEM views decode, until _finish takes them
        if self.station is not None and isinstance(self.station.clock, RealClock):
            self.station.clock.new_activity()
        try:
            return (yield)
        except KeyboardInterrupt as exc:
            self._stop_in(item, exc)
            raise
        finally:
            self.current = None

    def _stop_in(self, item: pytest.Item, exc: KeyboardInterrupt) -> None:
        """pytest stops at once on an interrupt, before reporting the phase it hit, and tears the
        fixtures down only as the session ends, unreported: the test would be missing from the
        record and listed as passed in junit. Report the interrupted phase, and tear everything
        down now (nextitem None: every scope), reported as the test's teardown."""
        self.interrupt.note(exc)
        self.interrupt.stop()
        reported = self._reported.get(item.nodeid, set())
        phase = next((when for when in ("setup", "call", "teardown") if when not in reported), None)
        if phase is None:  # every phase was reported: interrupted between tests
            return

        def interrupted() -> None:
            raise exc

        def teardown() -> None:
            item.ihook.pytest_runtest_teardown(item=item, nextitem=None)

        if phase == "teardown":  # the teardown was cut short: finish it, then report it interrupted
            rest = pytest.CallInfo.from_call(teardown, when="teardown", reraise=(pytest.exit.Exception,))
            if rest.excinfo is not None:
                self.safe_state.append(f"teardown after the interrupt: {diagnose(rest.excinfo.value)}")
            self._report(item, pytest.CallInfo.from_call(interrupted, when="teardown", reraise=()))
        else:
            self._report(item, pytest.CallInfo.from_call(interrupted, when=phase, reraise=()))
            self._report(item, pytest.CallInfo.from_call(teardown, when="teardown", reraise=(pytest.exit.Exception,)))
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)

    @staticmethod
    def _report(item: pytest.Item, call: pytest.CallInfo) -> None:
        report = item.ihook.pytest_runtest_makereport(item=item, call=call)
        item.ihook.pytest_runtest_logreport(report=report)

    # -- progress on long waits (hardware) ------------------------------------------
    def activity(self) -> str:
        """What the bench is doing: the running test and its running use-case step."""
        item = self.current
        if item is None:
            return "the bench"
        state = item.stash.get(_STATE, None)
        steps = state.usecase.steps if state is not None and state.usecase is not None else []
        step = next((s for s in reversed(steps) if s.outcome == "running"), None)
        return f"{item.name}, step {step.title()}" if step else item.name

    def progress_line(self, line: str) -> None:
        """One line on the console now, past pytest's output capture (a terminal or not)."""
        capture = self.config.pluginmanager.getplugin("capturemanager")
        terminal = self.config.pluginmanager.getplugin("terminalreporter")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            if terminal is not None:
                terminal.write_line(line)
            else:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()

    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config):
        if getattr(report, "smmc_interrupted", False):
            return "error", "E", ("ERROR", {"red": True})
        return None

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo) -> None:
        if isinstance(excinfo.value, KeyboardInterrupt):  # not pytest.exit()
            self.interrupt.note(excinfo.value)

    # -- verdicts -----------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
        outcome = yield
        report = outcome.get_result()
        exc = call.excinfo.value if call.excinfo else None
        self._reported.setdefault(item.nodeid, set()).add(call.when)
        if isinstance(exc, KeyboardInterrupt):
            self.interrupt.note(exc)
            # Where the signal landed in the code is no news to a lab: say what happened instead.
            report.longrepr = f"interrupted by {self.interrupt.received} during {call.when}: the run was stopped"
            report.smmc_interrupted = True
        if "meter" not in getattr(item, "fixturenames", ()):
            return
        state = item.stash.setdefault(_STATE, _TestState())
        state.duration += call.duration
        if isinstance(exc, KeyboardInterrupt) and not state.interrupted:
            state.interrupted = True
            judged = f"; it had ended {state.verdict.value}: {state.diagnosis}" if state.verdict else ""
            where = "" if call.when == "call" else f" during {call.when}"
            state.verdict = Verdict.ERROR
            state.diagnosis = f"interrupted ({self.interrupt.received}){where}{judged}"
        elif state.interrupted:
            if report.failed and exc is not None:
                state.diagnosis += f"; {call.when}: {diagnose(exc)}"
        elif report.skipped and state.verdict is None:
            state.verdict = Verdict.SKIP
            state.diagnosis = _skip_reason(report)
        elif report.failed and exc is not None:
            if call.when == "call":
                state.verdict, state.diagnosis = classify(exc), diagnose(exc)
            elif state.verdict in (None, Verdict.PASS):
                # A malformed reply while reaching the meter (setup) is the meter's fault as much as in
                # the body; at teardown the verdict was already given, so only ERROR can be added.
                blamed = classify(exc) if call.when == "setup" and isinstance(exc, (MalformedReply, SecurityFailure)) \
                    else Verdict.ERROR
                state.verdict, state.diagnosis = blamed, f"{call.when}: {diagnose(exc)}"
            else:  # the verdict stands; the record still says the bench did not put things back
                state.diagnosis += f"; {call.when}: {diagnose(exc)}"
        elif call.when == "call" and report.passed:
            state.verdict = Verdict.PASS
        if call.when == "teardown":
            record = self._finish(item, state)
            allure_results.align_status(self.config, item.nodeid, record.verdict)
            if parallel.is_worker(self.config):
                parallel.ship_test(report, record)  # the controller records it, and writes junit
                return
            self._write_record_soon()
            if record.verdict is Verdict.ERROR:
                junit.mark_error(self.config, report)

    # -- parallel positions: the controller's side -----------------------------------
    def pytest_runtest_logstart(self, nodeid: str, location: tuple) -> None:
        if parallel.is_controller(self.config):
            self._running.add(nodeid)  # on a worker now: an ERROR if the run is interrupted before its record comes
            if self.session is not None:  # pytest's progress counts xdist's last collection: the union instead
                self.session.testscollected = max(self.session.testscollected, len(self._collected_ids))

    @pytest.hookimpl(tryfirst=True)  # before junit closes the test's XML node
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not parallel.is_controller(self.config):
            return
        record = parallel.received_test(report) or parallel.crashed_test(report, self._positions())
        if record is None:
            return
        self._running.discard(record.id)
        self.tests[record.id] = record
        if record.verdict is Verdict.ERROR:
            junit.mark_error(self.config, report)
        self._write_record_soon()

    def _positions(self) -> dict[str, str]:
        """Each test parameter id ('pos-1', 'emu-1-optical') -> its meter position."""
        return {t: m.id for m in self.bench_config().meter for t in target_ids(m)}

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log):
        return parallel.position_scheduler(config, log, self._positions(), self.bench_config().meter)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_setupnodes(self, config: pytest.Config, specs) -> None:
        # Workers forked from one pre-imported process: a rack's start-up CPU once, not per worker.
        self._forkserver = forkserver.start()
        if self._forkserver is not None:
            forkserver.use_for(specs, self._forkserver)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        parallel.slots(self.config).take(node)  # which positions the worker serves

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids: list[str]) -> None:
        # Each worker collects its own positions (and the tests of no position, which all collect).
        new = set(ids) - self._collected_ids
        self._collected_ids.update(new)
        # As a sequential run counts them: the tests of a meter (pytest counts the others too).
        positions = self._positions()
        self.collected = (self.collected or 0) + sum(parallel.position_of(nodeid, positions) is not None
                                                     for nodeid in new)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session):
        result = yield
        if parallel.is_controller(self.config):
            # xdist counts the last worker's collection only: one that serves no position has none.
            session.testscollected = max(session.testscollected, len(self._collected_ids))
        return result

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        if error is not None:  # crashed: its replacement takes its slot (a finished worker's stays taken)
            parallel.slots(self.config).release(node)
        meters, instruments, safe_state = parallel.received_session(node)
        self.safe_state = parallel.merged_safe_state(self.safe_state, safe_state)
        for meter in meters:
            # Every worker lists every meter; the one that served it has read its identity.
            if meter.identity or meter.id not in self._worker_meters:
                self._worker_meters[meter.id] = meter
        for name, identity in instruments.items():
            self.instrument_ids.setdefault(name, identity)

    def _finish(self, item: pytest.Item, state: _TestState) -> TestRecord:
        aspect = item.get_closest_marker("smmc_aspect")
        article = item.get_closest_marker("smmc_ntd")
        callspec = getattr(item, "callspec", None)
        target = self._target(callspec.params.get("meter")) if callspec else None
        evidence = state.usecase.to_jsonable() if state.usecase else {"steps": [], "measurements": []}
        data = meter_data.end() or meter_data.MeterDataLog()
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
            trace=self._in_run_dir(state.trace),
            wire_trace=self._in_run_dir(state.wire_trace),
            meter_data=data.rows,
            meter_data_dropped=data.dropped,
            **evidence,
        )
        return self.tests[item.nodeid]

    RECORD_EVERY_S = 2.0
    RECORD_SHARE = 0.05  # of the run's time, at most, spent rewriting record.json

    def _write_record_soon(self) -> None:
        """Keep record.json current while the run goes, so a killed run keeps what it had judged, but
        at most every RECORD_EVERY_S, and less often as the record grows (a write then takes longer):
        rewriting the whole record after each of hundreds of tests would cost more than the tests.
        The session's end (also an interrupted one) writes it whole."""
        now = time.monotonic()
        if now - self._record_written_at >= max(self.RECORD_EVERY_S, self._record_write_s / self.RECORD_SHARE):
            self.record().write(self.run_dir / "record.json")
            self._record_written_at = time.monotonic()
            self._record_write_s = self._record_written_at - now

    def _in_run_dir(self, path: str | None) -> str | None:
        if path is None:
            return None
        try:
            return Path(path).resolve().relative_to(self.run_dir.resolve()).as_posix()
        except ValueError:  # written outside the run folder: keep it whole
            return str(Path(path).resolve())

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
        aspect = item.get_closest_marker("smmc_aspect")
        if aspect and aspect.args[0] in ASPECTS:
            info = ASPECTS[aspect.args[0]]
            allure.dynamic.epic("SMMC conformance")
            allure.dynamic.feature(f"Aspect {info.number}: {info.title}")
            allure.dynamic.label("aspect", str(info.number))
        article = item.get_closest_marker("smmc_ntd")
        if article:
            allure.dynamic.tag(f"art. {article.args[0]}")
        doc = (getattr(getattr(item, "function", None), "__doc__", None) or "").strip()
        allure.dynamic.story(doc.splitlines()[0].rstrip(".") if doc else getattr(item, "originalname", item.name))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Iterator[None]:
        yield
        # The fixtures are down, so their traces are written; allure's own teardown hook has not
        # yet closed the test, so these attach to the test, not to a fixture's teardown.
        state = item.stash.get(_STATE, None)
        if state is None:
            return
        for path, name in ((state.trace, "DLMS frame trace"), (state.wire_trace, "Wire trace (per link)")):
            if path and Path(path).exists():
                allure.attach.file(path, name=name, attachment_type=allure.attachment_type.TEXT)
        if state.usecase is not None and state.usecase.measurements:
            allure.attach(state.usecase.measurements_table(), name="Measurements and limits",
                          attachment_type=allure.attachment_type.TEXT)

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
                        mutant=meter.settings.mutant,
                        profile_file=str(meter.profile_file), profile_sha256=file_sha256(meter.profile_file),
                        links=[link.describe() for link in meter.links],
                        identity=meter.identity, identity_error=meter.identity_error,
                    )
                )
        if not meters:
            meters = list(self._worker_meters.values())
        instruments = self._instruments(config)
        bench_file = Path(bench_path(self.config))
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
            instruments=instruments,
            instrument_calibration_overdue=any(i["overdue"] for i in instruments),
            collected=self.collected,
            interrupted=self.interrupt.interrupted,
            interrupted_by=self.interrupt.received or (self.interrupt.held[0] if self.interrupt.held else None),
            safe_state=self.safe_state,
            tests=list(self.tests.values()),
        )

    def _instruments(self, config: BenchConfig | None) -> list[dict]:
        if config is None:
            return []
        from smmc_bench.instruments import calibration_summary

        today = (self.station.clock if self.station is not None else RealClock()).now().date()
        return [c.as_record() for c in calibration_summary(config.ac_source, config.load, today,
                                                            self.instrument_ids)]

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Iterator[None]:
        self.interrupt.stop()  # the run is ending: a signal now must not cut the teardown short
        try:
            if parallel.is_worker(self.config):
                parallel.ship_session(self.config, self.record().meters, self.instrument_ids, self.safe_state)
            elif self._bench is not None:
                if parallel.is_controller(self.config) and self.interrupt.interrupted:
                    self._workers_last_words()  # before junit writes its file: their reports reach it too
                identity = self.identity_properties()
                junit.add_suite_properties(self.config, identity)
                write_allure_environment(self.config, identity)
                self._allure_categories_and_history()
            return (yield)
        finally:
            # After every other plugin: the session fixtures are down (safe state read back), junit written.
            if self.interrupt.interrupted and self.bench_run:
                session.exitstatus = EXIT_INTERRUPTED
            if parallel.is_worker(self.config):
                pass  # the controller writes the one record
            elif self.tests or (self.interrupt.interrupted and self.bench_run):
                record = self.record()
                record.write(self.run_dir / "record.json")
                self._store(record)

    def _workers_last_words(self) -> None:
        """An interrupted parallel run: what the workers sent after the controller stopped reading
        (their interrupted tests, safe state, meters), and an ERROR for any test still unaccounted for."""
        parallel.drain_after_interrupt(self.config, lambda node: self.pytest_testnodedown(node, None))
        positions = self._positions()
        for nodeid in self._running:
            if nodeid not in self.tests:
                self.tests[nodeid] = parallel.interrupted_on_worker(nodeid, positions, self.interrupt.received)

    def _allure_categories_and_history(self) -> None:
        folder = allure_results.results_dir(self.config)
        if folder is None:
            return
        allure_results.write_categories(folder)
        previous = self.config.getoption("smmc_allure_history", None)
        allure_results.copy_history(Path(previous) if previous else None, folder)

    def _store(self, record: RunRecord) -> None:
        """Append the run to the results store (aspect 11); the record on disk stays the evidence,
        so a store that cannot be written is reported, never a reason to lose the run."""
        if self._bench is None or not self._bench.store.enabled or not record.tests:
            return
        from smmc_bench.store.database import StoreError, append_run
        from smmc_bench.store.settings import open_bench_store

        try:
            append_run(open_bench_store(self._bench, self.run_dir.parent), record)
        except StoreError as exc:
            sys.stderr.write(f"smmc-bench: run not added to the results store: {exc}\n")

    def identity_properties(self) -> dict[str, str]:
        """Who and what judged: station, bench file, each meter's profile and identity (JUnit
        suite properties, allure environment)."""
        config = self._bench
        bench_file = Path(bench_path(self.config))
        props = {"station": config.bench.station_id, "lab": config.bench.lab, "operator": config.bench.operator,
                 "bench_file": str(bench_file), "bench_sha256": file_sha256(bench_file) or "",
                 "mutant": self.mutant or "none", "run_id": self.run_id}
        for meter in self.record().meters:
            props[f"meter.{meter.id}.profile"] = meter.profile
            props[f"meter.{meter.id}.profile_sha256"] = meter.profile_sha256 or ""
            for key, value in meter.identity.items():
                props[f"meter.{meter.id}.{key}"] = value
        return {name: str(value) for name, value in props.items()}

    @property
    def bench_run(self) -> bool:
        """A run of the bench (a bench file or mutant named, or tests of a meter collected), not
        a session of other tests the plugin happens to be loaded in."""
        return True

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not (self.interrupt.interrupted and self.bench_run):
            return
        terminalreporter.section("smmc-bench: run interrupted", yellow=True)
        for line in interruption_summary(self.record()):
            terminalreporter.line(line, red="NOT " in line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # Interrupted before the session could finish (in its start): still the interrupted code.
        if self.session is not None and self.interrupt.interrupted and self.bench_run and \
                self.session.exitstatus == pytest.ExitCode.INTERRUPTED:
            self.session.exitstatus = EXIT_INTERRUPTED
        if self._owns_signals:
            self.interrupt.uninstall()
        if self._forkserver is not None:
            self._forkserver.stop()
            self._forkserver = None


def interruption_summary(record: RunRecord) -> list[str]:
    """What the console says of an interrupted run: how far it got and the safe state."""
    if record.collected is None:
        lines = [f"interrupted by {record.interrupted_by} before the tests were collected: no verdict"]
    else:
        lines = [f"interrupted by {record.interrupted_by}: {len(record.tests)} of {record.collected} tests judged"]
        lines += [f"{test.id}: ERROR \"{test.diagnosis}\"" for test in record.tests
                  if test.diagnosis.startswith("interrupted (")]
    if record.safe_state:
        lines.append("safe state after the interrupt:")
        lines += [f"  {line}" for line in record.safe_state]
    else:
        lines.append("safe state: no meter or instrument had been started")
    return lines


def _skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr or "")


def write_allure_environment(config: pytest.Config, properties: dict[str, str]) -> None:
    """allure's environment.properties: the run's identity on the report's front page."""
    folder = getattr(config.option, "allure_report_dir", None)
    if not folder:
        return
    path = Path(folder) / "environment.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{name}={value}".replace("\n", " ") for name, value in properties.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
