"""What CI tools and a lab read from a run: junit.xml valid against the xunit2 schema with
ERROR as <error>, suite name and properties; allure results with story, failed measurement
steps and traces on the test; record.json with schema version, outcome, profile hash and paths
relative to the run folder."""
from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from tests.store.conftest import PASSWORD, postgres_url  # noqa: F401 - the PostgreSQL server fixture

REPO = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).with_name("junit.xsd")

SUITE = '''
import pytest
from smmc_bench.cosem.profile_generic import load_profile_of
from smmc_bench.drivers.dlms.errors import DlmsTimeout, MalformedReply

pytestmark = [pytest.mark.smmc_aspect(13), pytest.mark.smmc_ntd("3-11")]


def test_passes(meter, usecase, bench_clock):
    """The clock is read."""
    with usecase.step("1", "Bench", "Meter", "read the clock"):
        meter.clock.read()
    bench_clock.sleep(3 * 900)  # virtual time: load-profile intervals close
    load_profile_of(meter).read()
    load_profile_of(meter).read()  # read twice, kept once
    meter.clock.shift_time(5)  # a time change: events in the standard event log
    meter.clock.shift_time(-5)
    meter.standard_event_log.entries()
    usecase.measure("drift", 0.5, high=2.0, unit="s", article="3-11")


def test_fails(meter, usecase):
    """A measurement out of its limits."""
    with usecase.step("1", "Bench", "Meter", "read the clock"):
        meter.clock.read()
    usecase.measure("drift", 5.0, high=2.0, unit="s", article="3-11")


def test_malformed(meter):
    """A reply that breaks the standard: the meter's FAIL, though no assertion failed."""
    meter.clock.read()
    raise MalformedReply("trailing bytes after the reply")


def test_cannot_judge(meter):
    """The meter never answers."""
    meter.clock.read()
    raise DlmsTimeout("no reply within 5 s")
'''


PREVIOUS_TREND = '[{"buildOrder": 1, "data": {"failed": 1, "broken": 1, "skipped": 0, "passed": 1, "total": 3}}]'


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("outputs")
    (tmp / "suite").mkdir()
    (tmp / "suite" / "test_outputs_suite.py").write_text(SUITE)
    # A previous report, as `allure generate` left it: bench run finds it in the reports folder.
    (tmp / "reports" / "allure-report" / "history").mkdir(parents=True)
    (tmp / "reports" / "allure-report" / "history" / "history-trend.json").write_text(PREVIOUS_TREND)
    result = subprocess.run([sys.executable, "-m", "smmc_bench.cli", "run", "--bench", str(REPO / "bench.toml"),
                             "--suite", str(tmp / "suite"), "--reports", str(tmp / "reports")],
                            capture_output=True, text=True, cwd=tmp, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    (folder,) = [p for p in (tmp / "reports").iterdir() if p.is_dir() and p.name != "allure-report"]
    return folder


def test_junit_validates_against_the_xunit2_schema(run):
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(run / "junit.xml"))


