"""The HDLC transport against the emulated meter on a real pty: negotiation,
segmentation both ways, windows, recovery (RR polls, then DISC/SNRM and
re-association), strictness, timeouts and a line that dies mid-exchange."""
from __future__ import annotations

import threading
import time

import pytest
from smmc_bench.drivers.dlms import DataType, Typed
from smmc_bench.drivers.dlms.errors import (
    ConnectFailed,
    DlmsTimeout,
    LinkClosed,
    LinkOutOfStep,
    MalformedReply,
)
from smmc_bench.drivers.links import hdlc
from smmc_bench.drivers.links.hdlc import HdlcParameters
from smmc_bench.fixtures.links.hdlc_server import HdlcEndpoint, LinkBehaviour
from smmc_bench.fixtures.links.hdlc_wire import Kind

from .conftest import PASSWORD, endpoint, hdlc_transport, management, public

SERIAL = "0.0.96.1.0.255"
BIG = HdlcParameters.symmetric(2030, 7)


@pytest.mark.parametrize("proposal, capability", [
    (HdlcParameters(), HdlcParameters()),                       # 128 / window 1 both ways
    (HdlcParameters.symmetric(32, 1), BIG),                     # smallest field: many segments each way
    (HdlcParameters.symmetric(64, 7), HdlcParameters.symmetric(64, 3)),  # windows of 3
    (BIG, BIG),                                                 # one frame for each APDU
    (None, BIG),                                                # SNRM without parameters: defaults
])
def test_session_over_hdlc_negotiates_and_segments(emu, pty_line, proposal, capability):
    port, _ = pty_line([endpoint(emu, capability=capability)])
    transport = hdlc_transport(port, proposal=proposal)
    with management(transport) as session:
        assert session.get(1, SERIAL, 2) == b"EMU0000001"
        objects = session.object_list()
    expected = hdlc.negotiate(proposal or HdlcParameters(), capability).mirrored()
    assert transport.negotiated == expected
    assert len(objects) > 10
    assert transport.stats.max_info_received <= expected.max_info_rx
    assert transport.stats.max_info_sent <= expected.max_info_tx
    assert transport.stats.line_errors() == 0


