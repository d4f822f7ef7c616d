"""AMETEK Programmable Power / California Instruments (Sequoia, CSW, MX, RS, Asterion).

Source: the Sequoia Series manual, 4.21 "Source Subsystem - List" and the
list example (LIST:VOLTage / LIST:FREQuency point lists, `LIST:DWELl` in
seconds, `LIST:COUNt`, `LIST:STEP AUTO` = dwell-paced, `VOLTage:MODE LIST`
activates the list, then the transient trigger system starts it); the BPS/MX
SCPI manual (transient modes FIXED/STEP/PULSE/LIST; when a list completes the
output returns to the immediate level).

The list's dwell is in seconds, programmed here as whole cycles of the output
and timed by the source, so it is recorded as cycle-exact (whole cycles,
hardware-timed). A phase-synchronised start (Sequoia manual 6.5.3,
"Synchronizing Output Changes to a Reference Phase Angle"): `TRIG:SYNC:SOUR PHAS`
then `TRIG:SYNC:PHAS <deg>` (e.g. 90 = positive peak); without an angle the
table sets `TRIG:SYNC:SOUR IMM` so a phase sync left by the front panel does not
delay the start.

LAN: the Sequoia manual (3.5.3) gives the SCPI socket as TCP port 5025,
factory set: resource "TCPIP::<ip>::5025::SOCKET".

Uncertain: `TRIG:SOUR IMM` + `INIT` as the start (some models want
`INIT:SEQ1` or a `TRIG` after `INIT`), the measurement headers (`MEAS:VOLT:AC?`
etc.; older CI units answer `MEAS:VOLT?`), and no trusted "list running"
query: the driver waits out the programmed time instead.
"""
from __future__ import annotations

from typing import Sequence

from smmc_bench.drivers.instruments.ac_tables.base import (
    AcCommandTable,
    SupplyStep,
    TransientProgram,
    check_angle,
    number_list,
)


def list_program(steps: Sequence[SupplyStep], *, start_angle_deg: float | None = None) -> TransientProgram:
    cycles = [max(1, round(step.duration_s * step.frequency)) for step in steps]
    durations = [n / step.frequency for n, step in zip(cycles, steps)]
    angle = None if start_angle_deg is None else check_angle(start_angle_deg)
    sync = (("TRIG:SYNC:SOUR IMM",) if angle is None
            else ("TRIG:SYNC:SOUR PHAS", f"TRIG:SYNC:PHAS {angle:.1f}"))
    readback: tuple[tuple[str, tuple[float, ...]], ...] = (
        ("LIST:DWEL?", tuple(durations)), ("LIST:VOLT?", tuple(step.voltage for step in steps)))
    if angle is not None:
        readback += (("TRIG:SYNC:PHAS?", (angle,)),)
    return TransientProgram(
        setup=(
            "ABOR",
            f"LIST:VOLT {number_list([step.voltage for step in steps], 2)}",
            f"LIST:FREQ {number_list([step.frequency for step in steps], 2)}",
            f"LIST:DWEL {number_list(durations, 5)}",
            "LIST:COUN 1",
            "LIST:STEP AUTO",
            "VOLT:MODE LIST",
            "FREQ:MODE LIST",
            "TRIG:SOUR IMM",
            *sync,
        ),
        start=("INIT",),
        finish=("ABOR", "VOLT:MODE FIX", "FREQ:MODE FIX"),
        durations_s=tuple(durations),
        cycle_exact=True,
        readback=readback,
        start_angle_deg=angle,
    )


TABLE = AcCommandTable(
    model="ametek-ci",
    description="AMETEK / California Instruments (LIST transients)",
    set_voltage="VOLT {v:.2f}",
    voltage_query="VOLT?",
    set_frequency="FREQ {f:.2f}",
    frequency_query="FREQ?",
    output_on="OUTP ON",
    output_off="OUTP OFF",
    output_query="OUTP?",
    measure_voltage="MEAS:VOLT:AC?",
    measure_current="MEAS:CURR:AC?",
    measure_power="MEAS:POW:AC?",
    fetch_current="FETC:CURR:AC?",
    fetch_power="FETC:POW:AC?",
    abort=("ABOR", "VOLT:MODE FIX", "FREQ:MODE FIX"),
    known_state=("ABOR", "VOLT:MODE FIX", "FREQ:MODE FIX"),
    on_close=("SYST:LOC",),
    unconfirmed=(
        "TRIG:SOUR IMM + INIT as the list start",
        "MEAS:VOLT:AC? / MEAS:CURR:AC? / MEAS:POW:AC? headers",
        "output relay settle (~1 s) after OUTP: *OPC? assumed to answer only once it has settled",
        "TRIG:STAT? (IDLE/ARM/BUSY/WTRIG) not trusted: the driver waits out the programmed time",
        "SYST:LOC on close",
        "TRIG:SYNC:PHAS range 0-359.9 and TRIG:SYNC:PHAS? read-back (manual example shows 90 only)",
    ),
    sources=(
        ("LIST:VOLT/FREQ/DWEL/COUN/STEP, VOLT:MODE LIST", "Sequoia Series manual 4.21"),
        ("list end -> immediate level", "BPS/MX SCPI manual, transient modes"),
        ("LAN port 5025", "Sequoia Series manual 3.5.3"),
        ("TRIG:SYNC:SOUR PHAS, TRIG:SYNC:PHAS <deg>", "Sequoia Series manual 6.5.3"),
    ),
    transient=list_program,
    phase_sync=True,
    # The output relay needs ~1 s after OUTP ON|OFF (*OPC? waits for it): a bench-timed dropout
    # programs 0 V and back instead.
    software_dropout="voltage",
    idn_words=("AMETEK", "CALIFORNIA INSTRUMENTS"),
)
