"""The built wheel, installed into a fresh venv beside PyPI's `fixtures` and `drivers`: all three
import and work, uninstalling one leaves the others whole, and `smmc-bench run` from an empty
folder judges the packaged default bench (the conformance suite ships in the package)."""
from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

USE_ALL_THREE = """
import fixtures, drivers.drivers
from smmc_bench.fixtures.meter import EmulatedMeter
from smmc_bench.drivers.dlms import Authentication, DlmsSession, SessionSettings
from smmc_bench.drivers.dlms.transport import TcpWrapperTransport

class Counter(fixtures.Fixture):
    def _setUp(self):
        self.value = 1

with Counter() as counter, EmulatedMeter() as meter:
    settings = SessionSettings(client_sap=16, server_logical=1, authentication=Authentication.NONE)
    with DlmsSession(TcpWrapperTransport(*meter.address), settings) as session:
        serial = session.get(1, "0.0.96.1.0.255", 2)
print("ok", counter.value, serial.decode(), drivers.drivers.web.__name__)
"""


def run(*command, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp / "dist", REPO, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("smmc_bench-*.whl")
    venv.create(tmp / "venv", with_pip=True)
    python = tmp / "venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel, "fixtures", "drivers",
        cwd=tmp)
    return python


def test_installs_beside_pypi_fixtures_and_drivers_and_all_three_work(installed, tmp_path):
    out = run(installed, "-c", USE_ALL_THREE, cwd=tmp_path).stdout
    assert out.startswith("ok 1 EMU") and "web" in out, out
    run(installed, "-m", "pip", "check", cwd=tmp_path)


def test_run_from_an_empty_folder_passes_the_packaged_bench(installed, tmp_path):
    script = installed.parent / "smmc-bench"
    result = run(script, "run", cwd=tmp_path)
    assert " 0 FAIL 0 ERROR" in result.stdout and "PASS" in result.stdout, result.stdout
    assert list((tmp_path / "reports").glob("*/record.json"))
    assert run(script, "--version", cwd=tmp_path).stdout.startswith("smmc-bench ")


TWO_POSITIONS = """
[bench]
station_id = "WHEEL-J2"
[emulator]
enabled = true
""" + "".join(f"""
[[meter]]
id = "pos-{n}"
profile = "emulated-idis"
emulated = true
[meter.link]
kind = "tcp"
""" for n in (1, 2))


def test_installed_parallel_run_forks_its_workers_without_pytest_warnings(installed, tmp_path):
    """Installed, pytest marks the whole `smmc_bench` package for assertion rewriting; the fork server
    imports it before pytest starts in each worker, which must not make pytest warn (or fail under -W error)."""
    (tmp_path / "bench.toml").write_text(TWO_POSITIONS)
    result = run(installed, "-m", "pytest", "-n", "2", "-W", "error::pytest.PytestAssertRewriteWarning",
                 "-p", "no:cacheprovider", "--smmc-bench", "bench.toml", "--pyargs", "smmc_bench.conformance",
                 "-k", "aspect13 and reports_valid_time", cwd=tmp_path)
    assert "2 passed" in result.stdout and "arning" not in result.stdout, result.stdout[-3000:]


def test_uninstalling_pypi_fixtures_leaves_the_bench_whole(installed, tmp_path):
    run(installed, "-m", "pip", "uninstall", "--yes", "--quiet", "fixtures", cwd=tmp_path)
    run(installed, "-c", "import smmc_bench.fixtures.meter, smmc_bench.drivers.dlms, drivers.drivers", cwd=tmp_path)
