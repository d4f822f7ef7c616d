"""Meter positions in parallel: a position's tests stay on one worker, the merged record and junit
hold every verdict once, and inter-process locks keep workers off each other's instruments."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from smmc_bench.drivers.locks import ResourceBusy, ResourceLock
from smmc_bench.plugin.parallel import position_of

REPO = Path(__file__).resolve().parents[2]
RACK = REPO / "examples" / "rack8.toml"


def test_position_of_a_test_id_is_the_longest_target_that_fits():
    positions = {"emu-1": "emu-1", "emu-1-optical": "emu-1", "emu-10": "emu-10"}
    assert position_of("t.py::test_x[emu-1]", positions) == "emu-1"
    assert position_of("t.py::test_x[emu-1-optical]", positions) == "emu-1"
    assert position_of("t.py::test_x[emu-10-7m40s]", positions) == "emu-10"
    assert position_of("t.py::test_x[emu-2]", positions) is None and position_of("t.py::test_x", positions) is None


def test_each_position_stays_on_one_worker_and_both_workers_work(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-n", "2",
                             "--smmc-bench", str(RACK), "--smmc-run-dir", str(tmp_path / "run"),
                             str(REPO / "tests" / "conformance" / "test_aspect13_time_sync.py"), "-k", "reports_valid_time or zone_written"],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    workers: dict[str, set[str]] = {}
    for worker, position in re.findall(r"\[(gw\d)\].*PASSED .*\[(pos-\d)\]", result.stdout):
        workers.setdefault(position, set()).add(worker)
    assert len(workers) == 8 and all(len(w) == 1 for w in workers.values()), workers
    assert len(set().union(*workers.values())) == 2
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    ids = [t["id"] for t in record["tests"]]
    assert len(ids) == len(set(ids)) == 16 and len(record["meters"]) == 8 and record["outcome"] == "PASS"


def test_bench_run_j2_merges_one_record_and_one_junit(tmp_path):
    result = subprocess.run([sys.executable, "-m", "smmc_bench.cli", "run", "--bench", str(RACK), "-j", "2",
                             "-k", "aspect13 and reports_valid_time", "--reports", str(tmp_path)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    record = json.loads((run / "record.json").read_text())
    assert sorted(t["meter"] for t in record["tests"]) == [f"pos-{n}" for n in range(1, 9)]
    assert all(m["identity"]["serial_number"].startswith("EMU") for m in record["meters"])
    suite = ET.parse(run / "junit.xml").getroot().find("testsuite")
    assert suite.get("tests") == "8" and len(list(suite.iter("testcase"))) == 8


HOLD = """
import sys, time
from smmc_bench.drivers.locks import ResourceLock
with ResourceLock(sys.argv[1], shared=sys.argv[2] == "shared"):
    print("held", flush=True)
    time.sleep(30)
