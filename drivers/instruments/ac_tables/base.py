"""What a per-model command table is (the libsigrok scpi-pps pattern).

A table is data: the strings one model wants for each operation, plus, when
the model has a hardware sequencer (LIST / transient mode), a function that
turns a list of supply steps into the commands that program, start and end
it. The driver (`smmc_bench.drivers.instruments.ac_source`) does the rest, identically
for every model; a new source is a new table module, nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence


@dataclass(frozen=True)
class SupplyStep:
    """One step of a sequence: hold `voltage` (V rms) at `frequency` (Hz) for `duration_s`."""

    voltage: float
    frequency: float
    duration_s: float


@dataclass(frozen=True)
class TransientProgram:
    """A sequence as one model's sequencer runs it."""

    setup: tuple[str, ...]  # programs the steps; each is sent and checked against the error queue
    start: tuple[str, ...]  # arms and starts it; the sequence begins while the last of these is processed
    finish: tuple[str, ...]  # back to fixed (immediate) mode after the sequence
    # Seconds each step really lasts once the model's time base has rounded it (e.g. whole cycles).
    durations_s: tuple[float, ...]
    # True when the source's own sequencer times the steps in whole cycles of the output.
    cycle_exact: bool
    # A query that tells whether the sequence still runs, and the replies that mean it is over
    # (None: the model gives no such query we trust; the driver waits out the programmed time).
    busy_query: str | None = None
    idle_replies: tuple[str, ...] = ()
    # Self-verification: each (query, values) is read back after `setup` and must answer those
    # numbers (a source that silently took another unit or truncated a list is caught here).
    readback: tuple[tuple[str, tuple[float, ...]], ...] = ()
    # The phase angle (deg) of the output at which the source starts the sequence, as programmed
    # (None: it starts when the start command is processed). A synchronised start may wait up to
    # one cycle of the output after the start command.
    start_angle_deg: float | None = None


class TransientBuilder(Protocol):
    def __call__(self, steps: Sequence[SupplyStep], *, start_angle_deg: float | None = None) -> TransientProgram: ...


def check_angle(start_angle_deg: float) -> float:
    """A start angle as the manuals take it: 0 <= deg < 360 (0-359.9)."""
    if not 0.0 <= start_angle_deg < 360.0:
        raise ValueError(f"start angle must be 0 <= deg < 360, not {start_angle_deg}")
    return round(start_angle_deg, 1) % 360.0


@dataclass(frozen=True)
class AcCommandTable:
    model: str
    description: str
    # Format strings: {v} volts, {f} hertz.
    set_voltage: str
    voltage_query: str
    set_frequency: str
    frequency_query: str
    output_on: str
    output_off: str
    output_query: str
    measure_voltage: str
    measure_current: str
    measure_power: str
    # Fetch the figures of the acquisition measure_voltage started (None: measure each anew).
    fetch_current: str | None = None
    fetch_power: str | None = None
    identify: str = "*IDN?"
    clear_status: str = "*CLS"
    error_query: str = "SYST:ERR?"
    # Sent before anything else on open (e.g. remote mode); each checked.
    on_open: tuple[str, ...] = ()
    # Stops any running sequence and returns to fixed mode (part of the safe state).
    abort: tuple[str, ...] = ()
    # Sent after on_open: the state a run needs whatever the front panel left (range, shape,
    # DC offset, coupling, slew); each checked against the error queue.
    known_state: tuple[str, ...] = ()
    # Operation-complete handshake after a relay/slew change (None: the model has none we trust).
    operation_complete: str | None = "*OPC?"
    # Sent (unchecked) before closing: the front panel back to local.
    on_close: tuple[str, ...] = ()
    # Command-table entries not confirmed in a manual: shown by `bench doctor` (check with a scope).
    unconfirmed: tuple[str, ...] = ()
    # Manual sections the table rests on, entry -> citation.
    sources: tuple[tuple[str, str], ...] = ()
    transient: TransientBuilder | None = None
    # The sequencer can start at a chosen phase angle of the output (builder takes start_angle_deg).
    phase_sync: bool = False
    # Seconds one MEASure query takes to acquire (it starts a new acquisition each time); the bench
    # does not sample a software-timed event with a query that would outlast it.
    acquisition_s: float = 0.0
    # How a bench-timed dropout cuts the supply: OUTP OFF/ON, or programming 0 V and back (for
    # models whose output relay takes too long to switch to time a dropout with it).
    software_dropout: str = "output"
    # Words expected in the *IDN? reply of this model (case-insensitive), to warn on a mismatch.
    idn_words: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_transient(self) -> bool:
        return self.transient is not None

    def idn_matches(self, identification: str) -> bool:
        text = identification.upper()
        return not self.idn_words or any(word.upper() in text for word in self.idn_words)


def number_list(values: Sequence[float], decimals: int) -> str:
    return ",".join(f"{value:.{decimals}f}" for value in values)
