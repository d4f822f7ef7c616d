"""A raw HDLC probe for data-link conformance tests (in the spirit of the DLMS UA
HDLC test groups): sends well-formed and deliberately faulty frames and reports
what the meter answered, frame by frame. Also a Transport, so a DLMS session
can run over the connection it set up.

The byte-level work lives here so the tests read as stimuli and expectations.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from gurux_dlms import GXDLMSClient
from gurux_dlms.enums import Authentication as GxAuthentication
from gurux_dlms.enums import InterfaceType
from smmc_bench.drivers.dlms._gurux_quiet import gurux_to_log

from . import hdlc
from .hdlc import Address, BadFrame, Frame, Garbage, HdlcParameters, Kind
from .hdlc_transport import HdlcTransport


@dataclass
class Answer:
    """Everything the meter sent in reply to one stimulus, in order."""

    frames: list[Frame] = field(default_factory=list)
    bad_frames: int = 0
    garbage_bytes: int = 0
    never_quiet: bool = False  # the line kept sending until the probe gave up listening

    @property
    def silent(self) -> bool:
        return not self.frames and not self.bad_frames and not self.garbage_bytes

    @property
    def kinds(self) -> list[str]:
        return [frame.kind.value for frame in self.frames]

    @property
    def processed(self) -> bool:
        """An I-frame came back: the meter took the request to its application layer."""
        return any(frame.kind is Kind.I for frame in self.frames)

    def first(self, kind: Kind) -> Frame | None:
        return next((frame for frame in self.frames if frame.kind is kind), None)

    def describe(self) -> str:
        if self.silent:
            return "no answer"
        if self.never_quiet:
            return f"line never quiet ({len(self.frames)} frames, {self.bad_frames} bad, {self.garbage_bytes} stray bytes)"
        parts = [frame.describe() for frame in self.frames]
        if self.bad_frames:
            parts.append(f"{self.bad_frames} bad frame(s)")
        if self.garbage_bytes:
            parts.append(f"{self.garbage_bytes} stray bytes")
        return "; ".join(parts)


def public_aarq(client_sap: int, server_logical: int) -> bytes:
    """An AARQ without authentication: the request the stimuli carry."""
    with gurux_to_log():
        client = GXDLMSClient(True, client_sap, server_logical, GxAuthentication.NONE, None, InterfaceType.PDU)
        return bytes(client.aarqRequest()[0])


class HdlcProbe(HdlcTransport):
    """An HDLC transport that also sends stimuli and collects raw answers.

    Oversized information fields from the meter are recorded (stats.max_info_received)
    rather than refused, so a test can measure them."""

    lenient_info_length = True

    def __init__(self, *args, answer_window: float = 0.3, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.answer_window = answer_window

    # --- connection handling for a session run over the probe ---------------------

    def begin(self, client_sap: int, server_logical: int) -> None:
        """Open the line and set the addresses, without any frame."""
        self.client = Address.client(client_sap)
        self.server = Address.server(server_logical, self.physical_address, self.address_size)
        self.stream.open()

    def open(self, client_address: int, server_address: int) -> None:
        # A DLMS session over the probe uses the connection the probe set up.
        if self.is_connected:
            return
        super().open(client_address, server_address)

    def end(self) -> None:
        """Close the line (DISC first if connected)."""
        super().close()

    def close(self) -> None:
        """A session ending over the probe leaves the connection to the probe: end() closes the line."""

    # --- stimuli -----------------------------------------------------------------------

    def stimulus(self, raw: bytes, summary: str, window: float | None = None) -> Answer:
        """Send bytes as they are; collect what comes back until the line is quiet for `window` s."""
        self.stream.begin(self.timeout)
        try:
            self._discard_stale("before a stimulus")
            self.send_raw(raw, summary)
            return self._collect(self.answer_window if window is None else window)
        finally:
            self.stream.end()

    def _collect(self, window: float) -> Answer:
        """Until the line is quiet for `window` s, or shortly after a frame that hands the turn back (F)."""
        answer = Answer()
        grace = min(window, 0.05)  # time for a second station's (colliding or duplicate) answer
        quiet_until = time.monotonic() + window
        # A line that never goes quiet (noise, a babbling station) must not hold the probe.
        give_up = time.monotonic() + window + max(self.timeout, window) * 4
        while True:
            remaining = min(quiet_until, give_up) - time.monotonic()
            if remaining <= 0:
                if time.monotonic() >= give_up:
                    answer.never_quiet = True
                break
            chunk = self.stream.read(remaining)
            if not chunk:
                continue
            self._pump(chunk)
            while self._events:
                event = self._events.popleft()
                if isinstance(event, Frame):
                    answer.frames.append(event)
                elif isinstance(event, BadFrame):
                    answer.bad_frames += 1
                elif isinstance(event, Garbage):
                    answer.garbage_bytes += len(event.raw)
            last = answer.frames[-1] if answer.frames else None
            final = last is not None and last.poll and not last.segmented and not answer.bad_frames
            quiet_until = time.monotonic() + (grace if final else window)
        held = self._reader.clear()
        if held.strip(bytes((hdlc.FLAG,))):
            self._note_garbage(held, "incomplete frame", queue=False)
            answer.garbage_bytes += len(held)
        self.wire_trace.record("--", b"", f"answer: {answer.describe()}")
        return answer

    def snrm(self, parameters: HdlcParameters | None, *, physical: int | None = None) -> Answer:
        """SNRM with (or without) a parameter field, to our server or to another physical address.
        A UA from our server sets up the connection as connect() would."""
        target = self.server if physical is None else Address.server(self.server.logical, physical)
        info = hdlc.encode_parameters(parameters) if parameters else b""
        frame = Frame(Kind.SNRM, target, self.client, poll=True, info=info)
        answer = self.stimulus(hdlc.encode(frame), frame.describe())
        ua = answer.first(Kind.UA)
        if ua is not None and physical is None:
            proposal = parameters or hdlc.DEFAULT_PARAMETERS
            meter = hdlc.parse_parameters(ua.info)
            self.ua_parameters = meter
            self.negotiated = HdlcParameters(min(proposal.max_info_tx, meter.max_info_rx), meter.max_info_tx,
                                             min(proposal.window_tx, meter.window_rx), meter.window_tx)
            self._vs = self._vr = 0
            self._out_of_step = ""
            self._connected = True
        return answer

    def disc(self) -> Answer:
        frame = Frame(Kind.DISC, self.server, self.client, poll=True)
        answer = self.stimulus(hdlc.encode(frame), frame.describe())
        self._connected = False
        return answer

    def information(self, apdu: bytes, *, send_seq: int | None = None, corrupt: str | None = None,
                    pad_to: int | None = None) -> Answer:
        """One I-frame carrying `apdu` (LLC header added): with our N(S) unless `send_seq`, with a
        damaged `corrupt` ("fcs" or "hcs") check sequence, or zero-padded to `pad_to` bytes of information.
        Advances our sequence numbers only when the meter answers it in sequence."""
        info = hdlc.LLC_REQUEST + apdu
        if pad_to is not None:
            info = info.ljust(pad_to, b"\x00")
        seq = self._vs if send_seq is None else send_seq & 7
        frame = Frame(Kind.I, self.server, self.client, poll=True, send_seq=seq, recv_seq=self._vr, info=info)
        raw = hdlc.encode(frame)
        summary = frame.describe()
        if corrupt:
            raw = hdlc.corrupt(raw, corrupt)
            summary += f" with a wrong {corrupt.upper()}"
        answer = self.stimulus(raw, summary)
        reply = answer.first(Kind.I)
        if reply is not None and seq == self._vs and reply.recv_seq == (seq + 1) & 7:
            self._vs = (seq + 1) & 7
            self._vr = (reply.send_seq + 1) & 7
        return answer

    def public_request(self) -> bytes:
        return public_aarq(self.client.logical, self.server.logical)

    # The probe measures oversized fields instead of refusing them.
    def _receive_information(self, timeout: float):
        negotiated = self.negotiated
        if self.lenient_info_length and negotiated is not None:
            self.negotiated = HdlcParameters(negotiated.max_info_tx, hdlc.MAX_INFO_LENGTH,
                                             negotiated.window_tx, negotiated.window_rx)
        try:
            return super()._receive_information(timeout)
        finally:
            self.negotiated = negotiated
