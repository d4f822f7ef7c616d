"""The emulated load profile over the wire: selective access by range and by entry as the bench's
driver sends it (smmc_bench.drivers.dlms) and the emulator parses it itself (smmc_bench.fixtures.meter.selective_access),
the profile's capture period and capacity, and the bench's energy ledger."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from smmc_bench.cosem.profile_generic import (
    DeliveredEnergy,
    LoadProfile,
    boundary_after,
)
from smmc_bench.drivers.dlms import (
    DataType,
    DlmsSession,
    SessionSettings,
    TcpWrapperTransport,
    Typed,
)
from smmc_bench.drivers.dlms.errors import ServiceError
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter
from smmc_bench.fixtures.meter.selective_access import split_get

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
PASSWORD = b"test-lls-pass"
LP = "1.0.99.1.0.255"


@pytest.fixture
def day():
    """A served meter with 24 h of captured rows, and a management session."""
    clock = VirtualClock(START)
    with EmulatedMeter(clock=clock, lls_password=PASSWORD) as meter:
        host, port = meter.address
        session = DlmsSession(TcpWrapperTransport(host, port, connect_timeout=2),
                              SessionSettings(client_sap=1, server_logical=1, authentication=1, password=PASSWORD,
                                              timeout=2))
        with session:
            clock.sleep(86400 + 60)
            yield meter, session, LoadProfile(session, LP, "0.0.1.0.0.255", "0.0.96.10.1.255", "1.0.1.8.0.255")


def test_a_day_of_rows_runs_in_well_under_ten_seconds_of_wall_time():
    started = time.monotonic()
    clock = VirtualClock(START)
    meter = EmulatedMeter(clock=clock, initial_clock_offset=0.0)
    meter.model.load_profile.start()
    clock.sleep(86400 + 1)  # the last boundary's row comes a millisecond after it
    assert len(meter.model.load_profile.rows) == 96
    assert time.monotonic() - started < 10


def test_range_read_includes_both_edges_and_nothing_else(day):
    meter, _, profile = day
    rows = profile.read()
    assert len(rows) == 96 and all(r.time.minute % 15 == 0 and r.time.second == 0 for r in rows)
    window = profile.by_range(rows[10].time, rows[26].time)
    assert [r.time for r in window] == [r.time for r in rows[10:27]]
    inside = profile.by_range(rows[10].time + timedelta(seconds=1), rows[26].time - timedelta(seconds=1))
    assert [r.time for r in inside] == [r.time for r in rows[11:26]]
    assert profile.by_range(rows[-1].time + timedelta(minutes=1), rows[-1].time + timedelta(hours=1)) == []


def test_entry_read_counts_from_one_with_zero_for_the_newest_and_selects_columns(day):
    _, _, profile = day
    rows = profile.read()
    assert profile.by_entry(1, 3) == rows[:3]
    assert profile.by_entry(94, 0) == rows[93:]
    assert profile.generic.by_entry(2, 3, 3, 3) == [[rows[1].energy], [rows[2].energy]]
    assert profile.generic.by_entry(1, 1, 2, 0)[0] == [rows[0].status, rows[0].energy]
    assert profile.by_entry(200, 300) == []


def test_selective_access_to_anything_but_a_buffer_is_refused(day):
    _, session, profile = day
    with pytest.raises(ServiceError):
        session.get(3, "1.0.1.8.0.255", 2, (2, Typed(DataType.STRUCTURE, [
            Typed(DataType.DOUBLE_LONG_UNSIGNED, 1), Typed(DataType.DOUBLE_LONG_UNSIGNED, 1),
            Typed(DataType.LONG_UNSIGNED, 1), Typed(DataType.LONG_UNSIGNED, 0)])))
    with pytest.raises(ServiceError):
        session.get(7, LP, 2, (3, Typed(DataType.NULL)))  # no such selector
    with pytest.raises(ServiceError):
        profile.generic.by_entry(1, 2, 2, 9)  # column 9 of 3
    assert len(profile.read()) == 96  # the session still works


def test_range_read_of_the_day_over_blocks(day):
    meter, session, profile = day
    meter.load_profile.fill(rows=900)
    rows = profile.read()
    end = rows[-1].time
    window = profile.by_range(end - timedelta(hours=24), end)
    assert [r.time for r in window] == [r.time for r in rows if r.time >= end - timedelta(hours=24)]
    assert len(window) == 97
    assert [r.energy for r in rows] == sorted(r.energy for r in rows)  # history joins the rows captured


def test_split_get_leaves_a_request_without_selection_alone():
    plain = bytes.fromhex("c001c1000701006301 00ff0200".replace(" ", ""))
    assert split_get(plain) == (plain, None)
    selected = plain[:-1] + b"\x01\x02\x02\x04"
    assert split_get(selected) == (plain, b"\x02\x02\x04")


def test_capture_boundary_and_ledger():
    assert boundary_after(START + timedelta(seconds=1), 900) == START + timedelta(minutes=15)
    assert boundary_after(START, 900) == START + timedelta(minutes=15)
    ledger = DeliveredEnergy()
    ledger.sample(0, 3600.0)
    ledger.sample(100, 3600.0)
    ledger.cut(40, 60)  # the bench cut the supply for 20 s
    ledger.sample(200, 7200.0)
    assert ledger.wh_between(0, 100) == pytest.approx(80.0)
    assert ledger.wh_between(100, 200) == pytest.approx(150.0)  # linear from 3600 to 7200 W
    with pytest.raises(ValueError):
        ledger.wh_between(0, 300)
