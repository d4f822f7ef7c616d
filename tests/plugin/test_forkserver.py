"""Parallel workers forked from the bench's pre-imported fork server behave as fresh interpreters:
the caller's environment and folder, assertion rewriting of the tests, no pytest warning, and no
process left behind; SMMC_BENCH_FORKSERVER=0 turns it off."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from smmc_bench.plugin import forkserver

REPO = Path(__file__).resolve().parents[2]
RACK = REPO / "examples" / "rack8.toml"

pytestmark = pytest.mark.skipif(not forkserver.supported(), reason="the fork server is Linux-only")

PROBE_SUITE = """
import json, os, sys
from pathlib import Path


def test_where_the_worker_came_from(meter):
    parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().replace(b"\\0", b" ").decode()
    out = Path(os.environ["PROBE_OUT"]) / f"{meter.id}.json"
    out.write_text(json.dumps({"parent": parent, "parent_pid": os.getppid(), "cwd": os.getcwd(),
                               "probe": os.environ.get("PROBE_VALUE"), "main": sys.modules["__main__"].__name__}))


def test_assertions_are_rewritten(meter):
    answer = 41
    assert answer == 42
"""


def run_probe(tmp_path: Path, switch: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    suite = tmp_path / "test_probe_suite.py"
    suite.write_text(PROBE_SUITE)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PROBE_OUT": str(out), "PROBE_VALUE": "from the caller", forkserver.SWITCH: switch}
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
                             "-W", "error::pytest.PytestAssertRewriteWarning", "--smmc-bench", str(RACK),
                             "--smmc-run-dir", str(tmp_path / "run"), str(suite)],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    return result, [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]


def test_workers_are_forked_with_the_callers_environment_and_folder(tmp_path):
    result, probes = run_probe(tmp_path, "1")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]  # the rewritten assert fails
    assert "Warning" not in result.stdout + result.stderr, result.stdout[-3000:]
    assert len(probes) == 8
    assert all("smmc_bench.plugin.forkserver" in p["parent"] for p in probes), probes[0]
    assert all(p["cwd"] == str(tmp_path) and p["probe"] == "from the caller" for p in probes), probes[0]
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    failed = [t for t in record["tests"] if t["name"] == "test_assertions_are_rewritten"]
    assert len(failed) == 8 and all(t["verdict"] == "FAIL" and "41 == 42" in t["diagnosis"] for t in failed), failed[0]
    server = probes[0]["parent_pid"]
    assert not Path(f"/proc/{server}").exists() or b"forkserver" not in Path(f"/proc/{server}/cmdline").read_bytes()


def test_switched_off_each_worker_is_a_fresh_interpreter(tmp_path):
    result, probes = run_probe(tmp_path, "0")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert len(probes) == 8 and not any("forkserver" in p["parent"] for p in probes), probes[0]


def test_the_server_forks_from_one_thread_and_ends_when_asked():
    """fork() copies only the calling thread: a module imported before forking that started a thread
    (a lock held by it) would leave every worker with a lock nobody releases."""
    server = forkserver.start()
    assert server is not None
    pid = server.process.pid
    try:
        assert len(list(Path(f"/proc/{pid}/task").iterdir())) == 1
    finally:
        server.stop()
    assert server.process.returncode is not None and not Path(f"/proc/{pid}/task").exists()


def test_a_terminated_server_waits_for_its_workers_and_reports_their_status():
    """SIGTERM to the process group (a CI runner stopping a job) reaches the server too: it must not
    die before the workers it forked, leaving them unreaped (zombies under a PID 1 that reaps none)
    and their clients without a status."""
    import signal
    import time

    server = forkserver.start()
    assert server is not None
    try:
        client = subprocess.Popen([*shlex.split(server.python()), "-u", "-c",
                                   "import sys, time; time.sleep(1.5); sys.exit(7)"])
        time.sleep(0.7)  # the worker is forked and sleeping
        server.process.send_signal(signal.SIGTERM)
        assert client.wait(timeout=30) == 7
        assert server.process.wait(timeout=30) is not None
    finally:
        server.stop()


SERVER_KILLED_SUITE = """
import os, signal, time


def test_before(meter):
    pass


def test_kills_the_server_then_crashes(meter):
    if meter.id == "pos-2":
        os.kill(os.getppid(), signal.SIGKILL)  # the fork server (this worker's parent) dies mid-run
        time.sleep(0.5)
        os._exit(3)


def test_after(meter):
    pass
"""


def test_a_replacement_worker_starts_fresh_when_the_server_is_gone(tmp_path):
    """The fork server killed mid-run, then a worker crashes: its replacement cannot be forked and
    must start as a fresh interpreter (it was an INTERNALERROR, the positions' other tests unrun)."""
    suite = tmp_path / "test_server_killed_suite.py"
    suite.write_text(SERVER_KILLED_SUITE)
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
                             "--max-worker-restart", "2", "--rootdir", str(tmp_path), "--smmc-bench", str(RACK),
                             "--smmc-run-dir", str(tmp_path / "run"), str(suite)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 1 and "INTERNALERROR" not in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    verdicts = {t["id"].rsplit("::", 1)[-1]: t["verdict"] for t in record["tests"]}
    assert len(verdicts) == 24 and verdicts.pop("test_kills_the_server_then_crashes[pos-2]") == "ERROR"
    assert set(verdicts.values()) == {"PASS"}
