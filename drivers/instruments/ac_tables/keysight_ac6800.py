"""Keysight AC6800 (AC6801B-AC6804B) basic AC sources.

Source: the AC6800B Operating and Service Guide, ch. 3 (SCPI): subsystems
ABORt, CURRent, FETCh/MEASure, FREQuency, INITiate, OUTPut, TRIGger,
VOLTage... and no LIST subsystem. Its triggered step changes cannot time a
dropout's end, so this table has no sequencer: dropouts and sags are timed by
the bench and recorded as not cycle-exact.

On open the 310 V range is selected (`VOLT:RANG 310`; the data sheet gives
155 V / 310 V ranges, so a source left on 155 V would refuse or clip 230 V).

Uncertain: the range header, the measurement headers (`MEAS:VOLT:AC?`, `MEAS:CURR:AC?`,
`MEAS:POW:AC?`; the guide lists FETCh/MEASure with AC/DC/ACDC variants),
and that `FREQ <f>` alone is accepted (the guide's example
`FREQuency 100,90,110` also sets soft limits).
"""
from smmc_bench.drivers.instruments.ac_tables.base import AcCommandTable

TABLE = AcCommandTable(
    model="keysight-ac6800",
    description="Keysight AC6800 (no hardware sequencer)",
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
    # MEAS takes 333-666 ms and starts a new acquisition each time: one MEAS, then FETC
    # (AC6800B guide ch. 3, FETCh/MEASure subsystem).
    fetch_current="FETC:CURR:AC?",
    fetch_power="FETC:POW:AC?",
    acquisition_s=0.666,
    abort=("ABOR",),
    # The 310 V range whatever the front panel left (230 V on the 155 V range is refused or clipped).
    # AC coupling: no DC offset left by the front panel reaches the meters (OUTPut:COUPling
    # AC|DC|ACDC, guide ch. 3 "Syntax Conventions").
    known_state=("VOLT:RANG 310", "OUTP:COUP AC"),
    on_close=("SYST:LOC",),
    unconfirmed=(
        "bare ABOR accepted (not found in the guide; if refused, safe_state fails)",
        "MEAS:VOLT:AC? etc. headers; MEAS 333-666 ms per query (one MEAS, then FETC for the others)",
        "FREQ <f> alone accepted (guide example also sets soft limits)",
        "VOLT:RANG 310 header (ranges 155/310 V per the AC6800B data sheet; the 135/270 V of issue 14 "
        "not found in it); the guide's VOLTage subsystem (p. 159) not read",
    ),
    sources=(("subsystems ABOR/FETC/MEAS/FREQ/OUTP/VOLT", "AC6800B Operating and Service Guide ch. 3"),
             ("OUTP:COUP AC|DC|ACDC", "AC6800B Operating and Service Guide ch. 3, Syntax Conventions"),
             ("output ranges 155 V / 310 V", "AC6800B Series data sheet, specifications")),
    idn_words=("KEYSIGHT", "AGILENT"),
)