"""


def holder(tmp_path, name: str, mode: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLD, name, mode], stdout=subprocess.PIPE, text=True,
                             env={"SMMC_BENCH_LOCKS": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert child.stdout.readline().strip() == "held"
    return child


def test_an_exclusive_holder_keeps_others_out_and_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("SMMC_BENCH_LOCKS", str(tmp_path))
    child = holder(tmp_path, "ac_source GPIB0::30::INSTR", "exclusive")
    try:
        with pytest.raises(ResourceBusy) as refused:
            ResourceLock("ac_source GPIB0::30::INSTR", shared=True, wait_s=0.3).acquire()
        assert f"pid {child.pid}" in refused.value.diagnosis and "GPIB0::30::INSTR" in refused.value.diagnosis
        with ResourceLock("load GPIB0::31::INSTR", wait_s=0.3):  # another resource is free
            pass
    finally:
        child.kill()
        child.wait()
    with ResourceLock("ac_source GPIB0::30::INSTR", wait_s=5):  # the kernel freed it with its holder
        pass


def test_shared_holders_coexist_but_keep_an_exclusive_one_out(tmp_path, monkeypatch):
    monkeypatch.setenv("SMMC_BENCH_LOCKS", str(tmp_path))
    child = holder(tmp_path, "ac_source TCPIP::192.0.2.20::5025::SOCKET", "shared")
    try:
        with ResourceLock("ac_source TCPIP::192.0.2.20::5025::SOCKET", shared=True, wait_s=0.3):
            pass
        with pytest.raises(ResourceBusy) as refused:
            ResourceLock("ac_source TCPIP::192.0.2.20::5025::SOCKET", wait_s=0.3).acquire()
        # A shared holder writes no pid: the kernel's lock table names it, not a stale pid in the file.
        assert f"held by pid {child.pid} (sharing it)" in refused.value.diagnosis, refused.value.diagnosis
    finally:
        child.kill()
        child.wait()


def test_a_refusal_names_the_present_holder_not_a_past_one(tmp_path, monkeypatch):
    monkeypatch.setenv("SMMC_BENCH_LOCKS", str(tmp_path))
    with ResourceLock("load TCPIP::192.0.2.21::5025::SOCKET"):  # leaves this pid in the lock file
        pass
    child = holder(tmp_path, "load TCPIP::192.0.2.21::5025::SOCKET", "shared")
    try:
        with pytest.raises(ResourceBusy) as refused:
            ResourceLock("load TCPIP::192.0.2.21::5025::SOCKET", wait_s=0.2).acquire()
        assert f"pid {child.pid}" in refused.value.diagnosis and f"pid {os.getpid()}" not in refused.value.diagnosis
    finally:
        child.kill()
        child.wait()


CRASHING_SUITE = """
import os


def test_before(meter):
    assert meter.session.is_associated


def test_crashes_its_worker_on_pos_2(meter):
    if meter.id == "pos-2":
        os._exit(3)  # the worker process dies under the test, as a segfault in a driver would


def test_after(meter):
    assert meter.session.is_associated
