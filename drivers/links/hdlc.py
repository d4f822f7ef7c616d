"""IEC 62056-46 HDLC frames, sans-IO: addresses, control fields, HCS/FCS, SNRM/UA
parameter negotiation, a streaming deframer and segmentation.

Frame: 7E | format(2) | destination | source | control | [HCS(2) | info] | FCS(2) | 7E.
The format field is type 0xA, the segmentation bit S and an 11-bit length (the
frame without its flags). Addresses end at the byte whose low bit is 1, so a
frame parses without knowing its direction (dlms-cosem's InformationFrame
assumes a client destination; this codec does not).

Used by both sides: the bench's HDLC transport and the emulated links.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Iterator

from smmc_bench.drivers.dlms.errors import MalformedReply

FLAG = 0x7E
FORMAT_TYPE = 0xA
MAX_FRAME_LENGTH = 0x7FF  # 11-bit length field
# IEC 62056-46 / Green Book bounds of the negotiable parameters.
MIN_INFO_LENGTH, MAX_INFO_LENGTH = 32, 2030
MIN_WINDOW, MAX_WINDOW = 1, 7
DEFAULT_INFO_LENGTH, DEFAULT_WINDOW = 128, 1

LLC_REQUEST = bytes((0xE6, 0xE6, 0x00))
LLC_RESPONSE = bytes((0xE6, 0xE7, 0x00))

# Parameter negotiation field of SNRM/UA (ISO/IEC 13239 format 0x81, group 0x80).
_PARAM_FORMAT, _PARAM_GROUP = 0x81, 0x80
_MAX_INFO_TX, _MAX_INFO_RX, _WINDOW_TX, _WINDOW_RX = 0x05, 0x06, 0x07, 0x08

# The usual convention (Gurux, many makers): lower address = last digits of the serial number + 1000.
SERIAL_ADDRESS_FORMULA = "SN % 10000 + 1000"


class FrameError(MalformedReply, ValueError):
    """Bytes that are not a valid HDLC frame; `reason` is one of REASONS. One of the bench's
    malformed-reply errors (and still a ValueError for older callers)."""

    REASONS = ("flags", "format", "length", "address", "hcs", "fcs", "control", "parameters")

    def __init__(self, reason: str, detail: str, raw: bytes = b"") -> None:
        super().__init__(f"{reason}: {detail}", raw=bytes(raw))
        self.reason, self.detail = reason, detail


# --- CRC-16/X.25 (poly 0x1021 reflected, init and xorout 0xFFFF), sent low byte first ---

def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


def check_sequence(data: bytes) -> bytes:
    return crc16(data).to_bytes(2, "little")


# --- addresses -------------------------------------------------------------------

@dataclass(frozen=True)
class Address:
    """An HDLC address. Client: `logical` is the SAP, one byte. Server: upper (logical
    device) and lower (physical device) parts in the 1-, 2- or 4-byte form."""

    logical: int
    physical: int | None = None
    size: int = 1

    def __post_init__(self) -> None:
        if self.size not in (1, 2, 4):
            raise ValueError(f"HDLC address size must be 1, 2 or 4 bytes, not {self.size}")
        if self.size == 1 and self.physical is not None:
            raise ValueError("a 1-byte HDLC address has no physical (lower) part")
        if self.size > 1 and self.physical is None:
            raise ValueError(f"a {self.size}-byte HDLC address needs a physical (lower) part")
        limit = 0x7F if self.size <= 2 else 0x3FFF
        for name, value in (("logical", self.logical), ("physical", self.physical)):
            if value is not None and not 0 <= value <= limit:
                raise ValueError(f"{name} address {value} does not fit the {self.size}-byte form (0..{limit})")

    @classmethod
    def client(cls, sap: int) -> "Address":
        return cls(sap, None, 1)

    @classmethod
    def server(cls, logical: int, physical: int | None = None, size: int | None = None) -> "Address":
        """The smallest form that fits, unless `size` asks for one."""
        if size is None:
            if physical is None:
                size = 1 if logical <= 0x7F else 4
            else:
                size = 2 if logical <= 0x7F and physical <= 0x7F else 4
        if size == 4 and physical is None:
            physical = 0  # 62056-46: a 4-byte form always carries both parts
        return cls(logical, physical, size)

    def to_bytes(self) -> bytes:
        def pack7(value: int, count: int) -> list[int]:
            return [(value >> (7 * (count - 1 - i)) & 0x7F) << 1 for i in range(count)]

        if self.size == 1:
            parts = pack7(self.logical, 1)
        elif self.size == 2:
            parts = pack7(self.logical, 1) + pack7(self.physical, 1)
        else:
            parts = pack7(self.logical, 2) + pack7(self.physical, 2)
        parts[-1] |= 1
        return bytes(parts)

    @classmethod
    def parse(cls, data: bytes, pos: int) -> tuple["Address", int]:
        """The address starting at `pos` and the position after it."""
        end = pos
        while end < len(data) and not data[end] & 1:
            end += 1
            if end - pos >= 4:
                break
        size = end - pos + 1
        if end >= len(data) or size not in (1, 2, 4):
            raise FrameError("address", f"address field of {size} bytes (1, 2 or 4 allowed)", data)
        parts = [b >> 1 for b in data[pos:end + 1]]
        if size == 1:
            return cls(parts[0], None, 1), end + 1
        if size == 2:
            return cls(parts[0], parts[1], 2), end + 1
        return cls(parts[0] << 7 | parts[1], parts[2] << 7 | parts[3], 4), end + 1

    def describe(self) -> str:
        if self.physical is None:
            return f"{self.logical}"
        return f"{self.logical}/{self.physical}"


def physical_address_from_serial(serial: str) -> int:
    """Lower HDLC address from a serial number by the usual convention (SN % 10000 + 1000)."""
    digits = "".join(c for c in serial if c.isdigit())
    if not digits:
        raise ValueError(f"serial number {serial!r} has no digits to derive a physical address from")
    return int(digits) % 10000 + 1000


# --- control field -----------------------------------------------------------------

class Kind(str, Enum):
    I = "I"  # noqa: E741 - the frame type's name in the standard
    RR = "RR"
    RNR = "RNR"
    SNRM = "SNRM"
    DISC = "DISC"
    UA = "UA"
    DM = "DM"
    FRMR = "FRMR"
    UI = "UI"


# Unnumbered frames: control byte without the P/F bit (0x10).
_UNNUMBERED = {0x83: Kind.SNRM, 0x43: Kind.DISC, 0x63: Kind.UA, 0x0F: Kind.DM, 0x87: Kind.FRMR, 0x03: Kind.UI}
_UNNUMBERED_CODE = {kind: code for code, kind in _UNNUMBERED.items()}
_SUPERVISORY = {0x01: Kind.RR, 0x05: Kind.RNR}
_SUPERVISORY_CODE = {kind: code for code, kind in _SUPERVISORY.items()}
_POLL = 0x10


@dataclass(frozen=True)
class Frame:
    kind: Kind
    destination: Address
    source: Address
    poll: bool = True          # P (command) or F (response) bit
    send_seq: int = 0          # N(S), I-frames
    recv_seq: int = 0          # N(R), I/RR/RNR frames
    info: bytes = b""
    segmented: bool = False    # the S bit: more segments of this information follow
    raw: bytes = field(default=b"", compare=False, repr=False)  # as received (decode only)

    def control(self) -> int:
        poll = _POLL if self.poll else 0
        if self.kind is Kind.I:
            return (self.recv_seq & 7) << 5 | poll | (self.send_seq & 7) << 1
        if self.kind in _SUPERVISORY_CODE:
            return (self.recv_seq & 7) << 5 | poll | _SUPERVISORY_CODE[self.kind]
        return _UNNUMBERED_CODE[self.kind] | poll

    def describe(self) -> str:
        poll = " P/F" if self.poll else ""
        if self.kind is Kind.I:
            seq = f" N(S)={self.send_seq} N(R)={self.recv_seq}"
        elif self.kind in (Kind.RR, Kind.RNR):
            seq = f" N(R)={self.recv_seq}"
        else:
            seq = ""
        info = f" info {len(self.info)} B" if self.info else ""
        more = " segmented" if self.segmented else ""
        return (f"{self.kind.value}{seq}{poll}{more}{info} "
                f"{self.source.describe()}->{self.destination.describe()}")


def encode(frame: Frame) -> bytes:
    header_body = frame.destination.to_bytes() + frame.source.to_bytes() + bytes((frame.control(),))
    has_info = bool(frame.info)
    length = 2 + len(header_body) + (2 + len(frame.info) if has_info else 0) + 2
    if length > MAX_FRAME_LENGTH:
        raise ValueError(f"HDLC frame of {length} bytes exceeds the 11-bit length field")
    fmt = (FORMAT_TYPE << 12 | (0x800 if frame.segmented else 0) | length).to_bytes(2, "big")
    header = fmt + header_body
    content = header + (check_sequence(header) + frame.info if has_info else b"")
    return bytes((FLAG,)) + content + check_sequence(content) + bytes((FLAG,))


def decode(data: bytes) -> Frame:
    """One frame, flags included; FrameError says what is wrong with it."""
    data = bytes(data)
    if len(data) < 9 or data[0] != FLAG or data[-1] != FLAG:
        raise FrameError("flags", "frame not enclosed in 7E flags", data)
    fmt = int.from_bytes(data[1:3], "big")
    if fmt >> 12 != FORMAT_TYPE:
        raise FrameError("format", f"format type {fmt >> 12:#x} (expected 0xA)", data)
    length = fmt & 0x7FF
    if length != len(data) - 2:
        raise FrameError("length", f"format field says {length} bytes, frame has {len(data) - 2}", data)
    destination, pos = Address.parse(data, 3)
    source, pos = Address.parse(data, pos)
    if pos >= len(data) - 3:
        raise FrameError("length", "frame ends before its control field", data)
    control = data[pos]
    pos += 1
    body_end = len(data) - 3
    if check_sequence(data[1:body_end]) != data[body_end:body_end + 2]:
        raise FrameError("fcs", "frame check sequence does not match", data)
    info = b""
    if body_end > pos:
        if body_end - pos < 2:
            raise FrameError("length", "one stray byte between control field and FCS", data)
        if check_sequence(data[1:pos]) != data[pos:pos + 2]:
            raise FrameError("hcs", "header check sequence does not match", data)
        info = data[pos + 2:body_end]
    segmented = bool(fmt & 0x800)
    poll = bool(control & _POLL)
    if not control & 1:
        return Frame(Kind.I, destination, source, poll, (control >> 1) & 7, control >> 5, info, segmented, data)
    if control & 0x03 == 0x01:
        kind = _SUPERVISORY.get(control & 0x0F)
        if kind is None:
            raise FrameError("control", f"supervisory control {control:#04x} not used by 62056-46", data)
        if info:
            raise FrameError("control", f"{kind.value} frame carries an information field", data)
        return Frame(kind, destination, source, poll, 0, control >> 5, b"", segmented, data)
    kind = _UNNUMBERED.get(control & ~_POLL & 0xFF)
    if kind is None:
        raise FrameError("control", f"unnumbered control {control:#04x} not used by 62056-46", data)
    return Frame(kind, destination, source, poll, 0, 0, info, segmented, data)


def corrupt(frame_bytes: bytes, part: str) -> bytes:
    """The frame with its FCS or HCS damaged (data-link tests and link mutants)."""
    data = bytearray(frame_bytes)
    if part == "fcs":
        data[-3] ^= 0xFF
    elif part == "hcs":
        _, pos = Address.parse(data, 3)
        _, pos = Address.parse(data, pos)
        if len(data) - 3 <= pos + 1:
            raise ValueError("this frame has no HCS (no information field)")
        data[pos + 1] ^= 0xFF
        # Only the HCS is wrong: the FCS is made over the damaged header, as a faulty sender would.
        data[-3:-1] = check_sequence(bytes(data[1:-3]))
    else:
        raise ValueError(f"cannot corrupt {part!r}")
    return bytes(data)


def check_bytes_swapped(raw: bytes) -> bool:
    """True when a frame that failed its checks is valid with its HCS/FCS sent high byte first:
    a sender's byte-order defect, not line noise."""
    if len(raw) < 9 or raw[0] != FLAG or raw[-1] != FLAG:
        return False
    try:
        _, pos = Address.parse(raw, 3)
        _, pos = Address.parse(raw, pos)
    except FrameError:
        return False
    has_hcs = len(raw) - 3 > pos + 3
    for swap_hcs in ((False, True) if has_hcs else (False,)):
        data = bytearray(raw)
        data[-3], data[-2] = data[-2], data[-3]
        if swap_hcs:
            data[pos + 1], data[pos + 2] = data[pos + 2], data[pos + 1]
        try:
            decode(bytes(data))
            return True
        except FrameError:
            continue
    return False


