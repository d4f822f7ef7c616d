"""Programmable AC source: one driver for every model, through its command table.

    source = AcSource("TCPIP::192.0.2.20::5025::SOCKET", model="chroma-61500")
    with source, SafeStateGuard(source):
        source.identify()
        result = source.dropout(0.2, clock)    # LIST mode on a Chroma: 10 cycles at 50 Hz, cycle-exact
        result.describe()

Every command is followed by an error-queue read, so a command the source
rejects raises `InstrumentCommandError` naming it. Dropouts and sags run in
the model's sequencer when its table has one (`method="list"`,
`cycle_exact=True`), otherwise the bench times them (`method="software"`,
`cycle_exact=False`) and the result says so. The wait goes through the bench
clock, so on the emulated bench a 3-minute outage costs no wall time.

The safe state is nominal voltage and frequency with the output on (the
meters under test stay powered); `SafeStateGuard` puts the source there on
leaving its block however it is left: normally, by an exception, by Ctrl-C
or SIGTERM.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Literal, Protocol, Sequence, runtime_checkable

from smmc_bench.drivers.instruments.ac_tables import (
    AcCommandTable,
    SupplyStep,
    TransientProgram,
    table_for,
)
from smmc_bench.drivers.instruments.ac_tables.base import check_angle
from smmc_bench.drivers.instruments.errors import (
    InstrumentError,
    InstrumentReplyError,
    NotSupported,
)
from smmc_bench.drivers.instruments.scpi import ScpiConnection

log = logging.getLogger(__name__)

# How long past its programmed end a hardware sequence may still report "running" before we give up.
_SEQUENCE_GRACE_S = 2.0
_POLL_S = 0.02


class WaitClock(Protocol):
    """What the driver needs of the bench clock (smmc_bench.clock.BenchClock and VirtualClock qualify)."""

    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class _WallClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class AcMeasurement:
    voltage_v: float
    current_a: float
    power_w: float


@dataclass(frozen=True)
class DropoutResult:
    """What a dropout or sag did, as evidence: how it was timed and when, in bench time."""

    kind: Literal["dropout", "sag"]
    method: Literal["list", "software"]
    cycle_exact: bool
    model: str
    residual_v: float  # the voltage during the event (0 for a dropout)
    restored_v: float  # the voltage before and after
    frequency_hz: float
    requested_s: float
    programmed_s: float  # what the source was told (whole cycles in LIST mode), or the bench's sleep
    started_at: float  # bench monotonic seconds: the command that starts the event was sent
    ended_at: float  # bench monotonic seconds: the supply is back (LIST: start + programmed; software: ON acked)
    # Bench seconds between sending a start/stop command and its acknowledgement: the timing
    # uncertainty of a software event (for a LIST event, of its start only).
    uncertainty_s: float
    # Measured, not trusted: the event's length as the source's own measurement saw it (voltage
    # sampled during the event), with the half-width of its bounds. A verdict uses applied_s.
    applied_s: float | None = None
    applied_uncertainty_s: float | None = None
    measurement: str = "not measured"
    # Phase-synchronised start: the angle asked (None: not asked) and the one the source was
    # programmed with (a Chroma list always starts at one: 0 deg unless asked; None: no sync).
    requested_angle_deg: float | None = None
    start_angle_deg: float | None = None
    # Bench seconds: the event's start as the voltage samples bound it (midpoint; None: not seen).
    applied_started_at: float | None = None

    def evidence(self) -> dict[str, object]:
        """What a test records beside its verdict."""
        return {"kind": self.kind, "method": self.method, "cycle_exact": self.cycle_exact, "model": self.model,
                "requested_s": self.requested_s, "programmed_s": self.programmed_s,
                "applied_s": self.applied_s, "uncertainty_s": self.applied_uncertainty_s,
                "measurement": self.measurement, "residual_v": self.residual_v, "restored_v": self.restored_v,
                "requested_angle_deg": self.requested_angle_deg, "start_angle_deg": self.start_angle_deg}

    @property
    def duration_s(self) -> float:
        return self.ended_at - self.started_at

    def describe(self) -> str:
        how = ("source LIST sequencer, whole cycles" if self.method == "list"
               else "bench-timed OUTP/VOLT commands, NOT cycle-exact")
        level = "0 V" if self.kind == "dropout" else f"{self.residual_v:.1f} V"
        if self.start_angle_deg is not None:
            level += f" from {self.start_angle_deg:g} deg"
        return (f"{self.kind} to {level} for {self.programmed_s * 1000:.1f} ms "
                f"(asked {self.requested_s * 1000:.1f} ms; {how}; +/-{self.uncertainty_s * 1000:.1f} ms; "
                f"{self.model}); applied "
                + (f"{self.applied_s * 1000:.1f} +/- {self.applied_uncertainty_s * 1000:.1f} ms ({self.measurement})"
                   if self.applied_s is not None else "not measured"))


@runtime_checkable
class PowerSource(Protocol):
    """The supply as the rest of the bench sees it (labgrid-style tiny protocol)."""

    def on(self) -> None: ...
    def off(self) -> None: ...
    def set_voltage(self, volts: float) -> None: ...
    def measure(self) -> AcMeasurement: ...
    def safe_state(self) -> None: ...


class AcSource:
    """A programmable AC source over PyVISA, driven through its model's command table."""

    def __init__(self, resource: str, *, model: str = "generic", nominal_voltage: float = 220.0,
                 nominal_frequency: float = 50.0, timeout: float = 2.0, backend: str = "@py",
                 read_termination: str = "\n", write_termination: str = "\n",
                 baud_rate: int | None = None, name: str = "AC source") -> None:
        self.table: AcCommandTable = table_for(model)
        self.nominal_voltage = nominal_voltage
        self.nominal_frequency = nominal_frequency
        self.name = name
        self.link = ScpiConnection(resource, name=f"{name} ({model})", backend=backend, timeout=timeout,
                                   read_termination=read_termination, write_termination=write_termination,
                                   error_query=self.table.error_query, baud_rate=baud_rate)
        self.identification: str | None = None

    @property
    def model(self) -> str:
        return self.table.model

    @property
    def resource(self) -> str:
        return self.link.resource

    # -- lifecycle ------------------------------------------------------------
    def open(self) -> "AcSource":
        """Connect, clear stale status (old errors must not be blamed on our first command), identify."""
        self.link.open()
        try:
            self.link.write(self.table.clear_status, check=False)
            for command in self.table.on_open:
                self.link.write(command)
            self.identify()
            # Only on the model the table is for: another model's commands could do anything.
            if self.table.idn_matches(self.identification or ""):
                for command in self.table.known_state:
                    self.link.write(command)
        except BaseException:
            self.link.close()
            raise
        return self

    def close(self) -> None:
        if self.link.is_open:
            # The front panel back to the lab (a close must not fail on it: refusals are logged).
            for command in self.table.on_close:
                try:
                    self.link.write(command)  # checked: a refusal is logged, not raised
                except InstrumentError as exc:
                    log.warning("%s: %s on close failed: %s", self.name, command, exc.diagnosis)
        self.link.close()

    def __enter__(self) -> "AcSource":
        return self.open() if not self.link.is_open else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- basic operations -----------------------------------------------------
    def identify(self) -> str:
        self.identification = self.link.query(self.table.identify)
        if not self.table.idn_matches(self.identification):
            log.warning("%s answers *IDN? %r, which does not look like a %s", self.name,
                        self.identification, self.table.description)
        return self.identification

    def output(self, on: bool) -> None:
        self.link.write(self.table.output_on if on else self.table.output_off)
        self.wait_complete()

    def wait_complete(self) -> None:
        """The operation-complete handshake: SYST:ERR? says a command parsed, *OPC? that the
        relay/slew it started has finished (AMETEK/CI relays take ~1 s)."""
        if self.table.operation_complete is None:
            return
        reply = self.link.query(self.table.operation_complete).strip()
        if reply != "1":
            raise InstrumentReplyError(f"{self.name}: {self.table.operation_complete!r} answered {reply!r}, not 1",
                                       raw=reply)

    def on(self) -> None:
        self.output(True)

    def off(self) -> None:
        self.output(False)

    def is_on(self) -> bool:
        reply = self.link.query(self.table.output_query).strip().upper()
        if reply in ("1", "ON"):
            return True
        if reply in ("0", "OFF"):
            return False
        raise InstrumentReplyError(f"{self.name}: {self.table.output_query!r} answered {reply!r}, not 0/1/ON/OFF",
                                   raw=reply)

    def set_voltage(self, volts: float) -> None:
        if volts < 0:
            raise ValueError(f"voltage must be >= 0 V, not {volts}")
        self.link.write(self.table.set_voltage.format(v=volts))

    def voltage(self) -> float:
        """The programmed (setpoint) voltage."""
        return self.link.query_number(self.table.voltage_query)

    def set_frequency(self, hz: float) -> None:
        if hz <= 0:
            raise ValueError(f"frequency must be > 0 Hz, not {hz}")
        self.link.write(self.table.set_frequency.format(f=hz))

    def frequency(self) -> float:
        return self.link.query_number(self.table.frequency_query)

    def measure(self) -> AcMeasurement:
        """One acquisition (the table's first query), then the others fetched from it where the
        model separates MEASure from FETCh, so the three figures describe the same cycles."""
        return AcMeasurement(
            voltage_v=self.link.query_number(self.table.measure_voltage),
            current_a=self.link.query_number(self.table.fetch_current or self.table.measure_current),
            power_w=self.link.query_number(self.table.fetch_power or self.table.measure_power),
        )

    def errors(self) -> list[tuple[int, str]]:
        """Drain the error queue (normally empty: every command already checks it)."""
        return self.link.read_errors()

    # -- safe state -----------------------------------------------------------
    def safe_state(self) -> None:
        """Nominal voltage and frequency, output on; every step is tried even if one fails."""
        failures = []
        steps = [(command, lambda c=command: self.link.write(c)) for command in self.table.abort]
        steps += [
            ("set nominal voltage", lambda: self.set_voltage(self.nominal_voltage)),
            ("set nominal frequency", lambda: self.set_frequency(self.nominal_frequency)),
            ("output on", self.on),
        ]
        for what, step in steps:
            try:
                step()
            except InstrumentError as exc:
                failures.append(f"{what}: {exc.diagnosis}")
        if failures:
            raise InstrumentError(f"{self.name}: safe state not reached ({'; '.join(failures)})")

    def abort_transient(self) -> None:
        for command in self.table.abort:
            self.link.write(command)

    # -- dropouts and sags ----------------------------------------------------
    def dropout(self, duration_s: float, clock: WaitClock | None = None, *,
                method: Literal["auto", "list", "software"] = "auto",
                start_angle_deg: float | None = None) -> DropoutResult:
        """Cut the supply for `duration_s`, then restore the voltage it had. `start_angle_deg`
        (0 <= deg < 360): start at that phase angle of the output (models whose sequencer
        synchronises its start; NotSupported elsewhere)."""
        return self._event("dropout", 0.0, duration_s, clock, method, start_angle_deg)

    def sag(self, percent: float, duration_s: float, clock: WaitClock | None = None, *,
            method: Literal["auto", "list", "software"] = "auto",
            start_angle_deg: float | None = None) -> DropoutResult:
        """Lower the supply to `percent` % of its present voltage (the residual voltage, as
        IEC 61000-4-11 names dips: 70 leaves 70 %) for `duration_s`, then restore it."""
        if not 0 <= percent < 100:
            raise ValueError(f"sag percent is the residual voltage, 0 <= percent < 100, not {percent}")
        return self._event("sag", percent, duration_s, clock, method, start_angle_deg)

    def _event(self, kind: Literal["dropout", "sag"], percent: float, duration_s: float,
               clock: WaitClock | None, method: str, start_angle_deg: float | None = None) -> DropoutResult:
        if duration_s <= 0:
            raise ValueError(f"{kind} duration must be > 0 s, not {duration_s}")
        if method not in ("auto", "list", "software"):
            raise ValueError(f"method must be auto, list or software, not {method!r}")
        if method == "list" and not self.table.has_transient:
            raise NotSupported(f"{self.name}: model {self.model} has no LIST/transient mode in its command table")
        if start_angle_deg is not None:
            check_angle(start_angle_deg)
            if not self.table.phase_sync:
                raise NotSupported(f"{self.name}: model {self.model} has no phase-synchronised start in its "
                                   f"command table; a {kind} at {start_angle_deg:g} deg cannot be applied")
            if method == "software":
                raise NotSupported(f"{self.name}: a bench-timed {kind} cannot start at a phase angle "
                                   f"(use the model's sequencer: method='auto' or 'list')")
        clock = clock or _WallClock()
        restored = self.voltage()
        frequency = self.frequency()
        residual = restored * percent / 100.0
        use_list = self.table.has_transient and method != "software"
        if use_list:
            return self._list_event(kind, residual, restored, frequency, duration_s, clock, start_angle_deg)
        return self._software_event(kind, residual, restored, frequency, duration_s, clock)

    def _list_event(self, kind, residual: float, restored: float, frequency: float,
                    duration_s: float, clock: WaitClock, start_angle_deg: float | None = None) -> DropoutResult:
        # A trailing step at the restored voltage: whatever the model does when a list ends
        # (hold the last point or go back to the fixed level), the supply comes back.
        program: TransientProgram = self.table.transient((
            SupplyStep(residual, frequency, duration_s),
            SupplyStep(restored, frequency, 1.0 / frequency),
        ), start_angle_deg=start_angle_deg)
        # A synchronised start waits for its angle: up to one cycle after the start command.
        sync_s = 1.0 / frequency if program.start_angle_deg is not None else 0.0
        for command in program.setup:
            self.link.write(command)
        self._verify_readback(program)
        threshold = (residual + restored) / 2
        try:
            sent = clock.monotonic()
            for command in program.start:
                self.link.write(command)
            acked = clock.monotonic()
            samples = self._sample_event(sent, program.durations_s[0] + sync_s, frequency, clock)
            self._wait_sequence(program, sent + sync_s, clock)
        except BaseException:
            # Never leave a half-run sequence behind, whatever interrupted it.
            self._try(program.finish)
            raise
        for command in program.finish:
            self.link.write(command)
        self.set_voltage(restored)
        event_s = program.durations_s[0]
        applied, spread = applied_duration(samples, threshold, sent)
        bounds = event_bounds(samples, threshold, sent)
        began = (bounds[0] + bounds[1]) / 2 if bounds else None
        return DropoutResult(kind=kind, method="list", cycle_exact=program.cycle_exact, model=self.model,
                             residual_v=residual, restored_v=restored, frequency_hz=frequency,
                             requested_s=duration_s, programmed_s=event_s, started_at=sent,
                             ended_at=sent + sync_s + event_s, uncertainty_s=acked - sent + sync_s,
                             applied_s=applied, applied_uncertainty_s=spread,
                             measurement=f"sampled {self.table.measure_voltage}",
                             requested_angle_deg=start_angle_deg, start_angle_deg=program.start_angle_deg,
                             applied_started_at=began)

    def _verify_readback(self, program: TransientProgram) -> None:
        """Read the programmed lists back: a source that took another unit or dropped points is
        caught before the event, not after a wrong verdict."""
        for query, expected in program.readback:
            reply = self.link.query(query)
            try:
                values = tuple(float(v) for v in reply.split(","))
            except ValueError:
                raise InstrumentReplyError(f"{self.name}: {query!r} answered {reply!r}, not a number list",
                                           raw=reply) from None
            if len(values) != len(expected) or any(
                    abs(a - b) > 1e-6 + 1e-4 * abs(b) for a, b in zip(values, expected)):
                raise InstrumentError(f"{self.name}: list read back wrong: {query!r} answered {reply!r}, "
                                      f"programmed {','.join(f'{v:g}' for v in expected)}")

    def _sample_event(self, started: float, event_s: float, frequency: float, clock: WaitClock,
                      until: float | None = None) -> list[tuple[float, float, float]]:
        """The output voltage read during the event: (sent, acked, volts) in bench seconds. Every half
        cycle near the expected edges (and in the first ones, so an event far shorter than asked is
        seen), coarser in between; until two cycles past the programmed end."""
        fine = 0.5 / frequency
        coarse = max(fine, event_s / 20)
        edge = 4 / frequency
        end = started + event_s + 2 / frequency if until is None else until
        samples = []
        while True:
            if until is not None and clock.monotonic() + self.table.acquisition_s > until:
                # One more acquisition would outlast the event it is meant to watch: stop here.
                clock.sleep(max(0.0, until - clock.monotonic()))
                return samples
            before = clock.monotonic()
            volts = self.link.query_number(self.table.measure_voltage)
            after = clock.monotonic()
            samples.append((before, after, volts))
            if after >= end:
                return samples
            if until is not None and after + fine >= end:
                clock.sleep(max(0.0, end - clock.monotonic()))
                return samples
            since = after - started
            step = fine if since < edge or abs(since - event_s) < edge else coarse
            target = after + step
            if since < event_s - edge < since + step:
                target = started + event_s - edge  # don't skip the fine window round the end
            clock.sleep(max(0.0, target - clock.monotonic()))

    def _wait_sequence(self, program: TransientProgram, started: float, clock: WaitClock) -> None:
        total = sum(program.durations_s)
        remaining = started + total - clock.monotonic()
        if remaining > 0:
            clock.sleep(remaining)
        if program.busy_query is None:
            return
        deadline = started + total + _SEQUENCE_GRACE_S
        idle = {reply.upper() for reply in program.idle_replies}
        while self.link.query(program.busy_query).strip().upper() not in idle:
            if clock.monotonic() > deadline:
                raise InstrumentError(
                    f"{self.name}: sequence still running {_SEQUENCE_GRACE_S:g} s after its programmed end "
                    f"({total:.3f} s); {program.busy_query!r} never answered {'/'.join(program.idle_replies)}")
            clock.sleep(_POLL_S)

    def _software_event(self, kind, residual: float, restored: float, frequency: float,
                        duration_s: float, clock: WaitClock) -> DropoutResult:
        # A model whose output relay is slow (AMETEK/CI ~1 s) cuts by programming 0 V instead.
        by_output = kind == "dropout" and self.table.software_dropout == "output"
        sent = clock.monotonic()
        if by_output:
            self.off()
        else:
            self.set_voltage(residual)
            self.wait_complete()
        acked = clock.monotonic()
        samples: list[tuple[float, float, float]] = []
        try:
            # Held from the source's acknowledgement (*OPC?: the relay/slew has finished).
            samples = self._sample_event(sent, duration_s, frequency, clock, until=acked + duration_s)
        finally:
            # Restore even when the wait is interrupted: the guard would too, but this is sooner.
            before = clock.monotonic()
            if by_output:
                self.on()
            else:
                self.set_voltage(restored)
                self.wait_complete()
            ended = clock.monotonic()
        asked = clock.monotonic()
        volts = self.link.query_number(self.table.measure_voltage)
        samples.append((asked, clock.monotonic(), volts))
        applied, spread = applied_duration(samples, (residual + restored) / 2, sent)
        measurement = f"sampled {self.table.measure_voltage}"
        if applied is None and self.table.acquisition_s > duration_s:
            # Too short for one acquisition: bounded by the source's acknowledgements instead
            # (begins between the cut's send and its *OPC?, ends between the restore's).
            shortest, longest = before - acked, ended - sent
            applied, spread = (shortest + longest) / 2, (longest - shortest) / 2
            measurement = (f"command acknowledgements (*OPC?); not sampled: one {self.table.measure_voltage} "
                           f"takes up to {self.table.acquisition_s * 1000:.0f} ms")
        return DropoutResult(kind=kind, method="software", cycle_exact=False, model=self.model,
                             residual_v=residual, restored_v=restored, frequency_hz=frequency,
                             requested_s=duration_s, programmed_s=duration_s, started_at=sent,
                             ended_at=ended, uncertainty_s=max(acked - sent, ended - before),
                             applied_s=applied, applied_uncertainty_s=spread, measurement=measurement)

    def _try(self, commands: Sequence[str]) -> None:
        for command in commands:
            try:
                self.link.write(command)
            except InstrumentError as exc:
                log.warning("%s: %s failed while cleaning up: %s", self.name, command, exc.diagnosis)


