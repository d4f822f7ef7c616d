"""dsmr-parser, the kept P1 telegram library, and what the bench does around it (one place).

Pinned to 0.29: every later release pins dlms-cosem 21.3.2, which conflicts with
the bench's dlms-cosem. Two behaviours of that release are worked around here and
pinned by tests/drivers/test_p1_dsmr_pin.py:
- a line whose value does not parse is logged and dropped, not raised: the bench
  parses every value as text and checks each line itself, so a bad line is seen;
- timestamps are converted as Europe/Amsterdam time: the bench keeps the raw text
  and interprets it with the meter's own time zone.
"""
from __future__ import annotations

from decimal import Decimal

from dsmr_parser.exceptions import InvalidChecksumError, ParseError
from dsmr_parser.parsers import CosemParser, TelegramParser, ValueParser


def _text_spec(obis_codes: list[str]) -> dict:
    """A dsmr-parser specification reading each named line's value groups as text."""
    objects = {}
    for code in obis_codes:
        pattern = r"(?m)^" + code.replace(".", r"\.").replace("-", r"\-") + r"\(.*?\r\n"
        objects[pattern] = CosemParser(ValueParser(str))
    return {"checksum_support": True, "objects": objects}


def checksum_problem(text: str) -> str | None:
    """None when the CRC16 after '!' matches '/'..'!' (dsmr-parser's check), else what is wrong."""
    try:
        TelegramParser.validate_checksum(text)
    except InvalidChecksumError as exc:
        return f"CRC mismatch: {exc}"
    except ParseError as exc:
        return f"no CRC: {exc}"
    return None


def line_values(text: str, obis_codes: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """{obis line code: (value text, unit)} for the named lines present in the telegram."""
    spec = _text_spec(obis_codes)
    parsed = TelegramParser(spec, apply_checksum_validation=False).parse(text)
    found = {}
    for code, pattern in zip(obis_codes, spec["objects"]):
        if pattern in parsed:
            found[code] = (parsed[pattern].value, parsed[pattern].unit)
    return found


def decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)