# --- SNRM / UA parameter negotiation ----------------------------------------------

@dataclass(frozen=True)
class HdlcParameters:
    """Negotiable parameters, from the point of view of the station that sends them:
    transmit = what it sends, receive = what it accepts."""

    max_info_tx: int = DEFAULT_INFO_LENGTH
    max_info_rx: int = DEFAULT_INFO_LENGTH
    window_tx: int = DEFAULT_WINDOW
    window_rx: int = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        for name in ("max_info_tx", "max_info_rx"):
            value = getattr(self, name)
            if not MIN_INFO_LENGTH <= value <= MAX_INFO_LENGTH:
                raise ValueError(f"{name} {value} outside {MIN_INFO_LENGTH}..{MAX_INFO_LENGTH}")
        for name in ("window_tx", "window_rx"):
            value = getattr(self, name)
            if not MIN_WINDOW <= value <= MAX_WINDOW:
                raise ValueError(f"{name} {value} outside {MIN_WINDOW}..{MAX_WINDOW}")

    @classmethod
    def symmetric(cls, max_info: int, window: int = DEFAULT_WINDOW) -> "HdlcParameters":
        return cls(max_info, max_info, window, window)

    def mirrored(self) -> "HdlcParameters":
        """The same agreement seen from the other station."""
        return HdlcParameters(self.max_info_rx, self.max_info_tx, self.window_rx, self.window_tx)

    def describe(self) -> str:
        return (f"max info tx {self.max_info_tx} rx {self.max_info_rx}, "
                f"window tx {self.window_tx} rx {self.window_rx}")


