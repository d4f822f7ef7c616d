"""Each event-log mutant keeps a full standard event log differently from a FIFO of profile_entries."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
PROBED_MUTANTS = {"event-log-stops-when-full", "event-log-cleared-when-full", "event-log-entries-in-use-wrong"}


def overfill(mutant: str | None) -> tuple[int, list[int], int, int]:
    """Record 3 events, then up to capacity + 3 events numbered 1..: entries_in_use (attr 7) after
    the first 3; then the codes kept, entries_in_use and the rows held."""
    log = EmulatedMeter(clock=VirtualClock(START), mutant=mutant).model.standard_log
    log.entries.clear()
    numbers = iter(range(1, log.profile_entries + 4))
    for number in (next(numbers) for _ in range(3)):
        log.record(START, number)
    early = int(log.get(7).value)
    for number in numbers:
        log.record(START, number % 256)
    return early, [code for _, code in log.entries], int(log.get(7).value), len(log.entries)


def test_conforming_log_is_a_fifo_of_its_capacity():
    early, codes, in_use, rows = overfill(None)
    assert (early, in_use, rows) == (3, 100, 100) and codes[0] == 4 and codes[-1] == 103 % 256


@pytest.mark.parametrize("name", sorted(PROBED_MUTANTS))
def test_event_log_mutant_differs_from_a_fifo(name):
    assert overfill(name) != overfill(None)
