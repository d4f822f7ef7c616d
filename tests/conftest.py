"""The bench's own test session: long command-line jobs start in the background.

A test marked `background_command(*args, nice=N)` judges what `smmc-bench *args --reports DIR` did.
The command starts as soon as collection ends (when the test is selected), so its minutes (a whole
suite validated against every mutant) overlap the rest of the session instead of following it;
the test's `background` fixture waits for it. `nice` lowers a CPU-bound job's priority, so the
real-time tests running meanwhile keep their timing. Under pytest-xdist each worker starts the
jobs of its own tests when they run.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MARKER = "background_command"
_JOBS = pytest.StashKey[dict]()


@dataclass
class BackgroundJob:
    args: tuple[str, ...]
    nice: int = 0
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="smmc-bench-job-")))
    process: subprocess.Popen | None = None

    @property
    def reports(self) -> Path:
        return self.folder / "reports"

    def start(self) -> None:
        nice = ["nice", "-n", str(self.nice)] if self.nice and shutil.which("nice") else []
        with open(self.folder / "stdout", "wb") as out, open(self.folder / "stderr", "wb") as err:
            self.process = subprocess.Popen(
                [*nice, sys.executable, "-m", "smmc_bench.cli", *self.args, "--reports", str(self.reports)],
                stdout=out, stderr=err, cwd=REPO)

    def result(self, timeout: float) -> subprocess.CompletedProcess:
        if self.process is None:
            self.start()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        return subprocess.CompletedProcess(self.process.args, self.process.returncode,
                                           (self.folder / "stdout").read_text(), (self.folder / "stderr").read_text())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # `smmc-bench validate` stops its workers on SIGTERM
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(*args, nice=0): the test judges `smmc-bench *args`, started "
                                       "in the background when collection ends")
    config.stash[_JOBS] = {}


def _job(config: pytest.Config, item: pytest.Item) -> BackgroundJob | None:
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return None
    jobs = config.stash[_JOBS]
    if item.nodeid not in jobs:
        jobs[item.nodeid] = BackgroundJob(tuple(marker.args), nice=marker.kwargs.get("nice", 0))
    return jobs[item.nodeid]


def pytest_collection_finish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker collects every test but runs only some: their jobs start when they run
    for item in session.items:
        job = _job(session.config, item)
        if job is not None:
            job.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    for job in session.config.stash.get(_JOBS, {}).values():
        job.stop()
        shutil.rmtree(job.folder, ignore_errors=True)


@pytest.fixture
def background(request: pytest.FixtureRequest) -> BackgroundJob:
    job = _job(request.config, request.node)
    if job is None:
        raise pytest.UsageError(f"{request.node.nodeid}: the background fixture needs @pytest.mark.{MARKER}(...)")
    return job
