"""Ctrl-C and SIGTERM for a whole run: the run stops, the bench does not stay in a test's state.

The first SIGINT or SIGTERM becomes an exception in the main thread (KeyboardInterrupt, or
`Terminated` for SIGTERM, as the AC source's `SafeStateGuard` raises them), so the test that
was running unwinds through its own restores and pytest tears every fixture down. From then
on the run is stopping: later signals are held (counted, and named in the record) instead of
cutting the teardown short. SIGKILL remains for a bench that must be abandoned.

While a `SafeStateGuard` holds the AC source it installs its own handlers (same exceptions,
held while it restores the source) and gives ours back when it ends.
"""
from __future__ import annotations

import signal
import threading
from typing import Callable

from smmc_bench.drivers.instruments import Terminated

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(exc: BaseException) -> str:
    """The signal behind an interruption (a KeyboardInterrupt that is not `Terminated` is Ctrl-C)."""
    return "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"


class RunInterrupt:
    """The run's SIGINT/SIGTERM handlers and what they received."""

    def __init__(self) -> None:
        self.received: str | None = None  # the signal that stopped the run
        self.held: list[str] = []  # signals that arrived while the bench was stopping
        self._stopping = False
        self._previous: dict[int, Callable | int | None] = {}

    @property
    def installed(self) -> bool:
        return bool(self._previous)

    def install(self) -> bool:
        """Take SIGINT and SIGTERM (main thread only); False when already ours or not possible."""
        if self.installed or threading.current_thread() is not threading.main_thread():
            return False
        self.received, self.held, self._stopping = None, [], False
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return True

    def uninstall(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def note(self, exc: BaseException) -> None:
        """An interruption seen as an exception (perhaps raised by another handler, the AC source
        guard's): the run is stopping because of it."""
        if self.received is None:
            self.received = signal_name(exc)

    def stop(self) -> None:
        """The run is stopping (or ending): hold every later signal until the process exits, our
        handlers in place even over a guard's (the guard gives ours back when it ends)."""
        self._stopping = True
        if self.installed and threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                signal.signal(signum, self._on_signal)

    @property
    def interrupted(self) -> bool:
        return self.received is not None or bool(self.held)

    def describe(self) -> str:
        what = f"interrupted by {self.received or self.held[0]}"
        if self.held:
            what += f" ({', '.join(self.held)} held until the bench was back in its safe state)"
        return what

    def _on_signal(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if self._stopping or self.received is not None:
            self.held.append(name)
            return
        self.received = name
        # No I/O here: the exception unwinds whatever the main thread was doing, restores first.
        raise Terminated(f"signal {name}") if signum == signal.SIGTERM else KeyboardInterrupt()


# One per process: the CLI takes the signals before pytest starts, the plugin during the run.
RUN_INTERRUPT = RunInterrupt()