DEFAULT_PARAMETERS = HdlcParameters()


def encode_parameters(params: HdlcParameters) -> bytes:
    def item(ident: int, value: int, width: int) -> bytes:
        return bytes((ident, width)) + value.to_bytes(width, "big")

    def info_width(value: int) -> int:
        return 1 if value <= 0xFF else 2

    body = (item(_MAX_INFO_TX, params.max_info_tx, info_width(params.max_info_tx))
            + item(_MAX_INFO_RX, params.max_info_rx, info_width(params.max_info_rx))
            + item(_WINDOW_TX, params.window_tx, 4)
            + item(_WINDOW_RX, params.window_rx, 4))
    return bytes((_PARAM_FORMAT, _PARAM_GROUP, len(body))) + body


def parse_parameters(info: bytes, defaults: HdlcParameters = DEFAULT_PARAMETERS) -> HdlcParameters:
    """The parameters an SNRM or UA carries; absent ones keep their default."""
    if not info:
        return defaults
    if len(info) < 3 or info[0] != _PARAM_FORMAT or info[1] != _PARAM_GROUP:
        raise FrameError("parameters", f"parameter field starts {info[:3].hex()} (expected 81 80 <length>)", info)
    if info[2] != len(info) - 3:
        raise FrameError("parameters", f"parameter group says {info[2]} bytes, {len(info) - 3} follow", info)
    values: dict[int, int] = {}
    pos = 3
    while pos < len(info):
        if pos + 2 > len(info):
            raise FrameError("parameters", "truncated parameter", info)
        ident, width = info[pos], info[pos + 1]
        if width == 0 or width > 4 or pos + 2 + width > len(info):
            raise FrameError("parameters", f"parameter {ident:#04x} with length {width}", info)
        values[ident] = int.from_bytes(info[pos + 2:pos + 2 + width], "big")
        pos += 2 + width
    unknown = sorted(set(values) - {_MAX_INFO_TX, _MAX_INFO_RX, _WINDOW_TX, _WINDOW_RX})
    if unknown:
        raise FrameError("parameters", f"unknown parameter id(s) {', '.join(f'{u:#04x}' for u in unknown)}", info)
    try:
        return HdlcParameters(values.get(_MAX_INFO_TX, defaults.max_info_tx),
                              values.get(_MAX_INFO_RX, defaults.max_info_rx),
                              values.get(_WINDOW_TX, defaults.window_tx),
                              values.get(_WINDOW_RX, defaults.window_rx))
    except ValueError as exc:
        raise FrameError("parameters", str(exc), info) from None


