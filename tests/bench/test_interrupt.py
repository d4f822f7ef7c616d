"""SIGINT and SIGTERM stop a run cleanly, under `bench run` and under plain `pytest --bench`:
exit 130, the test running then an ERROR "interrupted" in the record, junit.xml and console,
every fixture torn down, the safe state read back and listed, `interrupted: true` in the record.

Real subprocesses, real signals. The signal is sent once the run is where the test wants it
(a marker file written at that point), so nothing here depends on timing.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from smmc_bench.drivers.instruments import Terminated
from smmc_bench.safety.interrupt import RunInterrupt

REPO = Path(__file__).resolve().parents[2]
PASSWORD_FILE = REPO / "fixtures" / "secrets" / "lls-password.txt"

NO_SOURCE_BENCH = f"""
[bench]
station_id = "T"

[[meter]]
id = "emu-1"
profile = "emulated-idis"
emulated = true

[meter.security]
password_file = "{PASSWORD_FILE}"
"""

# Blocks the collection: a signal now arrives before the first test.
BLOCKED_COLLECTION = """
import os, time
from pathlib import Path

Path(os.environ["SMMC_TEST_MARKER"]).write_text("collecting")
time.sleep(300)

def test_never(meter):
    pass
"""

# The meter's breaker open when the signal arrives: the bench must close it again.
MID_TEST = """
import os, time
from pathlib import Path
import pytest

pytestmark = [pytest.mark.smmc_aspect(6)]

def test_a_judged_before(meter):
    meter.clock.read()

def test_b_interrupted(meter):
    meter.disconnect_control.remote_disconnect()
    Path(os.environ["SMMC_TEST_MARKER"]).write_text("disconnected")
    time.sleep(300)

def test_c_never_started(meter):
    pass
"""

# The AC source off and the load drawing when the signal arrives.
MID_SUPPLY_TEST = """
import os, time
from pathlib import Path
import pytest

pytestmark = [pytest.mark.smmc_aspect(7)]

def test_outage_interrupted(meter, ac_source, load):
    load.set_current(5.0)
    load.on()
    ac_source.set_voltage(100.0)
    ac_source.off()
    Path(os.environ["SMMC_TEST_MARKER"]).write_text("outage")
    time.sleep(300)
"""


def start(tmp_path: Path, suite_text: str, bench_file: Path, how: str) -> tuple[subprocess.Popen, Path]:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_interrupted.py").write_text(suite_text)
    run_dir = tmp_path / "run"
    env = {**os.environ, "SMMC_TEST_MARKER": str(tmp_path / "marker")}
    if how == "bench run":
        command = [sys.executable, "-m", "smmc_bench.cli", "run", "--bench", str(bench_file), "--suite", str(suite),
                   "--reports", str(tmp_path / "reports")]
    else:
        command = [sys.executable, "-m", "pytest", str(suite), "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                   "--smmc-bench", str(bench_file), "--smmc-run-dir", str(run_dir), f"--junitxml={run_dir / 'junit.xml'}"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, run_dir


def interrupt_when_ready(process: subprocess.Popen, marker: Path, signum: int) -> str:
    """Send `signum` once the run wrote `marker`; the process's console output once it ended."""
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never reached the point to interrupt"
        time.sleep(0.05)
    process.send_signal(signum)
    try:
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    return out + err


def run_folder(tmp_path: Path, how: str, run_dir: Path) -> Path:
    return next(p for p in (tmp_path / "reports").iterdir() if p.is_dir()) if how == "bench run" else run_dir


def junit_cases(path: Path) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in ET.parse(path).getroot().iter("testcase")}


SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]
HOW = ["bench run", "pytest --bench"]


@pytest.mark.parametrize("signum", SIGNALS)
@pytest.mark.parametrize("how", HOW)
def test_interrupted_before_the_first_test_exits_130(tmp_path, signum, how):
    process, run_dir = start(tmp_path, BLOCKED_COLLECTION, REPO / "bench.toml", how)
    output = interrupt_when_ready(process, tmp_path / "marker", signum)
    assert process.returncode == 130, output
    assert "Traceback" not in output
    name = signal.Signals(signum).name
    assert f"interrupted by {name}" in output
    record = json.loads((run_folder(tmp_path, how, run_dir) / "record.json").read_text())
    assert record["interrupted"] is True and record["interrupted_by"] == name
    assert record["tests"] == []