def test_junit_names_the_suite_and_an_error_is_an_error(run):
    root = ET.parse(run / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert suite.get("name") == "smmc-bench EMU-01"
    properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert properties["station"] == "EMU-01" and properties["bench_file"].endswith("bench.toml")
    assert len(properties["bench_sha256"]) == 64 and len(properties["meter.emu-1.profile_sha256"]) == 64
    assert properties["meter.emu-1.serial_number"] and properties["meter.emu-1.firmware_id"]
    outcome = {case.get("name").split("[")[0]: [child.tag for child in case] for case in suite.iter("testcase")}
    assert outcome["test_passes"] == []
    assert outcome["test_fails"][:1] == ["failure"]
    assert outcome["test_cannot_judge"][:1] == ["error"]
    assert outcome["test_malformed"][:1] == ["failure"]
    assert suite.get("errors") == "1" and suite.get("failures") == "2"
    assert not any(case.find("properties") is not None for case in suite.iter("testcase"))


def test_record_has_schema_outcome_profile_hash_and_relative_paths(run):
    record = json.loads((run / "record.json").read_text())
    assert record["schema_version"] == "2" and record["outcome"] == "FAIL"
    (meter,) = record["meters"]
    assert meter["profile_file"].endswith("emulated-idis.toml") and len(meter["profile_sha256"]) == 64
    assert record["software"]["git_dirty"] in ("true", "false")
    for test in record["tests"]:
        for key in ("trace", "wire_trace"):
            if test[key]:
                assert not Path(test[key]).is_absolute() and (run / test[key]).is_file(), test[key]
    verdicts = {t["name"]: t["verdict"] for t in record["tests"]}
    assert verdicts == {"test_passes": "PASS", "test_fails": "FAIL", "test_malformed": "FAIL",
                        "test_cannot_judge": "ERROR"}


def _allure(run: Path) -> dict[str, dict]:
    results = [json.loads(Path(f).read_text()) for f in glob.glob(str(run / "allure-results" / "*-result.json"))]
    return {r["name"].split("[")[0]: r for r in results}


def test_allure_has_story_failed_measurement_and_traces_on_the_test(run):
    results = _allure(run)
    failed = results["test_fails"]
    labels = {label["name"]: label["value"] for label in failed["labels"]}
    assert labels["story"] == "A measurement out of its limits" and labels["feature"].startswith("Aspect 13")
    steps = {step["name"]: step["status"] for step in failed["steps"]}
    assert steps["1 Bench -> Meter: read the clock"] == "passed"
    (measure,) = [name for name in steps if name.startswith("measure drift")]
    assert steps[measure] == "failed" and "<= 2 s" in measure and "art. 3-11" in measure
    attachments = {a["name"] for a in failed["attachments"]}
    assert {"DLMS frame trace", "Measurements and limits"} <= attachments
    environment = (run / "allure-results" / "environment.properties").read_text()
    assert "station=EMU-01" in environment and "meter.emu-1.profile_sha256=" in environment


def test_allure_statuses_follow_the_verdicts_and_categories_name_them(run):
    """FAIL is allure's "failed" (a product defect) even for a malformed reply, which allure alone calls
    "broken"; ERROR is "broken" (the bench could not judge); the categories say which is which."""
    statuses = {name: result["status"] for name, result in _allure(run).items()}
    assert statuses == {"test_passes": "passed", "test_fails": "failed", "test_malformed": "failed",
                        "test_cannot_judge": "broken"}
    categories = json.loads((run / "allure-results" / "categories.json").read_text())
    matched = {category["matchedStatuses"][0]: category["name"] for category in categories}
    assert matched["failed"].startswith("Product defects (FAIL")
    assert matched["broken"].startswith("Bench or test errors (ERROR")
    assert matched["skipped"].startswith("Not applicable (SKIP")


def test_allure_results_carry_the_previous_reports_history(run):
    assert (run / "allure-results" / "history" / "history-trend.json").read_text() == PREVIOUS_TREND


def test_allure_renders_the_categories_and_the_trend_across_both_runs(run, tmp_path):
    """The real allure command line (scripts/test installs it from the npm registry; it needs Java)."""
    allure = shutil.which("allure")
    if allure is None or shutil.which("java") is None:
        pytest.skip("allure command line or Java not installed: scripts/test installs allure-commandline where npm is")
    rendered = subprocess.run([allure, "generate", "--clean", str(run / "allure-results"), "-o", str(tmp_path / "report")],
                              capture_output=True, text=True, timeout=180)
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    trend = json.loads((tmp_path / "report" / "history" / "history-trend.json").read_text())
    assert len(trend) == 2 and trend[1]["buildOrder"] == 1, trend  # this run, then the previous one
    assert trend[0]["data"]["failed"] == 2 and trend[0]["data"]["broken"] == 1 and trend[0]["data"]["passed"] == 1
    widget = json.loads((tmp_path / "report" / "widgets" / "categories.json").read_text())
    counts = {item["name"].split(" (")[0]: item["statistic"]["total"] for item in widget["items"]}
    assert counts == {"Product defects": 2, "Bench or test errors": 1}, counts


def test_an_allure_history_folder_that_is_not_there_is_a_usage_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "smmc_bench.cli", "run", "--bench", str(REPO / "bench.toml"),
                             "--reports", str(tmp_path / "reports"), "--allure-history", str(tmp_path / "nowhere")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "--allure-history" in result.stderr and "history/" in result.stderr, \
        result.stdout + result.stderr
    assert not (tmp_path / "reports").exists()


def test_the_run_is_appended_to_the_results_store(run):
    from smmc_bench.store.database import open_store, sqlite_url
    from smmc_bench.store.history import runs

    (row,) = runs(open_store(sqlite_url(run.parent / "results.sqlite")))
    assert row.run_id == run.name and row.outcome == "FAIL" and (row.passed, row.failed, row.errors) == (1, 2, 1)
    assert row.firmware.startswith("EMU-FW")


def _meter_data_of(run: Path) -> list[dict]:
    record = json.loads((run / "record.json").read_text())
    (passed,) = [t for t in record["tests"] if t["name"] == "test_passes"]
    return passed["meter_data"]


def test_the_record_keeps_the_load_profile_and_events_the_test_read_once(run):
    rows = _meter_data_of(run)
    intervals = [r for r in rows if r["kind"] == "load_profile"]
    events = [r for r in rows if r["kind"] == "event"]
    assert len(intervals) >= 3 and {r["obis"] for r in intervals} == {"1.0.99.1.0.255"}, rows
    assert all(set(r["values"]) == {"status", "energy"} for r in intervals)
    assert [r["stamp"] for r in intervals] == sorted({r["stamp"] for r in intervals})  # read twice, kept once
    assert {r["values"]["code"] for r in events} >= {4, 5} and {r["obis"] for r in events} == {"0.0.99.98.0.255"}


def _check_meter_data_queryable(engine, run: Path) -> None:
    from smmc_bench.store.history import meter_data

    expected = _meter_data_of(run)
    intervals = meter_data(engine, run=run.name, kind="load_profile")
    assert [(r.stamp, r.values) for r in intervals] == \
        sorted((r["stamp"], r["values"]) for r in expected if r["kind"] == "load_profile")
    assert {r.meter_id for r in intervals} == {"emu-1"} and {r.test for r in intervals} == {"test_passes"}
    events = meter_data(engine, meter="emu-1", kind="event", obis="0.0.99.98.0.255")
    assert sorted((r.stamp, r.values["code"]) for r in events) == \
        sorted((r["stamp"], r["values"]["code"]) for r in expected if r["kind"] == "event")
    assert meter_data(engine, run="another-run") == []


def test_the_meter_data_is_queryable_from_the_sqlite_store(run):
    from smmc_bench.store.database import open_store, sqlite_url

    _check_meter_data_queryable(open_store(sqlite_url(run.parent / "results.sqlite")), run)


def test_the_meter_data_is_queryable_from_postgresql(run, postgres_url):
    from smmc_bench.report.record import RunRecord
    from smmc_bench.store.database import append_run, open_store

    engine = open_store(postgres_url, password=PASSWORD)
    append_run(engine, RunRecord.read(run / "record.json"))
    _check_meter_data_queryable(engine, run)
