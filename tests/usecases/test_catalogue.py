"""The use-case catalogue and the suite cite each other: every step is verified by a test (or is a
back-office step with its reason), every test verifies a step; `bench profile` writes the documents."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from smmc_bench.report.record import RunRecord, TestRecord, Verdict
from smmc_bench.usecases import load_actors, load_catalogue, problems, suite_tests
from smmc_bench.usecases.documents import find_mermaid_cli, markdown, write_documents
from smmc_bench.profile.meter import load_profile

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "tests" / "conformance"
# Steps whose tests do not exist yet: `bench profile` reports them until they do. Shrink this set as
# tests land; it must never grow silently.
KNOWN_UNVERIFIED: set[str] = set()


def test_catalogue_holds_the_15_aspects_in_both_languages():
    catalogue = load_catalogue()
    assert sorted(catalogue) == list(range(1, 16))
    for case in catalogue.values():
        assert case.es.name and case.en.name and case.es.name != case.en.name
        assert case.scenario and all(scenario.step for scenario in case.scenario)


def test_catalogue_and_suite_cite_each_other():
    found = problems(load_catalogue(), suite_tests(SUITE), load_actors())
    unverified = {p.split()[1].rstrip(":") for p in found if "no test verifies it" in p}
    others = [p for p in found if "no test verifies it" not in p]
    assert others == [], others
    assert unverified <= KNOWN_UNVERIFIED, unverified - KNOWN_UNVERIFIED


def test_problems_are_found_both_ways():
    catalogue, actors = load_catalogue(), load_actors()
    tests = suite_tests(SUITE) - {"test_clock_reports_valid_time"} | {"test_nobody_cites"}
    found = problems(catalogue, tests, actors)
    assert "step 13.1.1: names unknown test test_clock_reports_valid_time" in found
    assert "test test_nobody_cites: verifies no step of the catalogue" in found


def test_documents_in_both_languages_with_diagrams_verdicts_and_the_xml_export(tmp_path):
    catalogue, actors = load_catalogue(), load_actors()
    profile = load_profile("emulated-idis")
    record = RunRecord(run_id="r", started="s", station={}, bench_file="b", tests=[
        TestRecord(id="x", name="test_clock_sync_within_tolerance", verdict=Verdict.FAIL)])
    written = write_documents(catalogue, actors, profile, record, tmp_path, html_too=True)
    for lang in ("es", "en"):
        assert len(list((tmp_path / lang).glob("aspect*.md"))) == 15
        assert len(list((tmp_path / lang).glob("aspect*.html"))) == 15
        root = ET.parse(tmp_path / lang / "use-cases.iec62559-3.xml").getroot()
        assert len(root.findall("UseCase")) == 15 and root.find(".//Step/VerifiedBy") is not None
    english = (tmp_path / "en" / "aspect13.md").read_text()
    assert "```mermaid\nsequenceDiagram" in english and "```mermaid\nflowchart LR" in english
    assert "| 13.1.2 |" in english and "`test_clock_sync_within_tolerance`" in english and "FAIL" in english
    assert "clock_sync_tolerance" in english  # the profile statement names the test parameters
    assert "Perfil de interoperabilidad" in (tmp_path / "es" / "aspect13.md").read_text()
    assert len(written) == 2 * (15 * 2 + 1)


def test_mermaid_diagrams_render_to_svg_in_the_html(tmp_path):
    if find_mermaid_cli() is None:
        pytest.skip("mermaid-cli (mmdc) not installed: scripts/test installs it from the npm registry where npm exists")
    from smmc_bench.report.html import find_chromium

    catalogue, actors = load_catalogue(), load_actors()
    write_documents({13: catalogue[13]}, actors, load_profile("emulated-idis"), None, tmp_path, ["en"],
                    chromium=find_chromium())
    page = (tmp_path / "en" / "aspect13.html").read_text()
    assert page.count("<svg") >= 2 and 'class="mermaid"' not in page


def test_bench_profile_command_writes_the_documents(tmp_path):
    result = subprocess.run([sys.executable, "-m", "smmc_bench.cli", "profile", "--bench", str(REPO / "bench.toml"),
                             "--out", str(tmp_path / "docs"), "--lang", "es", "--reports", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert (tmp_path / "docs" / "es" / "aspect01.md").exists(), result.stdout + result.stderr
    assert "15 aspects" in result.stdout
