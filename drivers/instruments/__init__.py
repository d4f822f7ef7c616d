"""Drivers for the bench's instruments: the programmable AC source and the load.

They know nothing of pytest or of `bench.toml`; `smmc_bench.instruments` builds them
from the configuration.
"""
from smmc_bench.drivers.instruments.ac_source import (
    AcMeasurement,
    AcSource,
    DropoutResult,
    PowerSource,
    SafeStateGuard,
    Terminated,
    WaitClock,
)
from smmc_bench.drivers.instruments.ac_tables import MODELS as AC_MODELS
from smmc_bench.drivers.instruments.errors import (
    InstrumentCommandError,
    InstrumentError,
    InstrumentReplyError,
    InstrumentTimeout,
    InstrumentUnreachable,
    NotSupported,
)
from smmc_bench.drivers.instruments.load import Load, ModbusLoadBank, ScpiElectronicLoad

__all__ = [
    "AcMeasurement", "AcSource", "DropoutResult", "PowerSource", "SafeStateGuard", "Terminated", "WaitClock",
    "AC_MODELS", "Load", "ModbusLoadBank", "ScpiElectronicLoad",
    "InstrumentError", "InstrumentUnreachable", "InstrumentTimeout", "InstrumentCommandError",
    "InstrumentReplyError", "NotSupported",
]
