"""DLMS UA object identifiers: application context names and authentication mechanism names.

Both come in two forms the standards permit, and the bench accepts either:

- the BER encoding of the OID's value, e.g. 60 85 74 05 08 02 01 for {2 16 756 5 8 2 1}
  (in the AARE, and as an IC 15 octet-string attribute);
- IC 15's structure form (Blue Book, association LN attributes 4 and 6): seven elements
  {joint-iso-ctt 2, country 16, country-name 756, identified-organization 5, DLMS-UA 8,
  application-context 1 / authentication-mechanism-name 2, id}, each an unsigned or a
  long-unsigned (decoded here as plain ints).
"""
from __future__ import annotations

from typing import Any

from .errors import MalformedReply

DLMS_UA = (2, 16, 756, 5, 8)
APPLICATION_CONTEXT = DLMS_UA + (1,)
MECHANISM_NAME = DLMS_UA + (2,)

CONTEXT_NAMES = {1: "LN", 2: "SN", 3: "LN-with-ciphering", 4: "SN-with-ciphering"}
MECHANISM_NAMES = {0: "lowest", 1: "LLS", 2: "HLS", 3: "HLS-MD5", 4: "HLS-SHA1", 5: "HLS-GMAC",
                   6: "HLS-SHA256", 7: "HLS-ECDSA"}


def decode_oid(content: bytes, what: str = "object identifier") -> tuple[int, ...]:
    """Arcs of a BER-encoded OID value (the content octets, without tag and length)."""
    if not content:
        raise MalformedReply(f"{what} is empty")
    arcs: list[int] = []
    value = 0
    pending = False
    for i, byte in enumerate(content):
        if not pending and byte == 0x80:
            raise MalformedReply(f"{what} {content.hex()}: sub-identifier with a leading 0x80 byte")
        value = (value << 7) | (byte & 0x7F)
        pending = bool(byte & 0x80)
        if not pending:
            if not arcs:
                first = min(value // 40, 2)
                arcs.extend((first, value - 40 * first))
            else:
                arcs.append(value)
            value = 0
    if pending:
        raise MalformedReply(f"{what} {content.hex()}: last sub-identifier is cut short")
    return tuple(arcs)


def encode_oid(arcs: tuple[int, ...]) -> bytes:
    """BER encoding of an OID value (for requests and tests)."""
    if len(arcs) < 2:
        raise ValueError("an OID has at least two arcs")
    out = bytearray()
    for value in (40 * arcs[0] + arcs[1], *arcs[2:]):
        chunk = [value & 0x7F]
        value >>= 7
        while value:
            chunk.append(0x80 | (value & 0x7F))
            value >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def arcs_of(value: Any, what: str) -> tuple[int, ...]:
    """Arcs of a name as a COSEM attribute carries it: octet-string (BER value) or structure."""
    if isinstance(value, bytes):
        return decode_oid(value, what)
    if isinstance(value, list):
        if len(value) != 7 or not all(isinstance(arc, int) and not isinstance(arc, bool) and arc >= 0
                                      for arc in value):
            raise MalformedReply(f"{what} {value!r} is a structure but not of 7 unsigned / long-unsigned "
                                 f"elements {{2, 16, 756, 5, 8, x, id}}")
        return tuple(value)
    raise MalformedReply(f"{what} {value!r} is neither an octet-string (BER OID) nor a structure of 7 integers")


def _dlms_id(arcs: tuple[int, ...], prefix: tuple[int, ...], what: str, value: Any) -> int:
    if len(arcs) != len(prefix) + 1 or arcs[:len(prefix)] != prefix:
        raise MalformedReply(f"{what} {'.'.join(map(str, arcs))} is not a DLMS UA name "
                             f"({'.'.join(map(str, prefix))}.x)")
    return arcs[-1]


def mechanism_id(value: Any, what: str = "authentication_mechanism_name") -> int:
    """The mechanism id (0 lowest, 1 LLS, 5 HLS-GMAC, ...) of a mechanism name in either form."""
    return _dlms_id(arcs_of(value, what), MECHANISM_NAME, what, value)


def context_id(value: Any, what: str = "application_context_name") -> int:
    """The context id (1 LN, 2 SN, 3 LN with ciphering, 4 SN with ciphering) in either form."""
    return _dlms_id(arcs_of(value, what), APPLICATION_CONTEXT, what, value)


def mechanism_label(mechanism: int) -> str:
    return MECHANISM_NAMES.get(mechanism, f"mechanism-{mechanism}")


def context_label(context: int) -> str:
    return CONTEXT_NAMES.get(context, f"context-{context}")
