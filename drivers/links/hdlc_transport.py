"""HDLC (IEC 62056-46) client transport over any byte stream: SNRM/UA with the
negotiated parameters, I-frame segmentation with windows and RR, DISC at close.

Recovery is bounded and in two levels. A garbled or missing frame is asked for
again with an RR poll (HDLC checkpointing), at most `retries` times per frame.
When that is exhausted, or the meter rejects a frame (FRMR), `LinkOutOfStep` is
raised: the DLMS session then closes the link (DISC), opens it again (SNRM) and
re-associates once before it reports the error.

Strict: a frame from another address, an information field longer than
negotiated, a wrong LLC header or bytes arriving unasked are errors.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace

from smmc_bench.drivers.dlms.errors import (
    ConnectFailed,
    DlmsTimeout,
    LinkClosed,
    LinkOutOfStep,
    MalformedReply,
)
from smmc_bench.drivers.dlms.trace import FrameTrace

from . import hdlc
from .hdlc import Address, BadFrame, Frame, FrameError, Garbage, HdlcParameters, Kind
from .stream import ByteStream

_MASK = 0x2A
LINE_ERROR = "line-error"   # _next_event: bad frames or garbage, then the line went quiet


@dataclass
class LinkStats:
    """What the data link saw: the data-link tests and the benchmark read these."""

    frames_sent: int = 0
    frames_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    bad_frames: int = 0            # wrong HCS/FCS/length
    garbage_bytes: int = 0         # bytes outside any frame
    out_of_sequence: int = 0
    polls: int = 0                 # RR polls sent to recover a frame
    retransmissions: int = 0       # our frames sent again
    max_info_received: int = 0
    max_info_sent: int = 0
    payload_sent: int = 0          # APDU bytes (without LLC)
    payload_received: int = 0

    def line_errors(self) -> int:
        return self.bad_frames + (1 if self.garbage_bytes else 0) + self.out_of_sequence


class HdlcTransport:
    """Transport for DlmsSession over HDLC: `open(client SAP, server logical address)`."""

    def __init__(self, stream: ByteStream, *, physical_address: int | None = None, address_size: int | None = None,
                 proposal: HdlcParameters | None = hdlc.DEFAULT_PARAMETERS, timeout: float = 5.0,
                 connect_timeout: float = 5.0, retries: int = 3, poll_timeout: float = 1.0,
                 quiet_time: float = 0.05) -> None:
        self.stream = stream
        self.wire_trace: FrameTrace = stream.trace
        self.physical_address, self.address_size = physical_address, address_size
        # None: SNRM without a parameter field (the meter must then use the defaults, 128 bytes and window 1).
        self.proposal = proposal
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.retries, self.poll_timeout, self.quiet_time = retries, poll_timeout, quiet_time
        self.negotiated: HdlcParameters | None = None   # our point of view: tx = what we send
        self.ua_parameters: HdlcParameters | None = None  # as the meter's UA stated them (its point of view)
        self.stats = LinkStats()
        self.swapped_check_sequence: bytes | None = None  # a bad frame valid with HCS/FCS high byte first
        self.client: Address | None = None
        self.server: Address | None = None
        self._connected = False
        self._out_of_step = ""
        self._vs = self._vr = 0
        self._reader = hdlc.FrameReader()
        self._events: deque = deque()
        self._unacked: list[tuple[int, Frame, bytes | None]] = []  # our I-frames not yet acknowledged
        self._secrets: list[bytes] = []

    # --- Transport protocol -----------------------------------------------------------

    @property
    def peer(self) -> str:
        where = self.server.describe() if self.server else "?"
        return f"{self.stream.peer} HDLC {where}"

    @property
    def is_connected(self) -> bool:
        return self._connected

    def redact(self, secret: bytes) -> None:
        """Mask `secret` in the wire trace, also when a segment boundary splits it."""
        if secret and secret not in self._secrets:
            self._secrets.append(bytes(secret))
            self.wire_trace.redact(secret)

    def open(self, client_address: int, server_address: int) -> None:
        self.client = Address.client(client_address)
        try:
            self.server = Address.server(server_address, self.physical_address, self.address_size)
        except ValueError as exc:
            raise ConnectFailed(f"HDLC address {server_address}/{self.physical_address}: {exc}",
                                reason="address") from None
        self.stream.open()
        try:
            self.stream.begin(self.connect_timeout)
            try:
                self.connect()
            finally:
                self.stream.end()
        except BaseException:
            self.stream.close()
            raise

    def send(self, apdu: bytes) -> bytes:
        self._require_connected()
        if self._out_of_step:
            raise LinkOutOfStep(f"{self.peer}: the link is out of step since a malformed reply "
                                f"({self._out_of_step})")
        self.stream.begin(self.timeout)
        try:
            self._reject_unsolicited()
            data = hdlc.LLC_REQUEST + apdu
            shown = hdlc.LLC_REQUEST + self._masked(apdu)
            sent = self._send_information(data, shown)
            self.stats.payload_sent += len(apdu)
            return sent
        except BaseException:
            self.stream.end()
            raise

    def receive(self, timeout: float) -> tuple[bytes, bytes]:
        try:
            self._require_connected()
            try:
                frames, info = self._receive_information(timeout)
            except MalformedReply as exc:
                # Sequence numbers and segments no longer agree: the next request starts a new connection.
                self._out_of_step = exc.diagnosis
                raise
            if info[:3] != hdlc.LLC_RESPONSE:
                raise MalformedReply(f"{self.peer}: reply starts {info[:3].hex()}, not the LLC response "
                                     f"header e6e700", raw=frames)
            self.stats.payload_received += len(info) - 3
            return frames, info[3:]
        finally:
            self.stream.end()

    def close(self) -> None:
        if self._connected:
            try:
                self.stream.begin(min(self.timeout, 2.0))
                try:
                    self.disconnect(min(self.timeout, 1.0))
                finally:
                    self.stream.end()
            except (LinkClosed, DlmsTimeout, MalformedReply, LinkOutOfStep):
                pass  # the link is going away either way
        self._connected = False
        self.stream.close()

    # --- connection ----------------------------------------------------------------------

    def connect(self) -> HdlcParameters:
        """SNRM (with the proposal, or without parameters) and the meter's UA; return what was negotiated."""
        proposal = self.proposal or hdlc.DEFAULT_PARAMETERS
        info = hdlc.encode_parameters(self.proposal) if self.proposal else b""
        snrm = Frame(Kind.SNRM, self.server, self.client, poll=True, info=info)
        for attempt in range(self.retries + 1):
            self._connected = False
            self._discard_stale("before SNRM")  # a new connection: whatever came before does not count
            self._send_frame(snrm)
            answer = self._await_unnumbered(self.connect_timeout)
            if answer is None:
                if self.swapped_check_sequence is not None:
                    raise MalformedReply(f"{self.peer}: answers SNRM with frames whose HCS/FCS is sent high byte "
                                         f"first (IEC 62056-46: low byte first)", raw=self.swapped_check_sequence)
                if self.stats.line_errors() and attempt < self.retries:
                    continue
                raise ConnectFailed(f"{self.peer}: no UA to SNRM within {self.connect_timeout:g} s",
                                    reason="no UA")
            if answer.kind is Kind.DM:
                raise ConnectFailed(f"{self.peer}: meter answered DM to SNRM (it refuses the connection)",
                                    reason="DM")
            if answer.kind is not Kind.UA:
                raise MalformedReply(f"{self.peer}: {answer.describe()} in answer to SNRM", raw=answer.raw)
            break
        try:
            ua = hdlc.parse_parameters(answer.info)
        except FrameError as exc:
            raise MalformedReply(f"{self.peer}: UA parameters not understood: {exc}", raw=answer.raw) from None
        if ua.max_info_tx > proposal.max_info_rx or ua.window_tx > proposal.window_rx:
            raise MalformedReply(f"{self.peer}: UA says the meter sends up to {ua.max_info_tx} bytes with window "
                                 f"{ua.window_tx}, more than the {proposal.max_info_rx} / {proposal.window_rx} "
                                 f"proposed", raw=answer.raw)
        self.ua_parameters = ua
        self.negotiated = HdlcParameters(min(proposal.max_info_tx, ua.max_info_rx), ua.max_info_tx,
                                         min(proposal.window_tx, ua.window_rx), ua.window_tx)
        self._vs = self._vr = 0
        self._unacked = []
        self._out_of_step = ""
        self._connected = True
        self.wire_trace.record("--", b"", f"HDLC connected: {self.negotiated.describe()}")
        return self.negotiated

    def disconnect(self, timeout: float) -> Frame | None:
        """DISC and the meter's UA (or DM); None when nothing came."""
        self._connected = False
        self._send_frame(Frame(Kind.DISC, self.server, self.client, poll=True))
        return self._await_unnumbered(timeout)

    def _await_unnumbered(self, timeout: float) -> Frame | None:
        """The next UA/DM/FRMR; a late I/RR frame from an earlier exchange is noted and skipped."""
        deadline = time.monotonic() + timeout
        while True:
            event = self._next_event(deadline)
            if event is None:
                return None
            if event == LINE_ERROR:
                continue
            if event.kind in (Kind.UA, Kind.DM, Kind.FRMR):
                return event
            self.wire_trace.record("--", b"", f"ignored {event.kind.value} while waiting for UA")

    # --- sending -----------------------------------------------------------------------

    def _masked(self, data: bytes) -> bytes:
        for secret in self._secrets:
            if secret in data:
                data = data.replace(secret, bytes((_MASK,)) * len(secret))
        return data

    def _send_frame(self, frame: Frame, shown_info: bytes | None = None) -> bytes:
        raw = hdlc.encode(frame)
        shown = raw if shown_info is None or shown_info == frame.info else hdlc.encode(replace(frame, info=shown_info))
        self.stream.write(raw)
        self.stats.frames_sent += 1
        self.stats.bytes_sent += len(raw)
        self.stats.max_info_sent = max(self.stats.max_info_sent, len(frame.info))
        note = " (secret masked)" if shown is not raw else ""
        self.wire_trace.record("tx", shown, frame.describe() + note)
        return shown

    def send_raw(self, raw: bytes, summary: str) -> None:
        """Bytes as they are (data-link tests: corrupted frames)."""
        self.stream.write(raw)
        self.stats.bytes_sent += len(raw)
        self.wire_trace.record("tx", raw, summary)

    def _send_information(self, data: bytes, shown: bytes) -> bytes:
        size = self.negotiated.max_info_tx
        chunks, shown_chunks = hdlc.segments(data, size), hdlc.segments(shown, size)
        window = self.negotiated.window_tx
        written: list[bytes] = []
        index = 0
        resends = 0
        while index < len(chunks):
            batch_start = index
            first_seq = self._vs
            self._unacked = []
            for offset in range(min(window, len(chunks) - index)):
                last = index + offset == len(chunks) - 1
                frame = Frame(Kind.I, self.server, self.client, poll=last or offset == window - 1,
                              send_seq=self._vs, recv_seq=self._vr, info=chunks[index + offset], segmented=not last)
                written.append(self._send_frame(frame, shown_chunks[index + offset]))
                self._unacked.append((self._vs, frame, shown_chunks[index + offset]))
                self._vs = (self._vs + 1) & 7
            index += len(self._unacked)
            if index >= len(chunks):
                break  # the reply acknowledges the last window
            acked = self._await_acknowledgement()
            if acked != self._vs:
                resends += 1
                if resends > self.retries:
                    raise LinkOutOfStep(f"{self.peer}: meter keeps missing request segments (N(R)={acked}, "
                                        f"expected {self._vs}) after {self.retries} retransmissions")
                self.stats.retransmissions += 1
                index = batch_start + ((acked - first_seq) & 7)
                self._vs = acked
            else:
                resends = 0
        return b"".join(written)

    def _await_acknowledgement(self) -> int:
        """N(R) of the meter's RR after a window of request segments."""
        polls = 0
        # A meter that answers RNR forever must not hold the bench: bounded like the polls.
        give_up = time.monotonic() + self.timeout * (self.retries + 1)
        while True:
            deadline = min(time.monotonic() + self.timeout, give_up)
            event = self._next_event(deadline)
            if isinstance(event, Frame):
                if event.kind in (Kind.RR, Kind.RNR):
                    if event.kind is Kind.RR:
                        return event.recv_seq
                    if time.monotonic() >= give_up:
                        raise DlmsTimeout(f"{self.peer}: meter kept answering RNR (not ready) for "
                                          f"{self.timeout * (self.retries + 1):g} s", timeout=self.timeout)
                    continue
                self._unexpected(event, "an RR after a request segment")
            if polls >= self.retries:
                raise LinkOutOfStep(f"{self.peer}: no RR for request segments after {polls} polls")
            polls += 1
            self._poll()

    def _poll(self) -> None:
        self.stats.polls += 1
        self._send_frame(Frame(Kind.RR, self.server, self.client, poll=True, recv_seq=self._vr))

    def _resend_unacked(self, from_seq: int) -> None:
        start = next((i for i, entry in enumerate(self._unacked) if entry[0] == from_seq), None)
        if start is None:
            raise MalformedReply(f"{self.peer}: meter acknowledges N(R)={from_seq}, which is none of the "
                                 f"frames just sent")
        last_seq = self._unacked[-1][0]
        for seq, frame, shown in self._unacked[start:]:
            self.stats.retransmissions += 1
            self._send_frame(replace(frame, recv_seq=self._vr, poll=seq == last_seq), shown)

    # --- receiving ---------------------------------------------------------------------

    def _receive_information(self, timeout: float) -> tuple[bytes, bytes]:
        frames: list[bytes] = []
        info = bytearray()
        polls = 0
        silent_polled = False
        deadline = time.monotonic() + timeout
        # RR/RNR, duplicates and out-of-sequence frames are no progress: a meter sending only
        # those (or a line repeating them) gets this long in all, then the request times out.
        stall_limit = timeout * (self.retries + 1)
        stalled_since = time.monotonic()
        while True:
            if time.monotonic() - stalled_since > stall_limit:
                raise DlmsTimeout(f"no progress from {self.peer} for {stall_limit:g} s: the meter answers "
                                  f"but sends no reply segment ({self._error_summary()})", timeout=timeout)
            event = self._next_event(min(deadline, stalled_since + stall_limit + 0.001))
            if event is None or event == LINE_ERROR:
                garbled = event == LINE_ERROR
                if not garbled and silent_polled:
                    raise DlmsTimeout(f"no reply from {self.peer} within {timeout:g} s (nor to an RR poll)",
                                      timeout=timeout)
                if garbled:
                    polls += 1
                    if polls > self.retries:
                        raise LinkOutOfStep(f"{self.peer}: garbled or lost frames, {self.retries} retransmission "
                                            f"requests did not recover ({self._error_summary()})")
                else:
                    silent_polled = True  # the request itself may have been lost: ask once where the meter is
                self._poll()
                deadline = time.monotonic() + (timeout if garbled else self.poll_timeout)
                continue
            frame = event
            if frame.kind is Kind.I:
                if frame.send_seq != self._vr:
                    if frame.send_seq == (self._vr - 1) & 7:
                        self.wire_trace.record("--", b"", "duplicate I-frame (already received) ignored")
                        continue
                    self.stats.out_of_sequence += 1
                    if frame.poll:  # the meter's window ends here: ask for what we missed
                        polls += 1
                        if polls > self.retries:
                            raise LinkOutOfStep(f"{self.peer}: I-frames out of sequence (N(S)={frame.send_seq}, "
                                                f"expected {self._vr}) after {self.retries} retransmission "
                                                f"requests")
                        self._poll()
                    deadline = time.monotonic() + timeout
                    continue
                if frame.recv_seq != self._vs:
                    raise MalformedReply(f"{self.peer}: reply I-frame acknowledges N(R)={frame.recv_seq}, "
                                         f"expected {self._vs}", raw=frame.raw)
                if len(frame.info) > self.negotiated.max_info_rx:
                    raise MalformedReply(f"{self.peer}: {len(frame.info)}-byte information field, more than the "
                                         f"{self.negotiated.max_info_rx} negotiated", raw=frame.raw)
                self._unacked = []
                self._vr = (self._vr + 1) & 7
                polls, silent_polled = 0, False
                stalled_since = time.monotonic()
                frames.append(frame.raw)
                info += frame.info
                if not frame.segmented:
                    if not frame.poll:
                        raise MalformedReply(f"{self.peer}: last reply segment without the final bit",
                                             raw=frame.raw)
                    return b"".join(frames), bytes(info)
                if frame.poll:  # end of the meter's window: ask for the next one
                    self._send_frame(Frame(Kind.RR, self.server, self.client, poll=True, recv_seq=self._vr))
                deadline = time.monotonic() + timeout
            elif frame.kind in (Kind.RR, Kind.RNR):
                if frame.recv_seq != self._vs and self._unacked:
                    self._resend_unacked(frame.recv_seq)  # it missed (part of) our request
                deadline = time.monotonic() + (timeout if frame.kind is Kind.RR else self.poll_timeout + timeout)
            elif frame.kind is Kind.DM:
                self._connected = False
                raise LinkClosed(f"{self.peer}: meter answered DM (it holds no HDLC connection with us)")
            elif frame.kind is Kind.FRMR:
                raise LinkOutOfStep(f"{self.peer}: meter rejected our frame (FRMR {frame.info.hex()})")
            else:
                self._unexpected(frame, "a reply")

    def _error_summary(self) -> str:
        s = self.stats
        parts = []
        if s.bad_frames:
            parts.append(f"{s.bad_frames} bad frame(s)")
        if s.garbage_bytes:
            parts.append(f"{s.garbage_bytes} stray bytes")
        if s.out_of_sequence:
            parts.append(f"{s.out_of_sequence} out-of-sequence frame(s)")
        return ", ".join(parts) or "frames missing"

    def _unexpected(self, frame: Frame, wanted: str) -> None:
        raise MalformedReply(f"{self.peer}: {frame.describe()} while waiting for {wanted}", raw=frame.raw)

    def _require_connected(self) -> None:
        if not self._connected:
            raise LinkClosed(f"HDLC link {self.peer} is not connected")

    def _discard_stale(self, when: str) -> None:
        stale = self._reader.clear() + self.stream.drain()
        self._events.clear()
        if stale.strip(bytes((hdlc.FLAG,))):
            self.wire_trace.record("rx", stale, f"stale bytes {when} (discarded)")

    def _reject_unsolicited(self) -> None:
        """Bytes waiting before a request are garbage or a late answer: the link is out of step."""
        stale = self._reader.clear() + self.stream.drain()
        if self._events:
            stale = b"".join(e.raw for e in self._events if hasattr(e, "raw")) + stale
            self._events.clear()
        if stale.strip(bytes((hdlc.FLAG,))):
            self.wire_trace.record("rx", stale, "unsolicited bytes before a request")
            raise MalformedReply(f"{len(stale)} unsolicited bytes from {self.peer} before a request "
                                 f"(garbage or a late answer)", raw=stale)

    def _next_event(self, deadline: float) -> Frame | str | None:
        """The next frame for us; LINE_ERROR after bad frames or garbage once the line is quiet;
        None at the deadline. Frames for another address are an error (strict client)."""
        garbled = False
        quiet_until = deadline
        while True:
            while self._events:
                event = self._events.popleft()
                if isinstance(event, Frame):
                    if event.destination != self.client or event.source != self.server:
                        if event.destination == self.server and event.source == self.client:
                            raise MalformedReply(f"{self.peer}: our own frame came back ({event.describe()}): "
                                                 f"the line echoes; set echo = true for this link", raw=event.raw)
                        raise MalformedReply(f"{self.peer}: {event.describe()} is addressed "
                                             f"{event.source.describe()}->{event.destination.describe()}, not "
                                             f"{self.server.describe()}->{self.client.describe()}", raw=event.raw)
                    return event
                # Garbled: once the line has been quiet a moment, the caller asks for the frame again.
                garbled = True
                quiet_until = min(deadline, time.monotonic() + self.quiet_time)
            remaining = (quiet_until if garbled else deadline) - time.monotonic()
            if remaining <= 0:
                held = self._reader.clear()
                if held.strip(bytes((hdlc.FLAG,))):
                    self._note_garbage(held, "incomplete frame", queue=False)
                    garbled = True
                return LINE_ERROR if garbled else None
            chunk = self.stream.read(remaining)
            if chunk:
                self._pump(chunk)

    def _pump(self, chunk: bytes) -> None:
        for event in self._reader.feed(chunk):
            if isinstance(event, Frame):
                self.stats.frames_received += 1
                self.stats.bytes_received += len(event.raw)
                self.stats.max_info_received = max(self.stats.max_info_received, len(event.info))
                self.wire_trace.record("rx", event.raw, event.describe())
            elif isinstance(event, BadFrame):
                self.stats.bad_frames += 1
                if hdlc.check_bytes_swapped(event.raw):
                    self.swapped_check_sequence = event.raw
                self.stats.bytes_received += len(event.raw)
                self.wire_trace.record("rx", event.raw, f"bad frame: {event.error}")
            else:
                self._note_garbage(event.raw, "bytes outside any frame")
                continue
            self._events.append(event)

    def _note_garbage(self, raw: bytes, what: str, queue: bool = True) -> None:
        if raw.strip(bytes((hdlc.FLAG,))):
            self.stats.garbage_bytes += len(raw)
        self.stats.bytes_received += len(raw)
        self.wire_trace.record("rx", raw, what)
        if queue:
            self._events.append(Garbage(raw))
