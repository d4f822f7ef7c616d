"""`bench report RUN`: the HTML and PDF of a real run, in Spanish and English; a screenshot of the HTML
in headless Chromium shows the plots."""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy
import pytest
from matplotlib import image

from smmc_bench.report.html import chromium_command, find_chromium

REPO = Path(__file__).resolve().parents[2]
PASS_GREEN = numpy.array([0x2e, 0x7d, 0x32]) / 255.0  # the measurement bars of a passing test


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    result = subprocess.run([sys.executable, "-m", "smmc_bench.cli", "run", "--bench", str(REPO / "bench.toml"),
                             "-k", "clock_sync_within or power_down_and_up or sustained_overload",
                             "--reports", str(tmp / "reports")], capture_output=True, text=True, cwd=tmp, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    (folder,) = [p for p in (tmp / "reports").iterdir() if p.is_dir()]
    return folder


def report(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smmc_bench.cli", "report", str(run_dir), *args],
                          capture_output=True, text=True, timeout=180)


def test_html_in_both_languages_holds_identity_verdicts_measurements_and_plots(run_dir):
    result = report(run_dir, "--no-pdf")
    assert result.returncode == 0, result.stderr
    spanish = (run_dir / "report.es.html").read_text()
    english = (run_dir / "report.en.html").read_text()
    assert "Informe de ensayo de conformidad SMMC" in spanish and "SMMC conformance test report" in english
    for html in (spanish, english):
        assert "EMU0000001" in html and "EMU-FW-1.0.0" in html and "Chroma" in html  # meter and *IDN?
        assert "test_clock_sync_within_tolerance" in html and "3-11" in html
        assert html.count("<svg") >= 3  # clock before/after, voltage with events, measurements vs limits
        assert 'href="traces/' in html  # evidence linked relative to the run folder


def test_pdf_is_rendered_by_chromium(run_dir):
    if find_chromium() is None:
        pytest.skip("no Chromium on this machine (scripts/setup installs the distribution's package as root)")
    result = report(run_dir, "--lang", "en")
    assert result.returncode == 0, result.stderr
    pdf = (run_dir / "report.en.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000


def test_screenshot_of_the_html_shows_the_plots(run_dir, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium on this machine (scripts/setup installs the distribution's package as root)")
    assert report(run_dir, "--no-pdf", "--lang", "en").returncode == 0
    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(chromium_command(chromium, f"--user-data-dir={profile}", "--window-size=1200,2600",
                                        f"--screenshot={shot}", (run_dir / "report.en.html").as_uri()),
                       capture_output=True, timeout=120)
    pixels = image.imread(shot)[..., :3]
    green = numpy.all(numpy.abs(pixels - PASS_GREEN) < 0.03, axis=-1)
    assert green.sum() > 500, "no passing measurement bar visible in the screenshot"
    assert (pixels.mean(axis=-1) < 0.5).mean() > 0.01, "the page looks blank"
