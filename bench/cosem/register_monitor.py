"""Register monitor (IC 21) as the conformance tests see it: thresholds, the monitored value
and one {action_up, action_down} per threshold."""
from __future__ import annotations

from dataclasses import dataclass

from smmc_bench.cosem.common import obis_text
from smmc_bench.drivers.dlms import DataType, DlmsSession, Typed
from smmc_bench.drivers.dlms.errors import MalformedReply

REGISTER_MONITOR = 21


@dataclass(frozen=True)
class MonitoredValue:
    class_id: int
    obis: str
    attribute: int


@dataclass(frozen=True)
class MonitorAction:
    up: tuple[str, int]  # script table, selector (0: none)
    down: tuple[str, int]


class RegisterMonitor:
    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def thresholds(self) -> list[int]:
        raw = self._session.get(REGISTER_MONITOR, self.obis, 2)
        try:
            return [int(t) for t in raw]
        except (TypeError, ValueError) as exc:
            raise MalformedReply(f"register monitor {self.obis} thresholds {raw!r} are malformed ({exc})") from None

    def set_thresholds(self, thresholds: list[int], data_type: DataType = DataType.DOUBLE_LONG) -> None:
        self.write_thresholds(Typed(DataType.ARRAY, [Typed(data_type, t) for t in thresholds]))

    def write_thresholds(self, value: Typed) -> None:
        """Any value, of any type (the refusal tests write wrong ones)."""
        self._session.set(REGISTER_MONITOR, self.obis, 2, value)

    def monitored_value(self) -> MonitoredValue:
        raw = self._session.get(REGISTER_MONITOR, self.obis, 3)
        try:
            return MonitoredValue(int(raw[0]), obis_text(bytes(raw[1])), int(raw[2]))
        except (TypeError, IndexError, ValueError) as exc:
            raise MalformedReply(f"register monitor {self.obis} monitored_value {raw!r} is malformed "
                                 f"({exc})") from None

    def actions(self) -> list[MonitorAction]:
        raw = self._session.get(REGISTER_MONITOR, self.obis, 4)
        try:
            return [MonitorAction((obis_text(bytes(a[0][0])), int(a[0][1])), (obis_text(bytes(a[1][0])), int(a[1][1])))
                    for a in raw]
        except (TypeError, IndexError, ValueError) as exc:
            raise MalformedReply(f"register monitor {self.obis} actions {raw!r} are malformed ({exc})") from None
