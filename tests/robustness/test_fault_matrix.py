"""Fault matrix: every fault the proxy injects, on every kind of exchange a test makes (the
association, a GET and an ACTION of the test body, the SET of its restore), through the
bench's own code: the session, the COSEM views and the restore procedure of aspect 6.

For every case: no hang (each wait is bounded by the session timeout), no exception outside
the bench's hierarchy (no traceback), a verdict FAIL or ERROR with a one-line diagnosis when
the fault was seen (PASS when it could not be: a clock skew on a reply carrying no date-time),
and the meter connected in its original control mode afterwards."""
from __future__ import annotations

import time

import pytest
from smmc_bench.cosem.disconnect import ControlState, restore_connected
from smmc_bench.drivers.dlms.errors import DlmsError
from smmc_bench.fixtures.faults import KINDS, Fault, get_of, request_tag
from smmc_bench.fixtures.faults.proxy import AARQ, ACTION_REQUEST, SET_REQUEST
from smmc_bench.plugin.recorder import classify
from smmc_bench.report.record import Verdict
from smmc_bench.safety.restore import RestoreFailed, restore_all

from .conftest import DISCONNECT_OBIS, disconnect_control

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

TIMEOUT_S = 2.0  # ample for a loopback reply on a loaded machine
TARGETS = {
    "association": request_tag(AARQ),
    "GET in the test body": get_of(70, DISCONNECT_OBIS, 2),
    "ACTION in the test body": request_tag(ACTION_REQUEST),
    "SET in the restore": request_tag(SET_REQUEST),
}
MODES = [1, 2, 3, 4, 5, 6]


def run_test_like_the_bench(session):
    """The shape of test_remote_disconnect with its fixtures: associate, act, read, restore.
    Returns (verdict, diagnosis) as the bench's plugin would classify them."""
    failure: BaseException | None = None
    try:
        with session:
            dc = disconnect_control(session)
            try:
                dc.remote_disconnect()
                assert dc.output_state() is False
                assert dc.control_state() is ControlState.DISCONNECTED
            except (DlmsError, AssertionError) as exc:
                failure = exc
            finally:
                try:
                    restore_all("disconnect control", [("reconnect", lambda: restore_connected(dc, MODES, 2))],
                                state=lambda: f"control_state {dc.control_state().name}")
                except RestoreFailed as exc:
                    failure = failure or exc
    except DlmsError as exc:  # the association itself (setup)
        failure = failure or exc
    if failure is None:
        return Verdict.PASS, ""
    return classify(failure), str(getattr(failure, "diagnosis", None) or failure)


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("kind", KINDS)
def test_fault_gives_a_diagnosed_verdict_and_leaves_the_meter_restored(emulated, proxy, session_via, kind, target):
    proxy.fault = Fault(kind, requests=TARGETS[target], delay_s=1.5 * TIMEOUT_S, skew_s=3600)
    started = time.monotonic()
    verdict, diagnosis = run_test_like_the_bench(session_via(timeout=TIMEOUT_S))
    took = time.monotonic() - started
    assert proxy.applied, f"the {kind} fault never fired on the {target}"
    # bounded: a handful of exchanges, at most three of them waiting out the timeout
    assert took < 3 * TIMEOUT_S + 5.0
    if kind == "clock-skew":
        assert verdict is Verdict.PASS  # none of these replies carries a date-time
    else:
        assert verdict in (Verdict.PASS, Verdict.FAIL, Verdict.ERROR)
        if verdict is not Verdict.PASS:
            assert diagnosis and "\n" not in diagnosis
        if target != "SET in the restore":
            assert verdict is not Verdict.PASS, f"{kind} on the {target} went unnoticed"
    state = emulated.state
    assert (state.control_state, state.output_state) == (ControlState.CONNECTED, True), diagnosis
    assert emulated.disconnect_control.control_mode == 2, diagnosis


def test_clock_skew_shifts_the_clock_the_bench_reads(emulated, proxy, session_via):
    from smmc_bench.cosem.clock import Clock
    with session_via() as session:
        clock = Clock(session, "0.0.1.0.0.255")
        before = clock.read().time
        proxy.fault = Fault("clock-skew", requests=get_of(8, bytes((0, 0, 1, 0, 0, 255)), 2), skew_s=3600)
        skewed = clock.read().time
    assert 3500 < (skewed - before).total_seconds() < 3700