"""


def test_a_crashed_worker_gives_one_error_and_its_positions_go_on_in_a_replacement(tmp_path):
    suite = tmp_path / "test_crash_suite.py"
    suite.write_text(CRASHING_SUITE)
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-n", "2",
                             "--max-worker-restart", "2", "--smmc-bench", str(RACK),
                             "--smmc-run-dir", str(tmp_path / "run"), "--junitxml", str(tmp_path / "junit.xml"),
                             str(suite)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    verdicts = {t["id"].rsplit("::", 1)[-1]: t for t in record["tests"]}
    assert len(record["tests"]) == len(verdicts) == 24, sorted(verdicts)
    crashed = verdicts["test_crashes_its_worker_on_pos_2[pos-2]"]
    assert crashed["verdict"] == "ERROR" and crashed["meter"] == "pos-2", crashed
    assert "worker process ended" in crashed["diagnosis"]
    others = [t for name, t in verdicts.items() if name != "test_crashes_its_worker_on_pos_2[pos-2]"]
    assert all(t["verdict"] == "PASS" for t in others), [(t["id"], t["diagnosis"]) for t in others
                                                         if t["verdict"] != "PASS"]
    cases = list(ET.parse(tmp_path / "junit.xml").getroot().iter("testcase"))
    assert len(cases) == 24


def test_positions_that_share_a_wire_form_one_group():
    from smmc_bench.config import load_bench
    from smmc_bench.plugin.parallel import owner, position_groups

    groups = position_groups(load_bench(REPO / "examples" / "links.toml").meter)
    assert groups["bus-1"] == groups["bus-2"] == groups["bus-3"]  # RS-485 bus "A"
    assert groups["gw-1"] == groups["gw-2"] == groups["gw-3"]  # gateway "G"
    assert len({groups["opt-1"], groups["bus-1"], groups["sds-1"], groups["rfc-1"], groups["gw-1"]}) == 5
    assert sorted(set(groups.values())) == list(range(len(set(groups.values()))))
    rack = position_groups(load_bench(RACK).meter)  # 8 emulated positions, each its own group
    assert sorted(rack.values()) == list(range(8)) and {owner(g, 2) for g in rack.values()} == {0, 1}


def test_hardware_meters_on_one_serial_port_or_gateway_address_are_grouped(tmp_path):
    from smmc_bench.config import load_bench
    from smmc_bench.plugin.parallel import position_groups

    def meter(ident: str, link: str) -> str:
        return f'[[meter]]\nid = "{ident}"\nprofile = "emulated-idis"\n[meter.link]\n{link}\n'
    bench = tmp_path / "bench.toml"
    bench.write_text('[bench]\nstation_id = "HW"\n' + "".join([
        meter("a", 'kind = "rs485"\nbus = "left"\nport = "/dev/ttyUSB1"\nphysical_address = 17'),
        meter("b", 'kind = "rs485"\nbus = "right"\nport = "/dev/ttyUSB1"\nphysical_address = 18'),  # same port
        meter("c", 'kind = "hdlc-tcp"\nhost = "192.0.2.20"\nport = 4001'),
        meter("d", 'kind = "hdlc-tcp"\nhost = "192.0.2.20"\nport = 4001\nphysical_address = 18'),
        meter("e", 'kind = "optical"\nport = "/dev/ttyUSB2"'),
    ]))
    groups = position_groups(load_bench(bench).meter)
    assert groups["a"] == groups["b"] and groups["c"] == groups["d"] and len(set(groups.values())) == 3


def test_one_instrument_gets_one_lock_name_however_the_bench_file_spells_it(tmp_path):
    from types import SimpleNamespace

    from smmc_bench.instruments import lock_name

    def named(**settings) -> str:
        return lock_name("ac_source", SimpleNamespace(**settings))
    assert named(resource="tcpip::192.0.2.20::inst0::INSTR") == named(resource="TCPIP0::192.0.2.20::inst0")
    assert named(resource="GPIB::30") == named(resource="gpib0::30::INSTR") != named(resource="GPIB1::30::INSTR")
    assert named(resource="TCPIP::192.0.2.20::5025::SOCKET") == named(resource="TCPIP0::192.0.2.20::5025::SOCKET")
    device = tmp_path / "ttyUSB0"
    device.touch()
    (tmp_path / "usb-FTDI_FT232R-if00-port0").symlink_to(device)
    assert named(serial_port=str(tmp_path / "usb-FTDI_FT232R-if00-port0")) == named(serial_port=str(device))
    assert named(resource=f"ASRL{tmp_path}/usb-FTDI_FT232R-if00-port0::INSTR") == named(resource=f"ASRL{device}")
    assert named(host="Relay.lab", port=502) == named(host="relay.lab", port=502)


LATE_COLLECTION_CONFTEST = """
import os, time
from pathlib import Path
import pytest

MARKER = Path(__file__).with_name("crashed-once")


@pytest.hookimpl(wrapper=True)
def pytest_collection_finish(session):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker == "gw0":
        time.sleep(6)  # the first worker collects slowly
    result = yield  # xdist's worker sends its collection to the controller here
    if worker == "gw1" and not MARKER.exists():
        MARKER.touch()
        time.sleep(0.5)
        os._exit(3)  # the second worker dies once, right after its collection reached the controller
    return result
"""


def test_a_worker_crashing_after_collection_loses_no_other_workers_positions(tmp_path):
    """gw1 collects, dies, its replacement collects: two collections of two workers, while gw0 still
    collects. The run must wait for gw0 (xdist alone would start, shut gw0 down idle, and its four
    positions would vanish from a run that passed)."""
    (tmp_path / "conftest.py").write_text(LATE_COLLECTION_CONFTEST)
    suite = tmp_path / "test_late_suite.py"
    suite.write_text("def test_one(meter):\n    assert meter.session.is_associated\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-n", "2",
                             "--rootdir", str(tmp_path), "--max-worker-restart", "2", "--smmc-bench", str(RACK),
                             "--smmc-run-dir", str(tmp_path / "run"), str(suite)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert "replacing crashed worker gw1" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert sorted(t["meter"] for t in record["tests"]) == [f"pos-{n}" for n in range(1, 9)]
    assert record["collected"] == 8


def test_a_parallel_record_counts_the_tests_of_a_meter_as_a_sequential_one(tmp_path):
    """A test without a meter is no verdict of the record: counted as collected, every parallel run
    of a suite that has one would read as incomplete (`bench run`: "8 of 9 tests judged")."""
    suite = tmp_path / "test_mixed_suite.py"
    suite.write_text("def test_plain():\n    pass\n\n\ndef test_one(meter):\n    pass\n")
    records = []
    for workers in ("0", "2"):
        run = tmp_path / f"run-{workers}"
        result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", workers,
                                 "--rootdir", str(tmp_path), "--smmc-bench", str(RACK), "--smmc-run-dir", str(run),
                                 str(suite)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        records.append(json.loads((run / "record.json").read_text()))
    assert [(r["collected"], len(r["tests"])) for r in records] == [(8, 8), (8, 8)]


IDLE_SLOT_SUITE = """
import os, time


