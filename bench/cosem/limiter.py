"""Limiter (IC 71) as the conformance tests see it: thresholds, durations, emergency profile."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smmc_bench.cosem.common import obis_text
from smmc_bench.drivers.dlms import CosemDateTime, DataType, DlmsSession, Typed
from smmc_bench.drivers.dlms.errors import MalformedReply

LIMITER = 71


@dataclass(frozen=True)
class EmergencyProfile:
    profile_id: int
    activation: datetime | None
    duration_s: int


class Limiter:
    """IC 71 Limiter."""

    def __init__(self, session: DlmsSession, obis: str, threshold_type: DataType) -> None:
        self._session, self.obis, self.threshold_type = session, obis, threshold_type

    def _get(self, attribute: int) -> Any:
        return self._session.get(LIMITER, self.obis, attribute)

    def _set(self, attribute: int, value: Typed) -> None:
        self._session.set(LIMITER, self.obis, attribute, value)

    def monitored_value(self) -> tuple[int, str, int]:
        raw = self._get(2)
        return int(raw[0]), obis_text(bytes(raw[1])), int(raw[2])

    def threshold_active(self) -> int:
        return int(self._get(3))

    def threshold_normal(self) -> int:
        return int(self._get(4))

    def threshold_emergency(self) -> int:
        return int(self._get(5))

    def min_over_threshold_duration(self) -> int:
        return int(self._get(6))

    def min_under_threshold_duration(self) -> int:
        return int(self._get(7))

    def set_threshold_normal(self, value: int) -> None:
        self._set(4, Typed(self.threshold_type, int(value)))

    def set_threshold_emergency(self, value: int) -> None:
        self._set(5, Typed(self.threshold_type, int(value)))

    def set_min_over_threshold_duration(self, seconds: int) -> None:
        self._set(6, Typed(DataType.DOUBLE_LONG_UNSIGNED, int(seconds)))

    def set_min_under_threshold_duration(self, seconds: int) -> None:
        self._set(7, Typed(DataType.DOUBLE_LONG_UNSIGNED, int(seconds)))

    def emergency_profile(self) -> EmergencyProfile:
        raw = self._get(8)
        try:
            stamp = raw[1].to_bytes() if isinstance(raw[1], CosemDateTime) else bytes(raw[1])
            value = CosemDateTime.from_bytes(stamp, validate=False)
            activation = None if value.year == 0xFFFF else value.to_datetime()
            return EmergencyProfile(int(raw[0]), activation, int(raw[2]))
        except (TypeError, IndexError, ValueError) as exc:
            raise MalformedReply(f"limiter {self.obis} emergency_profile {raw!r} is malformed ({exc})") from None

    def set_emergency_profile(self, profile_id: int, activation: datetime | CosemDateTime, duration_s: int,
                              deviation_minutes: int = 0) -> None:
        stamp = (activation if isinstance(activation, CosemDateTime)
                 else CosemDateTime.from_datetime(activation, deviation_minutes))
        self._set(8, Typed(DataType.STRUCTURE, [
            Typed(DataType.LONG_UNSIGNED, profile_id), Typed(DataType.OCTET_STRING, stamp.to_bytes()),
            Typed(DataType.DOUBLE_LONG_UNSIGNED, int(duration_s))]))

    def raw_emergency_profile(self) -> Any:
        return self._get(8)

    def restore_emergency_profile(self, raw: Any) -> None:
        stamp = raw[1].to_bytes() if isinstance(raw[1], CosemDateTime) else bytes(raw[1])
        self._set(8, Typed(DataType.STRUCTURE, [
            Typed(DataType.LONG_UNSIGNED, int(raw[0])), Typed(DataType.OCTET_STRING, stamp),
            Typed(DataType.DOUBLE_LONG_UNSIGNED, int(raw[2]))]))

    def emergency_group_ids(self) -> list[int]:
        return [int(g) for g in self._get(9)]

    def set_emergency_group_ids(self, ids: list[int]) -> None:
        self._set(9, Typed(DataType.ARRAY, [Typed(DataType.LONG_UNSIGNED, g) for g in ids]))

    def emergency_profile_active(self) -> bool:
        return bool(self._get(10))


def write_limiter_settings(limiter: Limiter, limits) -> None:
    """The profile's test thresholds and durations (SupplyLimits) into the limiter."""
    limiter.set_threshold_normal(round(limits.limiter_threshold.value))
    limiter.set_threshold_emergency(round(limits.limiter_emergency_threshold.value))
    limiter.set_min_over_threshold_duration(round(limits.limiter_min_over_threshold_duration.value))
    limiter.set_min_under_threshold_duration(round(limits.limiter_min_under_threshold_duration.value))
