"""Sans-IO parsing of pushed DataNotification APDUs (IEC 62056-5-3, xDLMS).

    DataNotification ::= SEQUENCE {
        long-invoke-id-and-priority  Unsigned32,
        date-time                    OCTET STRING,  -- A-XDR: length 0 (absent) or 12
        notification-body            Data }

Strict: every byte is accounted for, reserved bits must be zero, the date-time
must be a valid COSEM date-time, and the body must be exactly one A-XDR Data
(decoded by drivers.dlms.cosem_types, the bench's own codec). Anything else
raises MalformedNotification with a one-line diagnosis.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drivers.dlms.cosem_types import CosemDateTime, decode_exact
from drivers.dlms.errors import DlmsError

DATA_NOTIFICATION = 0x0F
DATE_TIME_LENGTH = 12
# Ciphered xDLMS APDUs a meter may push instead (general-glo, general-ded, glo/ded data-notification).
CIPHERED_TAGS = {0xDB: "general-glo-ciphering", 0xDC: "general-ded-ciphering",
                 0xDF: "general-ciphering", 0xE0: "general-signing"}
_PRIORITY = 0x80
_CONFIRMED = 0x40
_BREAK_ON_ERROR = 0x20
_SELF_DESCRIPTIVE = 0x10
_RESERVED = 0x0F


class MalformedNotification(ValueError):
    def __init__(self, diagnosis: str) -> None:
        super().__init__(diagnosis)
        self.diagnosis = diagnosis


@dataclass(frozen=True)
class ParsedNotification:
    invoke_id: int  # the 24-bit long invoke id
    high_priority: bool
    confirmed: bool
    self_descriptive: bool
    break_on_error: bool
    date_time: CosemDateTime | None  # validated; may still leave fields not specified
    data: Any  # plain values, as drivers.dlms.cosem_types.decode_data gives them


def parse_data_notification(apdu: bytes) -> ParsedNotification:
    if not apdu:
        raise MalformedNotification("empty APDU")
    tag = apdu[0]
    if tag in CIPHERED_TAGS:
        raise MalformedNotification(f"ciphered APDU ({CIPHERED_TAGS[tag]}, tag 0x{tag:02X}): "
                                    f"this listener takes unciphered DataNotifications only")
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
