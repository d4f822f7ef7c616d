"""Pins the dsmr-parser behaviours drivers/display/dsmr.py relies on or works around."""
from __future__ import annotations

import importlib.metadata

import pytest
from dsmr_parser.exceptions import InvalidChecksumError
from dsmr_parser.parsers import TelegramParser
from smmc_bench.drivers.display import parse_telegram


def frame(lines: list[str], header: str = "/EMU5EMU0000001\r\n\r\n") -> bytes:
    body = header + "".join(f"{line}\r\n" for line in lines) + "!"
    return (body + f"{TelegramParser.crc16(body):04X}\r\n").encode()


def test_pinned_release():
    # Later releases require dlms-cosem 21.3.2, which the bench's dlms-cosem pin excludes.
    assert importlib.metadata.version("dsmr-parser") == "0.29"


def test_dsmr_parser_crc_is_the_p1_crc():
    assert TelegramParser.crc16("123456789") == 0xBB3D
    good = frame(["1-0:1.8.0(000001.000*kWh)"]).decode()
    TelegramParser.validate_checksum(good)
    with pytest.raises(InvalidChecksumError):
        TelegramParser.validate_checksum(good.replace("001.000", "001.001"))


def test_dsmr_parser_drops_a_bad_line_silently_so_the_bench_checks_lines_itself():
    from dsmr_parser import obis_references, telegram_specifications

    text = frame(["1-0:1.8.0(000001.000*kWh)", "0-0:96.13.0(not hex!)"]).decode()
    parsed = TelegramParser(telegram_specifications.V5, apply_checksum_validation=False).parse(text)
    assert obis_references.TEXT_MESSAGE not in parsed  # dropped with a log line, not raised
    telegram = parse_telegram(text.encode())
    assert any("96.13.0" in problem for problem in telegram.problems)


def test_parse_telegram_reads_values_and_judges_form():
    telegram = parse_telegram(frame(["0-0:1.0.0(250310080000W)", "1-0:1.7.0(01.000*kW)", "0-0:96.3.10(1)"]))
    assert telegram.problems == ()
    assert (telegram.maker, telegram.identification) == ("EMU", "EMU0000001")
    assert telegram.value("0-0:1.0.0") == "250310080000W"  # raw text: no Europe/Amsterdam conversion
    assert (telegram.value("1-0:1.7.0"), telegram.unit("1-0:1.7.0")) == ("01.000", "kW")
    assert parse_telegram(frame(["0-0:96.3.10(1)"], header="/EMU5EMU0000001\r\n")).problems
    bad_crc = frame(["0-0:96.3.10(1)"]).replace(b"(1)", b"(0)")
    assert any("CRC" in problem for problem in parse_telegram(bad_crc).problems)