@pytest.mark.parametrize("signum", SIGNALS)
@pytest.mark.parametrize("how", HOW)
def test_interrupted_mid_test_on_a_bench_without_ac_source(tmp_path, signum, how):
    bench_file = tmp_path / "bench.toml"
    bench_file.write_text(NO_SOURCE_BENCH)
    process, run_dir = start(tmp_path, MID_TEST, bench_file, how)
    output = interrupt_when_ready(process, tmp_path / "marker", signum)
    name = signal.Signals(signum).name
    assert process.returncode == 130, output
    assert "Traceback" not in output
    folder = run_folder(tmp_path, how, run_dir)

    record = json.loads((folder / "record.json").read_text())
    assert record["interrupted"] is True and record["interrupted_by"] == name
    verdicts = {t["name"]: (t["verdict"], t["diagnosis"]) for t in record["tests"]}
    assert verdicts == {"test_a_judged_before": ("PASS", ""),
                        "test_b_interrupted": ("ERROR", f"interrupted ({name})")}
    assert record["collected"] == 3
    # The teardown ran and the bench read the breaker back: the test had left it open.
    assert record["safe_state"] == ["meter emu-1: was disconnected; reconnected by the bench (read back)"]

    cases = junit_cases(folder / "junit.xml")
    interrupted = cases["test_b_interrupted[emu-1]"]
    assert interrupted.find("error") is not None and interrupted.find("failure") is None
    assert f"interrupted by {name}" in interrupted.find("error").get("message")
    assert "test_c_never_started[emu-1]" not in cases

    assert "ERROR" in output and f"interrupted ({name})" in output
    assert "reconnected by the bench" in output


@pytest.mark.parametrize("signum", SIGNALS)
@pytest.mark.parametrize("how", HOW)
def test_interrupted_mid_supply_test_leaves_the_source_at_nominal(tmp_path, signum, how):
    """Inside the AC source guard's window: its handlers raise, ours take over for the teardown."""
    process, run_dir = start(tmp_path, MID_SUPPLY_TEST, REPO / "bench.toml", how)
    output = interrupt_when_ready(process, tmp_path / "marker", signum)
    name = signal.Signals(signum).name
    assert process.returncode == 130, output
    assert "Traceback" not in output
    folder = run_folder(tmp_path, how, run_dir)
    record = json.loads((folder / "record.json").read_text())
    assert record["interrupted"] is True and record["interrupted_by"] == name
    [test] = record["tests"]
    assert (test["verdict"], test["diagnosis"]) == ("ERROR", f"interrupted ({name})")
    assert record["safe_state"] == ["AC source: at nominal 220 V 50 Hz, output on (read back)", "load: off",
                                    "meter emu-1: connected (read back)"]
    case = junit_cases(folder / "junit.xml")["test_outage_interrupted[emu-1]"]
    assert case.find("error") is not None and case.find("failure") is None
    assert "AC source: at nominal 220 V 50 Hz, output on" in output


def test_a_second_signal_is_held_while_the_bench_stops():
    interrupt = RunInterrupt()
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert interrupt.install()
    try:
        with pytest.raises(Terminated):
            signal.raise_signal(signal.SIGTERM)
        interrupt.stop()
        signal.raise_signal(signal.SIGINT)  # held: the teardown goes on
        signal.raise_signal(signal.SIGTERM)
    finally:
        interrupt.uninstall()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert interrupt.received == "SIGTERM" and interrupt.held == ["SIGINT", "SIGTERM"]
    assert "held until the bench was back in its safe state" in interrupt.describe()


def test_an_interruption_raised_by_another_handler_is_named():
    interrupt = RunInterrupt()
    interrupt.note(Terminated("signal SIGTERM"))
    assert interrupt.received == "SIGTERM" and interrupt.interrupted
    other = RunInterrupt()
    other.note(KeyboardInterrupt())
    assert other.received == "SIGINT"
