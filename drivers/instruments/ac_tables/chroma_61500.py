"""Chroma 61500 / 61600 programmable AC sources.

Sources: the 61501-61504 User's Manual, ch. 8 (remote operation), and
libsigrok's scpi-pps profile for the Chroma 61604 (tested on hardware), which
gives the set/measure strings used here (`:SOUR:VOLT:AC`, `:FETC:CURR:AC?`,
`:FETC:VOLT:ACDC?`, `:FETC:POW:AC?`, `:OUTP ON|OFF`).

LIST mode (manual 8.6.2): `OUTPut:MODE FIXED|LIST|PULSE|STEP|SYNTH|INTERHAR`;
`[SOURce:]LIST:BASE TIME|CYCLE`; per-point lists
`LIST:VOLTage:AC:STARt|END` and `LIST:FREQuency:STARt|END` (a point with
START = END is a step, START != END a ramp); `TRIG ON|OFF` runs and stops it,
`TRIG:STATE?` answers OFF|RUNNING. With `LIST:BASE CYCLE` the dwell is
counted in cycles of the output, so a dropout of n cycles is exactly n cycles.

Uncertain (not confirmed in the manual pages we could read; check against
your unit's manual and fix here if its error queue complains):
- the dwell list header `LIST:DWELl` and that its unit is cycles under
  `LIST:BASE CYCLE` (milliseconds under TIME);
- `LIST:COUNt 1` (run the list once);
- that `TRIG:STATE?` also reports LIST runs (the manual shows it for SYNTH);
- `LIST:SHAPe A,...` per point (waveform buffer A = sine, as `FUNC:SHAP A`);
- `LIST:DEGRee` (start phase angle of each point, 0-359.9 deg) and that the list waits for the
  first point's angle after `TRIG ON` (whole-cycle points keep the following ones at that angle).

Confirmed (manual p. 8-18, 8.6.2): `LIST:VOLTage:DC:STARt|END` (DC level of each point, -424.2 to
424.2 V on the high range); programmed 0 so a DC list left by the front panel does not ride on
the dropout.
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
    volts = number_list([step.voltage for step in steps], 1)
    freqs = number_list([step.frequency for step in steps], 2)
    # Every list starts at a phase angle on this model: 0 deg unless one is asked (a front-panel
    # value left in LIST:DEGR would otherwise shift the start).
    angle = 0.0 if start_angle_deg is None else check_angle(start_angle_deg)
    zeros = number_list([0.0] * len(steps), 1)
    return TransientProgram(
        setup=(
            "TRIG OFF",
            "OUTP:MODE FIXED",
            "LIST:BASE CYCLE",
            f"LIST:VOLT:AC:STAR {volts}",
            f"LIST:VOLT:AC:END {volts}",
            f"LIST:FREQ:STAR {freqs}",
            f"LIST:FREQ:END {freqs}",
            f"LIST:DWEL {','.join(str(n) for n in cycles)}",
            f"LIST:SHAP {','.join('A' for _ in steps)}",
            f"LIST:VOLT:DC:STAR {zeros}",
            f"LIST:VOLT:DC:END {zeros}",
            f"LIST:DEGR {number_list([angle] * len(steps), 1)}",
            "LIST:COUN 1",
            "OUTP:MODE LIST",
        ),
        start=("TRIG ON",),
        finish=("TRIG OFF", "OUTP:MODE FIXED"),
        durations_s=tuple(n / step.frequency for n, step in zip(cycles, steps)),
        cycle_exact=True,
        busy_query="TRIG:STAT?",
        idle_replies=("OFF", "0"),
        readback=(
            ("LIST:VOLT:AC:STAR?", tuple(step.voltage for step in steps)),
            ("LIST:FREQ:STAR?", tuple(step.frequency for step in steps)),
            ("LIST:DWEL?", tuple(float(n) for n in cycles)),
            ("LIST:VOLT:DC:STAR?", tuple(0.0 for _ in steps)),
            ("LIST:DEGR?", tuple(angle for _ in steps)),
        ),
        start_angle_deg=angle,
    )


TABLE = AcCommandTable(
    model="chroma-61500",
    description="Chroma 61500/61600 (LIST mode, cycle time base)",
    set_voltage=":SOUR:VOLT:AC {v:.1f}",
    voltage_query=":SOUR:VOLT:AC?",
    set_frequency=":SOUR:FREQ {f:.2f}",
    frequency_query=":SOUR:FREQ?",
    output_on=":OUTP ON",
    output_off=":OUTP OFF",
    output_query=":OUTP?",
    measure_voltage=":FETC:VOLT:ACDC?",
    measure_current=":FETC:CURR:AC?",
    measure_power=":FETC:POW:AC?",
    on_open=("SYST:REM",),  # remote mode (needed on RS-232; harmless on GPIB), as libsigrok does
    abort=("TRIG OFF", "OUTP:MODE FIXED"),
    # What the front panel may have left: 230 V needs the HIGH range (61501-61504 manual 8.6,
    # SOURce:VOLTage:RANGe LOW|HIGH|AUTO); sine shape; no DC offset; AC coupling.
    known_state=("TRIG OFF", "OUTP:MODE FIXED", "VOLT:RANG HIGH", "FUNC:SHAP A", "VOLT:DC 0", "OUTP:COUP AC"),
    on_close=("SYST:LOC",),
    unconfirmed=(
        "LIST:DWEL unit under LIST:BASE CYCLE (cycles assumed; 61512 drivers use ms): read back and measured",
        "TRIG:STAT? reports LIST runs (manual shows it for SYNTH)",
        "LIST:COUN 1 header",
        "VOLT:RANG HIGH / FUNC:SHAP A / VOLT:DC 0 / OUTP:COUP AC headers",
        "LIST:SHAP A per point (header and buffer letter)",
        "LIST:DEGR header, range 0-359.9, and that the list waits for the first point's angle",
    ),
    sources=(
        ("set/measure", "libsigrok scpi-pps Chroma 61604 profile"),
        ("LIST, OUTP:MODE, LIST:BASE, TRIG ON|OFF, TRIG:STATE?", "61501-61504 User's Manual ch. 8.6.2"),
        ("SYST:REM / SYST:LOC", "61501-61504 User's Manual ch. 8 (RS-232 remote/local)"),
        ("LIST:VOLT:DC:STAR|END (DC list, +/-424.2 V high range)", "61501-61504 User's Manual 8.6.2, p. 8-18"),
    ),
    transient=list_program,
    phase_sync=True,
    idn_words=("CHROMA",),
)
