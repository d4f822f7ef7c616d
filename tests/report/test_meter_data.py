"""The meter data a test read is kept bounded: a row read twice once, rows past the bound only counted,
and nothing noted outside a test."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from smmc_bench.report import meter_data


def test_rows_are_kept_once_and_bounded():
    start = datetime(2026, 12, 1, tzinfo=timezone.utc)
    log = meter_data.begin()
    try:
        for _ in range(2):  # a buffer read twice
            for i in range(meter_data.MAX_ROWS + 10):
                meter_data.note("load_profile", "1.0.99.1.0.255", start + timedelta(minutes=15 * i),
                                {"status": 0, "energy": float(i)})
    finally:
        assert meter_data.end() is log
    assert len(log.rows) == meter_data.MAX_ROWS and log.dropped == 20
    assert log.rows[0] == {"kind": "load_profile", "obis": "1.0.99.1.0.255", "stamp": "2026-12-01T00:00:00+00:00",
                           "values": {"status": 0, "energy": 0.0}}


def test_nothing_is_noted_outside_a_test():
    meter_data.end()  # the log the bench plugin opened for this test
    meter_data.note("event", "0.0.99.98.0.255", None, {"code": 4})
    assert meter_data.end() is None
