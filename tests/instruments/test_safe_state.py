"""Safe state guaranteed: nominal voltage and frequency, output on, after a normal end, an
exception, Ctrl-C (SIGINT) and SIGTERM, including in a separate process and under pytest."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from smmc_bench.drivers.instruments import (
    AcSource,
    InstrumentError,
    SafeStateGuard,
    Terminated,
)

REPO = Path(__file__).resolve().parents[2]


def assert_safe(emulator) -> None:
    state = emulator.state
    assert (state.output, state.voltage, state.frequency) == (True, 220.0, 50.0), state
    assert state.supply_voltage == 220.0 and not state.sequence_running


def assert_was_disturbed(recorder) -> None:
    """The child really took the source out of its safe state before being stopped."""
    assert (0.0, 60.0) in [(volts, hertz) for _, volts, hertz in recorder.calls]


def spawn(args: list[str], cwd: Path = REPO) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_ready(child: subprocess.Popen) -> None:
    for line in child.stdout:
        if "READY" in line:
            return
    out, err = child.communicate(timeout=5)
    pytest.fail(f"child ended before READY:\n{out}\n{err}")


@pytest.mark.parametrize("model", ["chroma-61500", "generic"])
def test_exception_mid_test_restores_the_safe_state(emulated_source, model):
    emulator, _ = emulated_source(model)
    source = AcSource(emulator.resource, model=model, timeout=0.5).open()
    try:
        with pytest.raises(RuntimeError, match="mid-test"):
            with SafeStateGuard(source):
                source.set_voltage(90.0)
                source.off()
                raise RuntimeError("step failed mid-test")
        assert_safe(emulator)
    finally:
        source.close()


def test_exception_during_a_list_dropout_leaves_no_sequence_running(emulated_source, clock):
    emulator, _ = emulated_source("chroma-61500")
    source = AcSource(emulator.resource, model="chroma-61500", timeout=0.5).open()

    class Interrupting:
        def monotonic(self):
            return clock.monotonic()

        def sleep(self, seconds):
            raise KeyboardInterrupt  # Ctrl-C while the bench waits out the dropout

    try:
        with pytest.raises(KeyboardInterrupt):
            with SafeStateGuard(source):
                source.dropout(5.0, Interrupting())
        assert_safe(emulator)
    finally:
        source.close()


@pytest.mark.parametrize("signum, exception", [(signal.SIGINT, "KeyboardInterrupt"),
                                               (signal.SIGTERM, "Terminated")], ids=["SIGINT", "SIGTERM"])
def test_signal_in_a_separate_process_restores_the_safe_state(emulated_source, signum, exception):
    emulator, recorder = emulated_source("chroma-61500")
    child = spawn(["-m", "tests.instruments.safe_state_child", emulator.resource, "chroma-61500", "signal"])
    try:
        wait_ready(child)
        assert not emulator.state.output and emulator.state.voltage == 90.0
        child.send_signal(signum)
        _, err = child.communicate(timeout=10)
    finally:
        child.kill()
    assert child.returncode != 0 and exception in err, err
    assert_was_disturbed(recorder)
    assert_safe(emulator)


def test_exception_in_a_separate_process_restores_the_safe_state(emulated_source):
    emulator, recorder = emulated_source("generic")
    child = spawn(["-m", "tests.instruments.safe_state_child", emulator.resource, "generic", "exception"])
    _, err = child.communicate(timeout=10)
    assert child.returncode == 1 and "mid-test" in err
    assert_was_disturbed(recorder)
    assert_safe(emulator)


def test_sigint_under_pytest_restores_through_the_fixtures(emulated_source, tmp_path):
    """The real path: a bench test using the `ac_source` fixture is interrupted by Ctrl-C."""
    emulator, recorder = emulated_source("chroma-61500")
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f"""
        from types import SimpleNamespace
        import pytest
        from smmc_bench.instruments import AcSourceSettings

        @pytest.fixture(scope="session")
        def bench_station():
            settings = AcSourceSettings(resource={emulator.resource!r}, model="chroma-61500", timeout=1.0)
            return SimpleNamespace(instruments=SimpleNamespace(ac_source=settings, load=None))
    """))
    (tmp_path / "test_interrupted.py").write_text(textwrap.dedent("""
        import time

        def test_outage(ac_source):
            ac_source.set_voltage(90.0)
            ac_source.set_frequency(60.0)
            ac_source.off()
            print("READY", flush=True)
            time.sleep(30)
    """))
    child = spawn(["-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                   f"--smmc-bench={REPO / 'bench.toml'}", f"--smmc-run-dir={tmp_path / 'run'}", "test_interrupted.py"], cwd=tmp_path)
    try:
        wait_ready(child)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=15)
    finally:
        child.kill()
    # A session that asked for the bench exits 130 on an interrupt, as `bench run` does.
    assert child.returncode == 130 and "interrupted by SIGINT" in out + err, out + err
    assert_was_disturbed(recorder)
    assert_safe(emulator)


class _FakeSource:
    def __init__(self, during_restore=None, fail: bool = False):
        self.restored = 0
        self.during_restore = during_restore
        self.fail = fail

    def on(self): ...
    def off(self): ...
    def set_voltage(self, volts): ...
    def measure(self): ...

    def safe_state(self):
        if self.during_restore:
            self.during_restore()
        self.restored += 1
        if self.fail:
            raise InstrumentError("AC source: safe state not reached (output on: link lost)")


def test_handlers_are_put_back_and_normal_exit_restores():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    source = _FakeSource()
    with SafeStateGuard(source):
        assert signal.getsignal(signal.SIGINT) not in (before[0], signal.default_int_handler)
    assert source.restored == 1
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_signal_during_restoration_waits_for_it_to_finish():
    source = _FakeSource(during_restore=lambda: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(Terminated):
        with SafeStateGuard(source):
            pass
    assert source.restored == 1


def test_a_failed_restoration_is_reported_without_hiding_the_original_error():
    with pytest.raises(RuntimeError) as failure:
        with SafeStateGuard(_FakeSource(fail=True)):
            raise RuntimeError("the step that failed")
    assert any("safe state could not be restored" in note for note in failure.value.__notes__)
    with pytest.raises(InstrumentError, match="safe state not reached"):
        with SafeStateGuard(_FakeSource(fail=True)):
            pass
