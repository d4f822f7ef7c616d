"""What the bench adds to allure's results folder: the verdict classes as allure categories (a product
defect, FAIL, is "failed"; a test the bench could not judge, ERROR, is "broken"; a test that does not
apply is "skipped"), each test's allure status aligned with the bench's verdict, and the history of the
previous report copied in so allure shows trends across runs.

Render: `allure generate --clean <run>/allure-results -o reports/allure-report`, then
`allure open reports/allure-report` (or `allure serve <run>/allure-results` for a quick look, with no
history kept). The next `bench run` copies reports/allure-report/history into its results."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from smmc_bench.report.record import Verdict

# allure's statuses: failed = an assertion (a non-conformity), broken = any other exception.
STATUS = {Verdict.PASS: "passed", Verdict.FAIL: "failed", Verdict.ERROR: "broken", Verdict.SKIP: "skipped"}

CATEGORIES = [
    {"name": "Product defects (FAIL: the meter does not conform)", "matchedStatuses": ["failed"],
     "description": "A measurement out of its limits, a refused or wrong service, a malformed reply: the meter "
                    "did something the profile or the standard does not allow."},
    {"name": "Bench or test errors (ERROR: not judged)", "matchedStatuses": ["broken"],
     "description": "No answer, a link that kept corrupting frames, an instrument or the bench's configuration: "
                    "the bench could not judge the meter; run the test again once the cause is fixed."},
    {"name": "Not applicable (SKIP)", "matchedStatuses": ["skipped"],
     "description": "The meter's profile does not declare the option the test needs, or the link cannot carry it."},
]

HISTORY = "history"
ALLURE_REPORT = "allure-report"  # where `bench run` looks for the previous report, in its reports folder


def results_dir(config: pytest.Config) -> Path | None:
    folder = getattr(config.option, "allure_report_dir", None)
    return Path(folder) if folder else None


def write_categories(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "categories.json"
    path.write_text(json.dumps(CATEGORIES, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def copy_history(previous_report: Path | None, folder: Path) -> Path | None:
    """The previous generated report's history/ into the new results (allure then draws trends);
    None where there is no previous report or it has no history."""
    if previous_report is None:
        return None
    source = previous_report / HISTORY
    if not source.is_dir():
        return None
    target = folder / HISTORY
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target


def align_status(config: pytest.Config, nodeid: str, verdict: Verdict) -> None:
    """Give the test's allure result the status of the bench's verdict: allure calls any non-assertion
    exception "broken", but a malformed reply or a refused service is the meter's FAIL, and a teardown
    the bench could not complete is an ERROR. A no-op when allure is not recording."""
    listener = config.pluginmanager.get_plugin("allure_listener")
    if listener is None:
        return
    try:
        uuid = listener._cache.get(nodeid)
        result = listener.allure_logger.get_test(uuid) if uuid else None
    except (AttributeError, KeyError):  # another allure-pytest: its own statuses stand
        return
    if result is not None:
        result.status = STATUS[verdict]