def applied_duration(samples: Sequence[tuple[float, float, float]], threshold: float,
                     started: float) -> tuple[float | None, float | None]:
    """The event's length from voltage samples (sent, acked, volts): it begins between the last
    sample above `threshold` (or `started`) and the first below, and ends between the last below
    and the first above again. Returns (midpoint estimate, half-width of the bounds); (None, None)
    when no sample saw the event (it was shorter than the sampling, or never happened)."""
    bounds = event_bounds(samples, threshold, started)
    if bounds is None:
        return None, None
    begin_lo, begin_hi, end_lo, end_hi = bounds
    shortest, longest = end_lo - begin_hi, end_hi - begin_lo
    return (shortest + longest) / 2, (longest - shortest) / 2


def event_bounds(samples: Sequence[tuple[float, float, float]], threshold: float,
                 started: float) -> tuple[float, float, float, float] | None:
    """(begin_lo, begin_hi, end_lo, end_hi) of the event the samples saw, or None (not seen, or
    never seen to end)."""
    low = [i for i, (_, _, volts) in enumerate(samples) if volts < threshold]
    if not low:
        return None
    first, last = low[0], low[-1]
    if last + 1 >= len(samples):
        return None  # never seen to end
    begin_lo = started if first == 0 else samples[first - 1][0]
    return begin_lo, samples[first][1], samples[last][0], samples[last + 1][1]


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an interruption so every layer (pytest included) unwinds and tears down."""


class SafeStateGuard:
    """Puts `source` in its safe state when the block ends: normally, by an exception, by
    SIGINT or by SIGTERM. Previous signal handlers are restored afterwards.

    The handlers do no I/O: they turn the signal into an exception (KeyboardInterrupt, or
    `Terminated` for SIGTERM) so the exchange the signal interrupted unwinds first; the
    restoration then runs in `__exit__` on a fresh session. A signal arriving during the
    restoration is held until it is done, then raised.

    Signal handlers can only be installed from the main thread; elsewhere the guard still
    restores on exit and on exceptions.
    """

    def __init__(self, source: PowerSource, *, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.source = source
        self.signals = tuple(signals)
        self._previous: dict[int, object] = {}
        self._restoring = False
        self._pending: int | None = None

    def __enter__(self) -> PowerSource:
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self.source

    def __exit__(self, exc_type, exc, tb) -> None:
        # From here until the old handlers are back, a signal waits for us instead of interrupting.
        self._restoring = True
        try:
            self.source.safe_state()
        except InstrumentError as failure:
            if exc is None:
                raise
            # Keep the original exception: it says why we are here; add the restore failure to it.
            exc.add_note(f"and the safe state could not be restored: {failure.diagnosis}")
            log.error("safe state not restored after %s: %s", exc_type.__name__, failure.diagnosis)
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous.clear()
            self._restoring = False
            self._raise_pending(exc)

    def restore(self) -> None:
        """The safe state now (signals wait until it is reached)."""
        self._restoring = True
        try:
            self.source.safe_state()
        finally:
            self._restoring = False
            self._raise_pending(None)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self._restoring:
            self._pending = signum
            return
        raise self._exception_for(signum)

    def _raise_pending(self, in_flight: BaseException | None) -> None:
        signum, self._pending = self._pending, None
        if signum is not None and not isinstance(in_flight, KeyboardInterrupt):
            raise self._exception_for(signum)

    @staticmethod
    def _exception_for(signum: int) -> BaseException:
        if signum == signal.SIGINT:
            return KeyboardInterrupt()
        return Terminated(f"signal {signal.Signals(signum).name}")
