"""Sans-IO parsing of pushed DataNotification APDUs (IEC 62056-5-3, xDLMS).

    DataNotification ::= SEQUENCE {
        long-invoke-id-and-priority  Unsigned32,
        date-time                    OCTET STRING,  -- A-XDR: length 0 (absent) or 12
        notification-body            Data }

Strict: every byte is accounted for, reserved bits must be zero, the date-time
must be a valid COSEM date-time, and the body must be exactly one A-XDR Data
(decoded by smmc_bench.drivers.dlms.cosem_types, the bench's own codec). Anything else
raises MalformedNotification with a one-line diagnosis.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smmc_bench.drivers.dlms.cosem_types import (
    CosemDateTime,
    decode_exact,
    decode_length,
)
from smmc_bench.drivers.dlms.errors import DlmsError, MalformedReply

DATA_NOTIFICATION = 0x0F
DATE_TIME_LENGTH = 12
# Ciphered or signed xDLMS APDUs a meter may push instead (IEC 62056-5-3 tags).
CIPHERED_TAGS = {0xDB: "general-glo-ciphering", 0xDC: "general-ded-ciphering",
                 0xDD: "general-ciphering", 0xDF: "general-signing"}
GENERAL_BLOCK_TRANSFER = 0xE0
_LAST_BLOCK = 0x80
_STREAMING = 0x40
_WINDOW = 0x3F
_PRIORITY = 0x80
_CONFIRMED = 0x40
_BREAK_ON_ERROR = 0x20
_SELF_DESCRIPTIVE = 0x10
_RESERVED = 0x0F


class MalformedNotification(MalformedReply, ValueError):
    """A push that breaks the standard (one of the bench's malformed-reply errors)."""

    def __init__(self, diagnosis: str, *, raw: bytes = b"") -> None:
        super().__init__(diagnosis, raw=raw)


@dataclass(frozen=True)
class ParsedNotification:
    invoke_id: int  # the 24-bit long invoke id
    high_priority: bool
    confirmed: bool
    self_descriptive: bool
    break_on_error: bool
    date_time: CosemDateTime | None  # validated; may still leave fields not specified
    data: Any  # plain values, as smmc_bench.drivers.dlms.cosem_types.decode_data gives them


def parse_data_notification(apdu: bytes) -> ParsedNotification:
    if not apdu:
        raise MalformedNotification("empty APDU")
    tag = apdu[0]
    if tag in CIPHERED_TAGS:
        raise MalformedNotification(f"ciphered APDU ({CIPHERED_TAGS[tag]}, tag 0x{tag:02X}): "
                                    f"this listener takes unciphered DataNotifications only")
    if tag == GENERAL_BLOCK_TRANSFER:
        raise MalformedNotification("general-block-transfer block (tag 0xE0) given as a whole notification: "
                                    "blocks are reassembled first (GeneralBlockAssembler)")
    if tag != DATA_NOTIFICATION:
        raise MalformedNotification(f"tag 0x{tag:02X} is not a DataNotification (0x0F)")
    if len(apdu) < 6:
        raise MalformedNotification(f"DataNotification of {len(apdu)} bytes is truncated "
                                    f"(long-invoke-id-and-priority and date-time length need 6)")
    flags = apdu[1]
    if flags & _RESERVED:
        raise MalformedNotification(f"long-invoke-id-and-priority has reserved bits set (0x{flags:02X})")
    invoke_id = int.from_bytes(apdu[2:5], "big")
    length = apdu[5]
    pos = 6
    if length == 0:
        date_time = None
    elif length == DATE_TIME_LENGTH:
        raw = apdu[pos:pos + DATE_TIME_LENGTH]
        if len(raw) != DATE_TIME_LENGTH:
            raise MalformedNotification(f"date-time truncated: {len(raw)} of 12 bytes")
        try:
            date_time = CosemDateTime.from_bytes(raw)
        except DlmsError as exc:
            raise MalformedNotification(f"date-time: {exc.diagnosis}") from None
        pos += DATE_TIME_LENGTH
    else:
        hint = " (a presence flag where the A-XDR length 12 belongs?)" if length == 1 else ""
        raise MalformedNotification(f"date-time length {length}, expected 0 (absent) or 12{hint}")
    if pos >= len(apdu):
        raise MalformedNotification("notification body missing")
    try:
        data = decode_exact(apdu[pos:])
    except DlmsError as exc:
        raise MalformedNotification(f"notification body: {exc.diagnosis}") from None
    return ParsedNotification(
        invoke_id=invoke_id,
        high_priority=bool(flags & _PRIORITY),
        confirmed=bool(flags & _CONFIRMED),
        self_descriptive=bool(flags & _SELF_DESCRIPTIVE),
        break_on_error=bool(flags & _BREAK_ON_ERROR),
        date_time=date_time,
        data=data,
    )


# --- general block transfer (IEC 62056-5-3, 9.3.x) ---------------------------------
#
#   general-block-transfer ::= [224] SEQUENCE {
#       block-control     Unsigned8   -- bit 7 last-block, bit 6 streaming, bits 0-5 window
#       block-number      Unsigned16
#       block-number-ack  Unsigned16
#       block-data        OCTET STRING }
#
# A push too long for one APDU arrives as a stream of such blocks (numbered from 1); their
# block-data, joined, is the whole APDU (a DataNotification).

@dataclass(frozen=True)
class GeneralBlock:
    last: bool
    streaming: bool
    window: int
    number: int
    acknowledged: int
    data: bytes


def parse_general_block(apdu: bytes) -> GeneralBlock:
    if not apdu or apdu[0] != GENERAL_BLOCK_TRANSFER:
        raise MalformedNotification(f"tag 0x{apdu[:1].hex() or 'none'} is not a general-block-transfer (0xE0)")
    if len(apdu) < 7:
        raise MalformedNotification(f"general-block-transfer of {len(apdu)} bytes is truncated (header needs 7)")
    control = apdu[1]
    try:
        n, pos = decode_length(apdu, 6)
    except MalformedReply as exc:
        raise MalformedNotification(f"general-block-transfer block-data: {exc.diagnosis}") from None
    if pos + n != len(apdu):
        raise MalformedNotification(f"general-block-transfer block-data announces {n} bytes, "
                                    f"{len(apdu) - pos} present")
    return GeneralBlock(last=bool(control & _LAST_BLOCK), streaming=bool(control & _STREAMING),
                        window=control & _WINDOW, number=int.from_bytes(apdu[2:4], "big"),
                        acknowledged=int.from_bytes(apdu[4:6], "big"), data=bytes(apdu[pos:]))


class GeneralBlockAssembler:
    """Joins the blocks of one pushed APDU; `add` returns the whole APDU after the last block.
    A block out of sequence, or an APDU growing past `max_size`, raises MalformedNotification
    and starts afresh."""

    def __init__(self, max_size: int = 1 << 20) -> None:
        self.max_size = max_size
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def expected(self) -> int:
        return len(self._parts) + 1

    @property
    def pending(self) -> bool:
        return bool(self._parts)

    def add(self, block: GeneralBlock) -> bytes | None:
        if block.number != self.expected:
            expected = self.expected
            self.reset()
            raise MalformedNotification(f"general-block-transfer block {block.number}, expected {expected}")
        self._parts.append(block.data)
        self._size += len(block.data)
        if self._size > self.max_size:
            self.reset()
            raise MalformedNotification(f"general-block-transfer push exceeds {self.max_size} bytes")
        if not block.last:
            return None
        whole = b"".join(self._parts)
        self.reset()
        return whole

    def reset(self) -> None:
        self._parts, self._size = [], 0
