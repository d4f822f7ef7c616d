"""The fault matrix through the whole bench: test_remote_disconnect (aspect 6) run as a pytest
subprocess against the emulated meter behind the fault proxy, with each fault spoiling the reply
to the test body's first GET of output_state (the issue's case for "late": one reply delayed past
the timeout). For every fault: no hang, no crash on the console (no INTERNALERROR, no exception
group, no exception in a thread), a verdict with a one-line diagnosis in the record, and the meter
connected in its original control mode afterwards (the restore did its work)."""
from __future__ import annotations

import pytest
from smmc_bench.cosem.disconnect import ControlState
from smmc_bench.fixtures.faults import KINDS, Fault, get_of

from .conftest import DISCONNECT_OBIS, LINK_TIMEOUT_S, run_bench, verdicts

TEST = "tests/conformance/test_aspect06_connect_disconnect.py::test_remote_disconnect"
# What the bench must say when the fault hits that GET: the meter's non-conformity (FAIL) when a
# reply arrived but broke the standard, ERROR when no judgeable answer came.
EXPECTED = {"garbage": "FAIL", "truncation": "FAIL", "bitflip": "FAIL", "late": "ERROR", "silence": "ERROR",
            "fin": "ERROR", "reset": "ERROR", "clock-skew": "PASS"}
CRASH_SIGNS = [b"INTERNALERROR", b"ExceptionGroup", b"Exception in thread", b"Traceback (most recent call last)"]


@pytest.mark.parametrize("kind", KINDS)
def test_bench_verdict_and_restore_under_each_fault(tmp_path, emulated, proxy, kind):
    proxy.fault = Fault(kind, requests=get_of(70, DISCONNECT_OBIS, 2), delay_s=1.5 * LINK_TIMEOUT_S)
    run, out = run_bench(tmp_path, proxy.address[1], [TEST], "--tb=short", timeout_s=120)
    console = run.stdout + run.stderr
    assert proxy.applied, console.decode()[-2000:]
    assert not [sign for sign in CRASH_SIGNS if sign in console], console.decode()[-3000:]
    ((verdict, diagnosis),) = verdicts(out / "run").values()
    assert verdict == EXPECTED[kind], diagnosis
    if verdict != "PASS":
        assert diagnosis and "\n" not in diagnosis and "teardown" not in diagnosis, diagnosis
    state = emulated.state
    assert (state.control_state, state.output_state) == (ControlState.CONNECTED, True), diagnosis
    assert emulated.disconnect_control.control_mode == 2, diagnosis
