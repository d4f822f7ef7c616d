"""A meter that keeps the link busy without answering (endless RR/RNR) must not hold the
bench: the request ends in DlmsTimeout after a bounded time."""
from __future__ import annotations

import threading
import time

import pytest
from smmc_bench.drivers.dlms.errors import DlmsTimeout
from smmc_bench.drivers.dlms.trace import FrameTrace
from smmc_bench.drivers.links import hdlc
from smmc_bench.drivers.links.hdlc import Frame, HdlcParameters, Kind
from smmc_bench.drivers.links.hdlc_transport import HdlcTransport


class EndlessSupervisoryMeter:
    """Accepts SNRM, then answers everything with an RR or RNR every 50 ms, forever."""

    peer = "endless-rr"

    def __init__(self, kind: Kind) -> None:
        self.trace = FrameTrace()
        self.kind = kind
        self.pending = b""
        self.connected = False

    def open(self) -> None: ...
    def close(self) -> None: ...
    def begin(self, timeout: float) -> None: ...
    def end(self) -> None: ...

    def drain(self) -> bytes:
        return b""

    def write(self, data: bytes) -> None:
        frame = hdlc.decode(data)
        if frame.kind is Kind.SNRM:
            self.pending += hdlc.encode(Frame(Kind.UA, frame.source, frame.destination, poll=True,
                                              info=hdlc.encode_parameters(HdlcParameters(128, 128, 1, 1))))
            return
        self.connected = True
        self.client, self.server = frame.source, frame.destination
        self.acknowledged = (frame.send_seq + 1) & 7 if frame.kind is Kind.I else 0

    def read(self, timeout: float) -> bytes:
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        time.sleep(min(timeout, 0.05))
        if not self.connected:
            return b""
        return hdlc.encode(Frame(self.kind, self.client, self.server, poll=True, recv_seq=self.acknowledged))


@pytest.mark.parametrize("kind, request_size", [(Kind.RR, 10), (Kind.RNR, 10), (Kind.RNR, 300)])
def test_endless_rr_or_rnr_ends_in_a_timeout(kind, request_size):
    transport = HdlcTransport(EndlessSupervisoryMeter(kind), timeout=0.3, connect_timeout=0.3, poll_timeout=0.2)
    transport.open(1, 1)
    outcome: dict = {}

    def exchange() -> None:
        try:
            transport.send(b"\xc0\x01\xc1" + b"x" * request_size)
            transport.receive(0.3)
        except DlmsTimeout as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=exchange, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the transport is still waiting on a meter that never answers"
    assert "error" in outcome and outcome["error"].diagnosis


class Babble:
    """A line with noise every 20 ms that never goes quiet."""

    trace = FrameTrace()
    peer = "babble"

    def open(self) -> None: ...
    def close(self) -> None: ...
    def begin(self, timeout: float) -> None: ...
    def end(self) -> None: ...

    def drain(self) -> bytes:
        return b""

    def write(self, data: bytes) -> None: ...

    def read(self, timeout: float) -> bytes:
        time.sleep(min(timeout, 0.02))
        return b"\x00\x55"


def test_probe_on_a_line_that_never_goes_quiet_gives_up():
    from smmc_bench.drivers.links.probe import HdlcProbe

    probe = HdlcProbe(Babble(), physical_address=None, address_size=None, proposal=None, timeout=0.2,
                      connect_timeout=0.2, retries=1, answer_window=0.1)
    probe.begin(16, 1)
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("answer", probe.snrm(None)), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the probe is still listening to a line that never goes quiet"
    assert outcome["answer"].never_quiet and "never quiet" in outcome["answer"].describe()
