"""Pushes in general block transfer (0xE0) are reassembled; the ciphering and signing tags are
named as IEC 62056-5-3 names them (0xDD general-ciphering, 0xDF general-signing)."""
from __future__ import annotations

import socket

import pytest
from smmc_bench.drivers.dlms.errors import MalformedReply
from smmc_bench.drivers.headend.notification import (
    GeneralBlockAssembler,
    MalformedNotification,
    parse_data_notification,
    parse_general_block,
)

from .test_listener import BODY, clock, frame, listener, notification  # noqa: F401 (fixtures)


def blocks(apdu: bytes, size: int, *, numbers: list[int] | None = None) -> list[bytes]:
    parts = [apdu[i:i + size] for i in range(0, len(apdu), size)]
    numbers = numbers or list(range(1, len(parts) + 1))
    out = []
    for index, (number, part) in enumerate(zip(numbers, parts)):
        control = 0x40 | (0x80 if index == len(parts) - 1 else 0)  # streaming, last on the last
        out.append(bytes((0xE0, control)) + number.to_bytes(2, "big") + b"\x00\x00" + bytes((len(part),)) + part)
    return out


@pytest.mark.parametrize("tag, name", [(0xDD, "general-ciphering"), (0xDF, "general-signing"),
                                       (0xDB, "general-glo-ciphering"), (0xDC, "general-ded-ciphering")])
def test_ciphered_tags_are_named_by_the_standard(tag, name):
    with pytest.raises(MalformedNotification, match=f"\\({name}, tag 0x{tag:02X}\\)"):
        parse_data_notification(bytes((tag,)) + bytes(10))


def test_malformed_notification_is_one_of_the_bench_errors():
    with pytest.raises(MalformedReply):
        parse_data_notification(b"\x63")


def test_assembler_joins_blocks_and_checks_their_numbers():
    whole = notification(invoke=7)
    assembler = GeneralBlockAssembler()
    parts = blocks(whole, 5)
    assert all(assembler.add(parse_general_block(p)) is None for p in parts[:-1])
    assert assembler.add(parse_general_block(parts[-1])) == whole
    with pytest.raises(MalformedNotification, match="block 2, expected 1"):
        assembler.add(parse_general_block(parts[1]))
    with pytest.raises(MalformedNotification, match="announces"):
        parse_general_block(parts[0] + b"\x00")


def test_listener_reassembles_a_push_in_general_block_transfer(listener):
    whole = notification(invoke=0x42)
    stream = b"".join(frame(p) for p in blocks(whole, 6))
    with socket.create_connection(listener.address, timeout=2) as sock:
        sock.sendall(stream)
        got = listener.wait_for(lambda n: n.invoke_id == 0x42, timeout_s=2)
    assert got is not None and got.data == [b"EMU1", 4]
    assert not listener.rejected


def test_listener_rejects_blocks_out_of_sequence_and_goes_on(listener):
    parts = blocks(notification(invoke=1), 6)
    stream = frame(parts[0]) + frame(parts[2]) + frame(notification(invoke=9))
    with socket.create_connection(listener.address, timeout=2) as sock:
        sock.sendall(stream)
        assert listener.wait_for(lambda n: n.invoke_id == 9, timeout_s=2) is not None
    (rejected,) = listener.rejected
    assert "block 3, expected 2" in rejected.diagnosis