def negotiate(proposal: HdlcParameters, capability: HdlcParameters) -> HdlcParameters:
    """What a server answers in its UA (its own point of view) to a client's SNRM `proposal`."""
    return HdlcParameters(min(proposal.max_info_rx, capability.max_info_tx),
                          min(proposal.max_info_tx, capability.max_info_rx),
                          min(proposal.window_rx, capability.window_tx),
                          min(proposal.window_tx, capability.window_rx))


# --- segmentation and deframing ----------------------------------------------------------

def segments(data: bytes, max_info: int) -> list[bytes]:
    if not data:
        return [b""]
    return [data[i:i + max_info] for i in range(0, len(data), max_info)]


@dataclass(frozen=True)
class BadFrame:
    """Bytes between flags that did not make a valid frame."""

    error: FrameError

    @property
    def raw(self) -> bytes:
        return self.error.raw


@dataclass(frozen=True)
class Garbage:
    """Bytes outside any frame (line noise, an echo, the other baud rate)."""

    raw: bytes


@dataclass
class FrameReader:
    """Feed bytes in any chunks; take out frames, bad frames and garbage in wire order."""

    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Frame | BadFrame | Garbage]:
        self._buffer += data
        return list(self._drain())

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame (flags between frames excluded)."""
        return len(self._buffer.strip(bytes((FLAG,))))

    def pending_bytes(self) -> bytes:
        return bytes(self._buffer)

    def _drain(self) -> Iterator[Frame | BadFrame | Garbage]:
        buf = self._buffer
        while buf:
            start = buf.find(FLAG)
            if start < 0:
                yield Garbage(bytes(buf))
                buf.clear()
                return
            if start > 0:
                yield Garbage(bytes(buf[:start]))
                del buf[:start]
            # Consecutive flags: inter-frame fill, or one frame's closing flag followed by the next's opening.
            while len(buf) > 1 and buf[1] == FLAG:
                del buf[0]
            if len(buf) < 3:
                return
            fmt = int.from_bytes(buf[1:3], "big")
            if fmt >> 12 != FORMAT_TYPE:
                yield Garbage(bytes(buf[:1]))
                del buf[0]
                continue
            length = fmt & 0x7FF
            if len(buf) < length + 2:
                return
            raw = bytes(buf[:length + 2])
            if raw[-1] != FLAG:
                # The length does not lead to a flag: bytes were lost or inserted. Resynchronise on the next flag.
                nxt = buf.find(FLAG, 1)
                cut = nxt if nxt > 0 else len(buf)
                yield BadFrame(FrameError("length", "format length does not end on a flag", bytes(buf[:cut])))
                del buf[:cut]
                continue
            try:
                yield decode(raw)
            except FrameError as exc:
                yield BadFrame(exc)
            # Keep the closing flag: it may open the next frame.
            del buf[:length + 1]
        return

    def clear(self) -> bytes:
        held = bytes(self._buffer)
        self._buffer.clear()
        return held

