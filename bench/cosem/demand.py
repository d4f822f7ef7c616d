"""Demand as the conformance tests see it: the demand register (IC 5) and the maximum demand
(IC 4 extended register), values scaled to their unit, date-times to UTC (None when the
meter leaves them not specified)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smmc_bench.cosem.common import _date_time
from smmc_bench.cosem.register import UNITS
from smmc_bench.drivers.dlms import CosemDateTime, DataType, DlmsSession, Typed
from smmc_bench.drivers.dlms.errors import MalformedReply

DEMAND_REGISTER = 5
EXTENDED_REGISTER = 4


def _optional_time(raw: Any, what: str) -> datetime | None:
    """A date-time, or None when its date and time are all not specified (nothing captured yet)."""
    if isinstance(raw, bytes) and len(raw) == 12 and raw[:9] == b"\xff" * 9:
        return None
    if isinstance(raw, CosemDateTime) and raw.to_bytes()[:9] == b"\xff" * 9:
        return None
    return _date_time(raw, what)


def _scale(session: DlmsSession, class_id: int, obis: str, attribute: int) -> tuple[float, str]:
    raw = session.get(class_id, obis, attribute)
    try:
        return 10.0 ** int(raw[0]), UNITS.get(int(raw[1]), f"unit {raw[1]}")
    except (TypeError, IndexError, ValueError):
        raise MalformedReply(f"{obis} scaler_unit {raw!r} is not {{scaler, unit}}") from None


def _number(raw: Any, what: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise MalformedReply(f"{what} is {raw!r}, expected a number")
    return float(raw)


@dataclass(frozen=True)
class DemandReading:
    current_average: float  # scaled, in `unit`
    last_average: float
    unit: str
    capture_time: datetime | None  # when last_average was computed (the end of its period)
    start_time_current: datetime | None  # when the running period began
    period_s: int
    number_of_periods: int


class DemandRegister:
    """IC 5."""

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def _get(self, attribute: int):
        return self._session.get(DEMAND_REGISTER, self.obis, attribute)

    def read(self) -> DemandReading:
        scale, unit = _scale(self._session, DEMAND_REGISTER, self.obis, 4)
        return DemandReading(
            current_average=_number(self._get(2), f"{self.obis} current_average_value") * scale,
            last_average=_number(self._get(3), f"{self.obis} last_average_value") * scale,
            unit=unit,
            capture_time=_optional_time(self._get(6), f"{self.obis} capture_time"),
            start_time_current=_optional_time(self._get(7), f"{self.obis} start_time_current"),
            period_s=self.period(),
            number_of_periods=int(_number(self._get(9), f"{self.obis} number_of_periods")),
        )

    def scale(self) -> tuple[float, str]:
        """The factor from the register's values to `unit`, and the unit."""
        return _scale(self._session, DEMAND_REGISTER, self.obis, 4)

    def current_average(self, scale: float) -> float:
        """current_average_value alone (one GET, so the bench can bracket its moment), scaled by `scale`."""
        return _number(self._get(2), f"{self.obis} current_average_value") * scale

    def period(self) -> int:
        return int(_number(self._get(8), f"{self.obis} period"))

    def set_period(self, seconds: int) -> None:
        self._session.set(DEMAND_REGISTER, self.obis, 8, Typed(DataType.DOUBLE_LONG_UNSIGNED, seconds))

    def reset(self) -> None:
        self._session.action(DEMAND_REGISTER, self.obis, 1, Typed(DataType.INTEGER, 0))


@dataclass(frozen=True)
class MaximumReading:
    value: float  # scaled, in `unit`
    unit: str
    capture_time: datetime | None  # the end of the period whose average it is


class MaximumDemand:
    """IC 4 extended register holding the maximum demand."""

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def read(self) -> MaximumReading:
        scale, unit = _scale(self._session, EXTENDED_REGISTER, self.obis, 3)
        value = _number(self._session.get(EXTENDED_REGISTER, self.obis, 2), f"{self.obis} value") * scale
        when = _optional_time(self._session.get(EXTENDED_REGISTER, self.obis, 5), f"{self.obis} capture_time")
        return MaximumReading(value, unit, when)

    def reset(self) -> None:
        self._session.action(EXTENDED_REGISTER, self.obis, 1, Typed(DataType.INTEGER, 0))
