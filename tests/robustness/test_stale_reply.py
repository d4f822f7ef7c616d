"""The issue's case: one reply delayed past the timeout. The session must never take it as the
answer to the next request: the restore that follows reads what it asks for, and the meter
ends connected in its original control mode."""
from __future__ import annotations

import pytest
from smmc_bench.cosem.disconnect import ControlState, restore_connected
from smmc_bench.drivers.dlms.errors import DlmsTimeout
from smmc_bench.fixtures.faults import Fault, get_of

from .conftest import DISCONNECT_OBIS, LATE_S, disconnect_control


def test_late_reply_is_never_taken_for_the_next_one(emulated, proxy, session_via):
    session = session_via()
    with session:
        dc = disconnect_control(session)
        dc.remote_disconnect()
        # The test body's GET output_state gets its reply after the timeout...
        proxy.fault = Fault("late", requests=get_of(70, DISCONNECT_OBIS, 2), delay_s=LATE_S)
        with pytest.raises(DlmsTimeout):
            dc.output_state()
        assert proxy.applied == ["late on a 14-byte reply"]  # the boolean output_state
        # ...and the restore's GET control_state must read control_state, not that late output_state.
        assert dc.control_state() is ControlState.DISCONNECTED
        restore_connected(dc, [1, 2, 3, 4, 5, 6], 2)
        assert dc.control_mode() == 2
    assert session.recoveries == 1  # the link was resynchronised once, before the restore's first request
    state = emulated.state
    assert (state.control_state, state.output_state) == (ControlState.CONNECTED, True)
    assert emulated.disconnect_control.control_mode == 2
    assert any("resynchronised after no reply" in e.summary for e in session.trace)


def test_each_request_has_its_own_invoke_id(emulated, proxy, session_via):
    session = session_via()
    with session:
        dc = disconnect_control(session)
        for _ in range(3):
            dc.control_state()
    sent = [e.raw for e in session.trace if e.direction == "tx" and e.raw[8:9] == b"\xc0"]
    assert [raw[8 + 2] & 0x0F for raw in sent] == [1, 2, 3]
