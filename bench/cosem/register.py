"""Register (IC 3) and Data (IC 1) as the conformance tests see them."""
from __future__ import annotations

from smmc_bench.cosem.common import DATA
from smmc_bench.drivers.dlms import DataType, DlmsSession, Typed
from smmc_bench.drivers.dlms.errors import MalformedReply

REGISTER = 3


# A subset of the DLMS unit enumeration (IEC 62056-6-2): the units a bench test reads.
UNITS = {7: "s", 27: "W", 28: "VA", 29: "var", 30: "Wh", 31: "VAh", 32: "varh", 33: "A", 35: "V", 44: "Hz"}


class Register:
    """IC 3: a value with a scaler and a unit."""

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def read(self) -> tuple[float, str]:
        raw = self._session.get(REGISTER, self.obis, 2)
        scaler_unit = self._session.get(REGISTER, self.obis, 3)
        try:
            scaler, unit = int(scaler_unit[0]), int(scaler_unit[1])
            value = float(raw) * 10.0**scaler
        except (TypeError, IndexError, ValueError):
            raise MalformedReply(
                f"register {self.obis}: value {raw!r} with scaler_unit {scaler_unit!r} is not a scaled number"
            ) from None
        return value, UNITS.get(unit, f"unit {unit}")


class DataValue:
    """IC 1 Data holding an unsigned integer of a known A-XDR type (alarm register, filter, counters)."""

    def __init__(self, session: DlmsSession, obis: str, value_type: DataType = DataType.DOUBLE_LONG_UNSIGNED) -> None:
        self._session, self.obis, self.value_type = session, obis, value_type

    def read(self) -> int:
        value = self._session.get(DATA, self.obis, 2)
        if isinstance(value, bool) or not isinstance(value, int):
            raise MalformedReply(f"data {self.obis} value is {value!r}, expected an integer")
        return value

    def write(self, value: int) -> None:
        self._session.set(DATA, self.obis, 2, Typed(self.value_type, value))
