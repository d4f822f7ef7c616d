"""Generic SCPI AC source: the common subset (SCPI-1999 SOURce/OUTPut/MEASure).

No sequencer is assumed, so dropouts and sags are timed by the bench
(`OUTP OFF`/`ON`, `VOLT` changes) and recorded as not cycle-exact.
"""
from smmc_bench.drivers.instruments.ac_tables.base import AcCommandTable

TABLE = AcCommandTable(
    model="generic",
    description="generic SCPI AC source (no hardware sequencer)",
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
    fetch_current="FETC:CURR:AC?",  # SCPI-1999: FETCh returns the last MEASure's acquisition
    fetch_power="FETC:POW:AC?",
)
