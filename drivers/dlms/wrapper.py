"""IEC 62056-47 TCP wrapper codec (sans-IO): 8-byte header
version(2)=1 | source wPort(2) | destination wPort(2) | length(2), then the APDU."""
from __future__ import annotations

import struct

from .errors import MalformedReply

HEADER = struct.Struct(">HHHH")
HEADER_SIZE = HEADER.size
VERSION = 1


def wrap(source_wport: int, destination_wport: int, apdu: bytes) -> bytes:
    if len(apdu) > 0xFFFF:
        raise ValueError(f"APDU of {len(apdu)} bytes does not fit one wrapper frame")
    return HEADER.pack(VERSION, source_wport, destination_wport, len(apdu)) + apdu


def check_header(header: bytes, *, expect_source: int, expect_destination: int) -> int:
    """Validate a reply header (server -> client); return the payload length."""
    version, source, destination, length = HEADER.unpack(header)
    if version != VERSION:
        raise MalformedReply(f"wrapper version {version} (expected {VERSION})", raw=bytes(header))
    if source != expect_source or destination != expect_destination:
        raise MalformedReply(
            f"wrapper wPorts {source}->{destination} (expected {expect_source}->{expect_destination})",
            raw=bytes(header))
    if length == 0:
        raise MalformedReply("wrapper frame announces an empty APDU", raw=bytes(header))
    return length
