"""The plugin stays out of other projects' way until a session asks for the bench, and once
asked, selects by aspect and article with -m and says which bench it judges."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench.toml"


def pytest_in(folder: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "SMMC_BENCH"} | (env or {})
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=folder,
                          capture_output=True, text=True, timeout=120, env=environment)


def test_a_project_with_its_own_meter_fixture_is_unaffected(tmp_path):
    (tmp_path / "conftest.py").write_text("import pytest\n\n@pytest.fixture\ndef meter():\n    return 'mine'\n")
    (tmp_path / "test_theirs.py").write_text("def test_own_meter(meter):\n    assert meter == 'mine'\n")
    result = pytest_in(tmp_path, "-q")
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout + result.stderr
    assert "smmc-bench" not in result.stdout and "bench.toml" not in result.stdout + result.stderr


def test_inert_plugin_adds_no_fixture(tmp_path):
    (tmp_path / "test_fixtures.py").write_text("def test_x(request):\n"
                                               "    assert 'bench_station' not in request.fixturenames\n")
    result = pytest_in(tmp_path, "-q", "--fixtures")
    assert result.returncode == 0 and "bench_station" not in result.stdout, result.stdout


def test_a_mutant_without_a_bench_is_one_usage_error(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    result = pytest_in(tmp_path, "-q", "--smmc-mutant", "clock-ignores-set")
    assert result.returncode == 4 and "--smmc-mutant needs a bench" in result.stderr, result.stdout + result.stderr


def collected(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_select_by_aspect_and_article_with_m():
    by_aspect = collected(pytest_in(REPO, "tests/conformance", "--collect-only", "-q", "-m", "smmc_aspect(n=13)"))
    assert by_aspect and all("test_aspect13" in line for line in by_aspect), by_aspect
    by_article = collected(pytest_in(REPO, "tests/conformance", "--collect-only", "-q",
                                     "-m", "smmc_ntd(article='5-4')"))
    assert by_article and all("test_aspect07" in line for line in by_article), by_article
    everything = collected(pytest_in(REPO, "tests/conformance", "--collect-only", "-q"))
    assert len(by_aspect) + len(by_article) < len(everything)


def test_report_header_names_station_bench_meters_and_mutant(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    result = pytest_in(tmp_path, "--collect-only", env={"SMMC_BENCH": str(BENCH)})
    assert "smmc-bench: station EMU-01, bench " + str(BENCH) in result.stdout, result.stdout + result.stderr
    assert "meters emu-1 (emulated, profile emulated-idis); mutant none (conforming)" in result.stdout


def test_packaged_default_bench_is_the_repository_default():
    """`smmc-bench run` outside a clone judges the same bench as `scripts/bench run` in one."""
    repository = tomllib.loads(BENCH.read_text())
    packaged = tomllib.loads((REPO / "bench" / "benches" / "emulated.toml").read_text())
    for meter in repository["meter"]:
        meter["security"].pop("password_file")  # the emulated meter's own test password either way
    assert packaged == repository