def test_password_masked_in_wire_trace_across_segments(emu, pty_line):
    port, _ = pty_line([endpoint(emu, capability=BIG)])
    transport = hdlc_transport(port, proposal=HdlcParameters.symmetric(32))
    with management(transport) as session:
        session.get(1, SERIAL, 2)
        dlms_trace = session.trace
    wire = transport.wire_trace.to_text()
    assert "(secret masked)" in wire
    for text in (wire, dlms_trace.to_text()):
        assert PASSWORD.hex() not in text
        # Not even a half of it in one frame.
        assert PASSWORD[: len(PASSWORD) // 2].hex() not in text and PASSWORD[len(PASSWORD) // 2:].hex() not in text


def test_bad_fcs_every_5th_frame_is_recovered_by_rr_polls(emu, pty_line):
    port, _ = pty_line([endpoint(emu, behaviour=LinkBehaviour(bad_fcs_every=5))])
    transport = hdlc_transport(port)
    with management(transport) as session:
        for _ in range(3):
            assert len(session.object_list()) > 10
    assert transport.stats.bad_frames >= 3
    # Every bad frame inside an exchange is recovered by one RR poll; the frame that ends the association
    # may be the bad one, and its recovery is not a poll.
    assert transport.stats.bad_frames - 1 <= transport.stats.polls <= transport.stats.bad_frames
    assert session.recoveries == 0


class LosesRequests(HdlcEndpoint):
    """Drops the first copy of every 4th I-frame it receives (as if the line ate it)."""

    seen = 0

    def handle(self, frame):
        if frame.kind is Kind.I:
            self.seen += 1
            if self.seen % 4 == 0:
                return []
        return super().handle(frame)


def test_lost_request_segment_is_sent_again(emu, pty_line):
    port, _ = pty_line([endpoint(emu, capability=BIG, cls=LosesRequests)])
    transport = hdlc_transport(port, proposal=HdlcParameters.symmetric(32), timeout=0.3, poll_timeout=0.2)
    with management(transport) as session:
        for _ in range(3):
            assert session.get(1, SERIAL, 2) == b"EMU0000001"
    assert transport.stats.retransmissions >= 1


class GarblesAfterAssociation(HdlcEndpoint):
    """Every reply frame garbled (wrong FCS) for requests number `from_request`..; `heal_on_snrm`."""

    def __init__(self, *args, from_request: int = 3, heal_on_snrm: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.from_request, self.heal_on_snrm = from_request, heal_on_snrm
        self.requests = 0
        self.garbling = False

    def handle(self, frame):
        if frame.kind is Kind.SNRM and self.heal_on_snrm:
            self.garbling = False
        if frame.kind is Kind.I and not frame.segmented:
            self.requests += 1
            if self.requests == self.from_request:
                self.garbling = True
        out = super().handle(frame)
        if self.garbling and frame.kind in (Kind.I, Kind.RR):
            return [hdlc.corrupt(raw, "fcs") for raw in out]
        return out


def test_get_survives_a_lost_step_by_disc_snrm_and_reassociation(emu, pty_line):
    port, _ = pty_line([endpoint(emu, cls=GarblesAfterAssociation)])
    transport = hdlc_transport(port, retries=2, timeout=0.5)
    with management(transport) as session:
        assert session.get(1, SERIAL, 2) == b"EMU0000001"          # request 2
        assert session.get(1, SERIAL, 2) == b"EMU0000001"          # request 3: garbled, recovered
        assert session.recoveries == 1
    kinds = transport.wire_trace.to_text()
    assert "link recovery" in session.trace.to_text() and kinds.count("SNRM") >= 2


def test_set_after_a_lost_step_is_not_repeated_and_says_so(emu, pty_line):
    port, _ = pty_line([endpoint(emu, cls=GarblesAfterAssociation)])
    transport = hdlc_transport(port, retries=1, timeout=0.5)
    with management(transport) as session:
        session.get(8, "0.0.1.0.0.255", 3)
        with pytest.raises(LinkOutOfStep, match="outcome is unknown"):
            session.set(8, "0.0.1.0.0.255", 3, Typed(DataType.LONG, 240))
        assert session.is_associated  # recovered: the next request works
        assert session.get(1, SERIAL, 2) == b"EMU0000001"


def test_recovery_that_fails_is_an_error_naming_both(emu, pty_line):
    port, _ = pty_line([endpoint(emu, cls=GarblesAfterAssociation, heal_on_snrm=False, from_request=2)])
    transport = hdlc_transport(port, retries=1, timeout=0.4)
    started = time.monotonic()
    with pytest.raises(LinkOutOfStep, match="recovery by DISC/SNRM and re-association failed"):
        with management(transport) as session:
            session.get(1, SERIAL, 2)
    assert time.monotonic() - started < 6


class Mute(HdlcEndpoint):
    def handle(self, frame):
        return [] if frame.kind is Kind.I else super().handle(frame)


def test_silent_meter_times_out_within_timeout_and_one_poll(emu, pty_line):
    port, _ = pty_line([endpoint(emu, cls=Mute)])
    transport = hdlc_transport(port, timeout=0.5, poll_timeout=0.3)
    session = public(transport, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DlmsTimeout, match="no reply"):
        session.connect()
    assert time.monotonic() - started < 0.5 + 0.3 + 1.5  # timeout + one poll, with room for a loaded machine


def test_no_ua_is_connect_failed(emu, pty_line):
    port, _ = pty_line([endpoint(emu, physical=0x20, point_to_point=False)])
    transport = hdlc_transport(port, physical=0x21, timeout=0.3)
    with pytest.raises(ConnectFailed, match="no UA"):
        public(transport).connect()


class Blocks(HdlcEndpoint):
    def handle(self, frame):
        if frame.kind is Kind.I:
            time.sleep(1.0)
        return super().handle(frame)


def test_pty_closed_mid_exchange_is_link_closed_at_once(emu, pty_line):
    port, line = pty_line([endpoint(emu, cls=Blocks)])
    transport = hdlc_transport(port, timeout=5.0)
    session = public(transport, timeout=5.0)
    threading.Timer(0.3, line.medium.close).start()  # the emulator's end of the pty goes away
    started = time.monotonic()
    with pytest.raises(LinkClosed):
        session.connect()
    assert time.monotonic() - started < 4.0  # at once, not after the 5 s timeout


def test_reply_longer_than_negotiated_is_malformed(emu, pty_line):
    port, _ = pty_line([endpoint(emu, capability=BIG, behaviour=LinkBehaviour(ignore_info_length=True))])
    transport = hdlc_transport(port)
    with management(transport) as session:
        with pytest.raises(MalformedReply, match="more than the 128 negotiated"):
            session.object_list()


def test_unsolicited_bytes_before_a_request_are_an_error(emu, pty_line):
    port, line = pty_line([endpoint(emu)])
    transport = hdlc_transport(port)
    with public(transport) as session:
        line.medium.write(b"\x7e\xa0\x07garbage")
        deadline = time.monotonic() + 10
        while not transport.stream._port.in_waiting and time.monotonic() < deadline:
            time.sleep(0.01)  # until the garbage is there to be found (an event, bounded)
        with pytest.raises(MalformedReply, match="unsolicited"):
            session.get(1, SERIAL, 2)


def test_echoing_line_is_named_in_the_diagnosis_or_cancelled(emu, pty_line):
    # Generous bounds: each wait ends at the event (the echo, the answer), so a loaded machine only waits longer.
    port, _ = pty_line([endpoint(emu)], probe_echo=True)
    with pytest.raises(MalformedReply, match="set echo = true"):
        public(hdlc_transport(port, timeout=10.0)).connect()
    from smmc_bench.drivers.links.hdlc_transport import HdlcTransport
    from smmc_bench.drivers.links.stream import SerialStream
    # A line of its own: the first half's UA may still be on its way (however late) on the first one.
    port, _ = pty_line([endpoint(emu)], probe_echo=True)
    transport = HdlcTransport(SerialStream(port, echo=True, connect_timeout=10.0), timeout=10.0, connect_timeout=10.0)
    with public(transport) as session:
        assert session.get(1, SERIAL, 2) == b"EMU0000001"
