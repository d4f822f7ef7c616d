"""On hardware (RealClock) a long wait says what it waits for at least every `progress_every`
seconds, also when the output is not a terminal; the virtual clock stays quiet."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import smmc_bench.clock
from smmc_bench.clock import RealClock

REPO = Path(__file__).resolve().parents[2]


class FakeTime:
    """time.monotonic/time.sleep on a counter: the clock's arithmetic without wall time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


@pytest.fixture
def fake_time(monkeypatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(smmc_bench.clock, "time", fake)
    return fake


def test_a_long_sleep_reports_at_least_every_interval(fake_time):
    lines: list[tuple[float, str]] = []
    clock = RealClock(progress_every=10.0, report=lambda line: lines.append((fake_time.now, line)),
                      activity=lambda: "test_outage, step 2 bench -> AC source: outage of 300 s")
    clock.new_activity()
    start = fake_time.now
    clock.sleep(300)
    assert fake_time.now == start + 300
    times = [start] + [at for at, _ in lines] + [fake_time.now]
    assert max(b - a for a, b in zip(times, times[1:])) <= 10.0
    assert all("outage of 300 s" in line and "waiting" in line for _, line in lines)
    assert "290 s of this pause left" in lines[0][1]


def test_a_poll_loop_of_short_sleeps_reports_too(fake_time):
    """A 720 s wait made of 1 s polls with work between them is one wait, not 720 short ones."""
    lines: list[float] = []
    clock = RealClock(progress_every=10.0, report=lambda line: lines.append(fake_time.now))
    clock.new_activity()
    start = fake_time.now
    while fake_time.now - start < 720:
        fake_time.now += 0.2  # a DLMS read between two polls
        clock.sleep(1.0)
    times = [start, *lines]
    assert len(lines) >= 70 and max(b - a for a, b in zip(times, times[1:])) <= 10.0 + 0.2


def test_a_short_wait_says_nothing(fake_time):
    lines: list[str] = []
    clock = RealClock(progress_every=10.0, report=lines.append)
    clock.new_activity()
    clock.sleep(9.5)
    assert lines == []


SUITE = """
import pytest

pytestmark = [pytest.mark.smmc_aspect(13)]

def test_waits_on_hardware(meter, bench_clock, usecase):
    assert not bench_clock.is_virtual
    with usecase.step("1", "bench", "meter", "a long wait for the meter"):
        bench_clock.sleep(3.0)
    meter.clock.read()
"""


@pytest.fixture
def real_meter_bench(tmp_path):
    """A bench whose meter is 'real' to the bench (not emulated by it: wall time, RealClock),
    served here by an emulated meter on a loopback port."""
    from smmc_bench.fixtures.clock import VirtualClock
    from smmc_bench.fixtures.meter import EmulatedMeter

    with EmulatedMeter(clock=VirtualClock(), host="127.0.0.1", port=0) as meter:
        host, port = meter.address
        bench_file = tmp_path / "bench.toml"
        bench_file.write_text(f"""
[bench]
station_id = "T"

[emulator]
enabled = false

[[meter]]
id = "real-1"
profile = "emulated-idis"

[meter.link]
kind = "tcp"
host = "{host}"
port = {port}

[meter.security]
authentication = "none"
client_sap = 16
""")
        suite = tmp_path / "suite"
        suite.mkdir()
        (suite / "test_wait.py").write_text(SUITE)
        yield bench_file, suite


@pytest.mark.parametrize("how", ["bench run", "pytest --bench"])
def test_progress_lines_reach_a_console_that_is_not_a_terminal(tmp_path, real_meter_bench, how):
    bench_file, suite = real_meter_bench
    if how == "bench run":
        command = [sys.executable, "-m", "smmc_bench.cli", "run", "--bench", str(bench_file), "--suite", str(suite),
                   "--reports", str(tmp_path / "reports"), "--progress-every", "0.05"]
    else:  # output capture on (pytest's default): the lines must get past it
        command = [sys.executable, "-m", "pytest", str(suite), "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                   "--smmc-bench", str(bench_file), "--smmc-run-dir", str(tmp_path / "run"), "--smmc-progress-every", "0.05"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    progress = [line for line in result.stdout.splitlines() if " waiting, " in line]
    assert progress, result.stdout
    assert "test_waits_on_hardware[real-1], step 1 bench -> meter: a long wait for the meter" in progress[0]