def test_first(meter):
    if meter.id == "pos-2":
        time.sleep(3)  # gw0, whose positions -k deselected, has finished and left meanwhile
        os._exit(3)


def test_second(meter):
    pass
"""


def test_a_crashed_workers_replacement_takes_its_slot_not_a_finished_workers(tmp_path):
    """-k leaves slot 0 no position: gw0 finishes at once. gw1 (slot 1) crashes: its replacement must
    serve slot 1, not the lowest slot no live worker holds (slot 0: the run was an INTERNALERROR, the
    position's other tests unrun)."""
    suite = tmp_path / "test_idle_slot_suite.py"
    suite.write_text(IDLE_SLOT_SUITE)
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
                             "--max-worker-restart", "2", "--rootdir", str(tmp_path), "--smmc-bench", str(RACK),
                             "--smmc-run-dir", str(tmp_path / "run"), "-k", "pos-2 or pos-4", str(suite)],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 1 and "INTERNALERROR" not in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    verdicts = {t["id"].rsplit("::", 1)[-1]: t["verdict"] for t in record["tests"]}
    assert verdicts == {"test_first[pos-2]": "ERROR", "test_second[pos-2]": "PASS",
                        "test_first[pos-4]": "PASS", "test_second[pos-4]": "PASS"}


SLEEPY_SUITE = """
import os, time
from pathlib import Path
import pytest

pytestmark = [pytest.mark.smmc_aspect(13)]


def test_sleeps(meter):
    (Path(os.environ["STARTED"]) / meter.id).touch()
    time.sleep(60)
"""


def test_an_interrupted_parallel_run_records_each_workers_test_and_safe_state(tmp_path):
    """Ctrl-C during `bench run -j 2`: the test each worker was running is an ERROR "interrupted" in the
    one record, and the safe state each worker read back of its own positions is listed (xdist's
    controller stops reading its workers at the interrupt: smmc_bench.plugin.parallel.drain_after_interrupt)."""
    import signal
    import time

    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_sleepy.py").write_text(SLEEPY_SUITE)
    started = tmp_path / "started"
    started.mkdir()
    run = subprocess.Popen([sys.executable, "-m", "smmc_bench.cli", "run", "--bench", str(RACK), "-j", "2",
                            "--suite", str(tmp_path / "suite"), "--reports", str(tmp_path / "reports")],
                           cwd=tmp_path, env={**os.environ, "STARTED": str(started)}, start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while len(list(started.iterdir())) < 2 and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGINT)  # as Ctrl-C at the terminal: the whole process group
    out, _ = run.communicate(timeout=120)
    assert run.returncode == 130, out[-3000:]
    (record_file,) = (tmp_path / "reports").glob("*/record.json")
    record = json.loads(record_file.read_text())
    assert record["interrupted"] and len(record["tests"]) == 2, record["tests"]
    assert all(t["verdict"] == "ERROR" and t["diagnosis"].startswith("interrupted (SIGINT)") for t in record["tests"])
    assert {t["meter"] for t in record["tests"]} == {p.name for p in started.iterdir()}
    meters = [line for line in record["safe_state"] if line.startswith("meter ")]
    assert sorted(meters) == sorted(f"meter pos-{n}: connected (read back)" for n in range(1, 9)), meters
    cases = list(ET.parse(record_file.parent / "junit.xml").getroot().iter("testcase"))
    assert len(cases) == 2 and all(case.get("name") and case.find("error") is not None for case in cases)
