"""Putting the meter back after a test: every step is tried, whatever failed before it."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Callable, Iterator

from smmc_bench.drivers.dlms.errors import DlmsError

log = logging.getLogger(__name__)


class RestoreFailed(Exception):
    """The bench could not put the meter back as it found it (an ERROR, not a verdict on the meter)."""


class BenchLimitation(Exception):
    """The bench cannot bring the meter into a test's precondition by itself (an ERROR)."""


def restore_all(what: str, steps: list[tuple[str, Callable[[], object]]],
                state: Callable[[], str] | None = None) -> None:
    """Run each step; a failed step does not stop the next (reconnecting matters most and
    comes last). Raise one RestoreFailed naming every step that failed and, when `state` is
    given, the state the meter was left in (read afresh, or why it could not be read)."""
    failures = []
    for name, step in steps:
        # A fault on the line is mostly transient and each step starts by reading the state it
        # puts right (so it may run twice): a failed step is tried once more before giving up.
        for attempt in (1, 2):
            try:
                step()
                break
            except (DlmsError, BenchLimitation, AssertionError) as exc:
                diagnosis = getattr(exc, "diagnosis", None) or exc
                if attempt == 2 or isinstance(exc, BenchLimitation):
                    failures.append(f"{name}: {diagnosis}")
                    break
                log.warning("%s: %s failed (%s); trying once more", what, name, diagnosis)
    if failures:
        left = ""
        if state is not None:
            try:
                left = f"; meter left with {state()}"
            except DlmsError as exc:
                left = f"; the meter's state could not be read: {exc.diagnosis}"
        raise RestoreFailed(f"{what} not fully restored: " + "; ".join(failures) + left)


@contextmanager
def restored(what: str, steps: list[tuple[str, Callable[[], object]]]) -> Iterator[None]:
    """Put things back after the block. When the block failed, its failure stays the verdict
    (a restore failure is logged beside it); when it passed, a restore failure is an ERROR."""
    try:
        yield
    except BaseException:
        try:
            restore_all(what, steps)
        except RestoreFailed as exc:
            log.error("%s", exc)
        raise
    restore_all(what, steps)
