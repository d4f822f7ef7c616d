"""IEC 62056-21 mode E: the optical head's sign-on into HDLC.

At 300 Bd 7E1 the bench sends `/?[address]!` CR LF; the meter answers
`/XXXZ\\2ident` CR LF (maker XXX, baud character Z, `\\2` = HDLC capable) after
its reaction time; the bench waits its own reaction time and sends the
acknowledgement/option select ACK '2' Z '2' CR LF (HDLC, baud Z, binary mode);
the meter may echo it; then both sides speak HDLC at Z baud 8N1.

The codec half (request, identification, option select) is sans-IO and shared
with the emulated meter; `OpticalStream` does the I/O.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

from smmc_bench.drivers.dlms.errors import ConnectFailed, DlmsTimeout, MalformedReply
from smmc_bench.drivers.dlms.trace import FrameTrace

from .stream import SerialStream

SIGN_ON_BAUD = 300
ACK = 0x06
CRLF = b"\r\n"
# Mode C/E baud characters.
BAUD_RATES = {"0": 300, "1": 600, "2": 1200, "3": 2400, "4": 4800, "5": 9600, "6": 19200}
BAUD_CHARS = {baud: char for char, baud in BAUD_RATES.items()}
PROTOCOL_HDLC, MODE_BINARY = "2", "2"
# Reaction time tr: 200 ms .. 1500 ms, 20 ms minimum when the third maker letter is lowercase.
REACTION_MIN, REACTION_MIN_FAST, REACTION_MAX = 0.2, 0.02, 1.5
# The bench listens for the identification at least this long, so a meter slower than REACTION_MAX is
# measured (and judged late by the test) rather than lost to a short connect_timeout.
IDENTIFICATION_WAIT_S = 2 * REACTION_MAX
# A battery meter's wake-up: NUL characters for about 2.2 s, then 1.5..1.7 s of silence.
WAKE_UP_S, WAKE_UP_PAUSE_S = 2.2, 1.6

_ADDRESS = re.compile(rb"^[0-9A-Za-z ]{0,32}$")
_IDENTIFICATION = re.compile(rb"^/([A-Za-z]{3})([0-9A-I])((?:\\[0-9A-Za-z])*)([\x20-\x7e]{1,16})\r\n$")


def sign_on_request(address: str = "") -> bytes:
    raw = address.encode("ascii")
    if not _ADDRESS.match(raw):
        raise ValueError(f"device address {address!r}: up to 32 letters, digits or spaces")
    return b"/?" + raw + b"!" + CRLF


def parse_sign_on_request(line: bytes) -> str:
    """The device address a request line carries; ValueError when it is not a request."""
    if not (line.startswith(b"/?") and line.endswith(b"!" + CRLF)):
        raise ValueError(f"not a sign-on request: {line!r}")
    address = line[2:-3]
    if not _ADDRESS.match(address):
        raise ValueError(f"bad device address in {line!r}")
    return address.decode("ascii")


class IdentificationError(MalformedReply, ValueError):
    """A mode E identification line that breaks IEC 62056-21 (still a ValueError for older callers)."""


@dataclass(frozen=True)
class Identification:
    maker: str
    baud_char: str
    enhanced: tuple[str, ...]   # escape characters after the baud character, e.g. ("2",)
    ident: str
    raw: str
    reaction_time: float = 0.0  # s from the end of the request to the first identification byte

    @property
    def hdlc(self) -> bool:
        return "2" in self.enhanced

    @property
    def baud(self) -> int | None:
        return BAUD_RATES.get(self.baud_char)

    @property
    def reaction_min(self) -> float:
        return REACTION_MIN_FAST if self.maker[2].islower() else REACTION_MIN

    def describe(self) -> str:
        baud = f"{self.baud} Bd" if self.baud else f"baud character {self.baud_char!r}"
        return (f"maker {self.maker}, {baud}, {'HDLC' if self.hdlc else 'no HDLC'}, id {self.ident!r}, "
                f"reaction {self.reaction_time * 1000:.0f} ms")


def identification_message(maker: str, baud_char: str, ident: str, enhanced: str = "2") -> bytes:
    escapes = "".join(f"\\{c}" for c in enhanced)
    return f"/{maker}{baud_char}{escapes}{ident}".encode("ascii") + CRLF


def parse_identification(line: bytes, reaction_time: float = 0.0) -> Identification:
    match = _IDENTIFICATION.match(line)
    if not match:
        raise IdentificationError(f"identification {line!r} is not /XXXZ[\\W]ident CR LF", raw=bytes(line))
    maker, baud_char, escapes, ident = (group.decode("ascii") for group in match.groups())
    return Identification(maker, baud_char, tuple(escapes[1::2]), ident, line.decode("ascii").rstrip(),
                          reaction_time)


def option_select(baud_char: str) -> bytes:
    return bytes((ACK,)) + f"{PROTOCOL_HDLC}{baud_char}{MODE_BINARY}".encode("ascii") + CRLF


def parse_option_select(line: bytes) -> tuple[str, str, str]:
    """(protocol, baud character, mode) of an ACK option select line."""
    if len(line) != 6 or line[0] != ACK or not line.endswith(CRLF):
        raise ValueError(f"not an option select: {line!r}")
    protocol, baud_char, mode = (chr(b) for b in line[1:4])
    return protocol, baud_char, mode


def even_parity(data: bytes) -> bytes:
    """7E1 characters as an 8N1 line carries them: the parity bit in bit 7 (same bits on the wire)."""
    return bytes(b & 0x7F | (bin(b & 0x7F).count("1") & 1) << 7 for b in data)


def strip_parity(data: bytes) -> tuple[bytes, int]:
    """7-bit characters from 8N1 bytes, and how many had a wrong (odd) parity."""
    wrong = sum(1 for b in data if bin(b).count("1") & 1)
    return bytes(b & 0x7F for b in data), wrong


class OpticalStream(SerialStream):
    """An optical head: open() signs on in mode E and leaves the port at the agreed baud, 8N1.

    7E1 and 8N1 put the same ten bits per character on the wire, so when a port
    cannot do 7E1 (a pty; some adapters) the sign-on runs at 300 Bd 8N1 with the
    parity bit made in software (`parity = "software"`, automatic on a pty).
    """

    def __init__(self, url: str, *, device_address: str = "", max_baud: int = 19200, wake_up: bool = False,
                 parity: str = "auto", connect_timeout: float = 5.0, write_timeout: float = 5.0,
                 echo: bool = False, trace: FrameTrace | None = None) -> None:
        super().__init__(url, baudrate=SIGN_ON_BAUD, bytesize=7, parity="E", connect_timeout=connect_timeout,
                         write_timeout=write_timeout, echo=echo, trace=trace)
        self.device_address, self.max_baud, self.wake_up = device_address, max_baud, wake_up
        if parity not in ("auto", "hardware", "software"):
            raise ValueError(f"parity must be auto, hardware or software, not {parity!r}")
        self.parity_mode = parity
        self.identification: Identification | None = None
        self.switched: str | None = None
        self.parity_errors = 0
        self._software_parity = False

    @property
    def peer(self) -> str:
        return f"optical {self.url}"

    def _wants_software_parity(self) -> bool:
        if self.parity_mode != "auto":
            return self.parity_mode == "software"
        return self.url.startswith(("/dev/pts/", "socket://", "loop://"))  # no parity bit on these lines

    def open(self) -> None:
        if self.is_open:
            return
        # Every connection starts at 300 Bd: the meter is back in mode E after the last DISC.
        self._software_parity = self._wants_software_parity()
        if self._software_parity:
            self.settings.update(baudrate=SIGN_ON_BAUD, bytesize=8, parity="N")
        else:
            self.settings.update(baudrate=SIGN_ON_BAUD, bytesize=7, parity="E")
        super().open()
        mode = "7E1 in software over 8N1" if self._software_parity else "7E1"
        self.trace.record("--", b"", f"{self.url} opened at {SIGN_ON_BAUD} Bd {mode}")
        try:
            self._sign_on()
        except BaseException:
            self.close()
            raise
        finally:
            self._software_parity = False

    def write(self, data: bytes) -> None:
        super().write(even_parity(data) if self._software_parity else data)

    def read(self, timeout: float) -> bytes:
        data = super().read(timeout)
        if self._software_parity and data:
            data, wrong = strip_parity(data)
            self.parity_errors += wrong
        return data

    def _sign_on(self) -> None:
        wait = max(self.connect_timeout, IDENTIFICATION_WAIT_S)
        deadline = time.monotonic() + wait
        if self.wake_up:
            count = int(WAKE_UP_S * SIGN_ON_BAUD / 10)
            self._write_line(bytes(count), f"wake-up: {count} NUL characters")
            time.sleep(WAKE_UP_PAUSE_S)
            deadline += WAKE_UP_S + WAKE_UP_PAUSE_S
        request = sign_on_request(self.device_address)
        self._write_line(request, "mode E sign-on request")
        sent = time.monotonic()
        line, first_byte = self._read_line(deadline, wait, skip=request)
        if self.parity_errors:
            raise MalformedReply(f"{self.peer}: {self.parity_errors} characters with a wrong parity bit in the "
                                 f"identification (7E1 expected)", raw=line)
        try:
            ident = parse_identification(line, reaction_time=first_byte - sent)
        except ValueError as exc:
            raise ConnectFailed(f"{self.peer}: meter identification not understood ({exc})",
                                reason="identification") from None
        self.trace.record("rx", line, f"identification: {ident.describe()}")
        if not ident.hdlc:
            raise ConnectFailed(f"{self.peer}: identification {ident.raw!r} does not announce HDLC (\\2): "
                                f"no mode E", reason="no mode E")
        if ident.baud is None:
            raise ConnectFailed(f"{self.peer}: identification {ident.raw!r} offers baud character "
                                f"{ident.baud_char!r}, not a mode C/E rate", reason="baud")
        self.identification = ident
        baud = min(ident.baud, self.max_baud)
        char = BAUD_CHARS.get(baud, "0")
        # Our own reaction time: the meter may not listen sooner.
        time.sleep(max(0.0, ident.reaction_min - (time.monotonic() - first_byte)))
        ack = option_select(char)
        self._write_line(ack, f"option select: HDLC at {BAUD_RATES[char]} Bd")
        self._read_ack_echo(ack, baud)
        how = self.reconfigure(baudrate=BAUD_RATES[char], bytesize=8, parity="N")
        self.switched = how
        self.trace.record("--", b"", f"line switched to {BAUD_RATES[char]} Bd 8N1 {how}")

    def _write_line(self, data: bytes, summary: str) -> None:
        self.write(data)
        self.trace.record("tx", data, summary)

    def _read_line(self, deadline: float, wait: float, skip: bytes) -> tuple[bytes, float]:
        """The first CR LF-terminated line that is not an echo of `skip`, and when its first byte came."""
        buffer = b""
        first_byte = last_chunk = 0.0
        while True:
            end = buffer.find(CRLF)
            if end >= 0:
                line, buffer = buffer[:end + 2], buffer[end + 2:]
                if line == skip:
                    self.trace.record("rx", line, "echo of the sign-on request (probe echo)")
                    first_byte = last_chunk if buffer else 0.0
                    continue
                # Bytes before the identification (noise, NUL fill) are tolerated, not taken.
                start = line.find(b"/")
                if start > 0:
                    self.trace.record("rx", line[:start], "bytes before the identification")
                    line = line[start:]
                if buffer:
                    raise MalformedReply(f"{self.peer}: {len(buffer)} bytes after the identification", raw=buffer)
                return line, first_byte
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if buffer:
                    raise MalformedReply(f"{self.peer}: identification incomplete after {wait:g} s: "
                                         f"{buffer!r}", raw=buffer)
                raise DlmsTimeout(f"{self.peer}: no identification within {wait:g} s of the "
                                  f"sign-on request (mode E)", timeout=wait)
            chunk = self.read(remaining)
            if chunk:
                last_chunk = time.monotonic()
                first_byte = first_byte or last_chunk
            buffer += chunk
            if len(buffer) > 256:
                raise MalformedReply(f"{self.peer}: no CR LF in {len(buffer)} bytes after the sign-on request",
                                     raw=buffer)

    def _read_ack_echo(self, ack: bytes, baud: int) -> None:
        """The meter may echo the option select at 300 Bd before switching: read it, if it comes
        (a probe that hears itself adds its own copy first)."""
        char_time = 10 / SIGN_ON_BAUD
        deadline = time.monotonic() + len(ack) * char_time + 0.1
        heard = b""
        while len(heard) < 2 * len(ack):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            chunk = self.read(remaining)
            if not chunk:
                continue
            heard += chunk
            if heard == ack:
                # One copy: a second would start within about a character time.
                deadline = time.monotonic() + char_time + 0.05
            elif len(heard) > len(ack):
                deadline = time.monotonic() + (2 * len(ack) - len(heard)) * char_time + 0.1
        if heard in (ack, ack + ack):
            self.trace.record("rx", heard, "echo of the option select")
        elif heard:
            self.trace.record("rx", heard, "bytes after the option select (not an echo; ignored)")
