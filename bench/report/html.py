"""`bench report RUN`: a self-contained HTML report of a run (plots inline as SVG), and a PDF of it
rendered by headless Chromium. Spanish or English."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from smmc_bench.report.labels import LABELS
from smmc_bench.report.record import RunRecord

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class ReportError(Exception):
    pass


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _limit(measurement: dict) -> str:
    if measurement.get("expected") is not None:
        return f"= {measurement['expected']}"
    parts = []
    if measurement.get("low") is not None:
        parts.append(f"≥ {measurement['low']:g}")
    if measurement.get("high") is not None:
        parts.append(f"≤ {measurement['high']:g}")
    return " ".join(parts)


def _by_aspect(record: RunRecord) -> list[dict]:
    counts: dict[tuple, Counter] = {}
    for test in record.tests:
        counts.setdefault((test.aspect or 0, test.article or "-"), Counter())[test.verdict.value] += 1
    return [{"aspect": aspect or "-", "article": article, **{v: c.get(v, 0) for v in ("PASS", "FAIL", "ERROR", "SKIP")}}
            for (aspect, article), c in sorted(counts.items())]


def _plots(record: RunRecord, words: dict[str, str]) -> list[tuple[str, str]]:
    from smmc_bench.report import plots  # matplotlib: only when a report is drawn, not at every CLI start

    found: list[tuple[str, str]] = []
    for test in record.tests:
        if test.name == "test_clock_sync_within_tolerance":
            values = {m["name"]: m for m in test.measurements}
            before = next((m for name, m in values.items() if name.startswith("clock deviation before")), None)
            after = next((m for name, m in values.items() if name.startswith("|clock deviation after")), None)
            if before and after and after.get("high"):
                found.append((f"{test.name} [{test.meter}]", plots.clock_before_after(
                    before["value"], after["value"], after["high"],
                    (words["clock_before"], words["clock_after"], words["tolerance"]))))
        if test.series:
            found.append((f"{test.name} [{test.meter}]", plots.series_plot(test.name, test.series)))
    aspects = sorted({t.aspect for t in record.tests if t.aspect})
    for aspect in aspects:
        measurements = [m for t in record.tests if t.aspect == aspect for m in t.measurements]
        svg = plots.measurements_against_limits(f"{words['aspect']} {aspect}", measurements)
        if svg:
            found.append((f"{words['against_limits']}: {words['aspect']} {aspect}", svg))
    return found


def render_html(record: RunRecord, lang: str = "es") -> str:
    if lang not in LABELS:
        raise ReportError(f"language {lang!r}: one of {', '.join(LABELS)}")
    environment = Environment(loader=PackageLoader("smmc_bench.report", "templates"),
                              autoescape=select_autoescape(["html", "j2"]))
    words = LABELS[lang]
    return environment.get_template("report.html.j2").render(
        r=record, L=words, lang=lang, outcome=record.outcome.value, counts=record.counts(),
        by_aspect=_by_aspect(record), plots=_plots(record, words), fmt=_fmt, limit=_limit)


def find_chromium() -> str | None:
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def chromium_command(chromium: str, *args: str) -> list[str]:
    # --no-sandbox: CI runs as root, where Chromium refuses its sandbox.
    return [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *args]


def render_pdf(html_path: Path, pdf_path: Path, timeout_s: float = 120.0) -> None:
    chromium = find_chromium()
    if chromium is None:
        raise ReportError("no Chromium found for the PDF (install the distribution's chromium); the HTML is written")
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(chromium_command(chromium, f"--user-data-dir={profile}", "--no-pdf-header-footer",
                                                 f"--print-to-pdf={pdf_path}", html_path.resolve().as_uri()),
                                capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0 or not pdf_path.exists():
        raise ReportError(f"Chromium could not print {html_path} to PDF: {result.stderr.strip()[-300:]}")


def write_report(run_dir: Path, lang: str = "es", pdf: bool = True) -> list[Path]:
    record_path = run_dir / "record.json"
    if not record_path.exists():
        raise ReportError(f"{run_dir}: no record.json (not a run folder)")
    record = RunRecord.read(record_path)
    html_path = run_dir / f"report.{lang}.html"
    html_path.write_text(render_html(record, lang), encoding="utf-8")
    written = [html_path]
    if pdf:
        pdf_path = html_path.with_suffix(".pdf")
        render_pdf(html_path, pdf_path)
        written.append(pdf_path)
    return written
