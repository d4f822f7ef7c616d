"""Register activation (IC 6) as the tariff tests see it: the registers it assigns, its masks, and
the registers the active mask activates now."""
from __future__ import annotations

from smmc_bench.cosem.common import obis_text
from smmc_bench.drivers.dlms import DlmsSession
from smmc_bench.drivers.dlms.errors import MalformedReply

REGISTER_ACTIVATION = 6


class RegisterActivation:
    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def _get(self, attribute: int):
        return self._session.get(REGISTER_ACTIVATION, self.obis, attribute)

    def register_assignment(self) -> list[str]:
        """The assigned registers' logical names, in order (a mask's indexes count from 1 in this list)."""
        raw = self._get(2)
        try:
            return [obis_text(bytes(item[1])) for item in raw]
        except (TypeError, IndexError, ValueError) as exc:
            raise MalformedReply(f"{self.obis} register_assignment {raw!r} is not {{class_id, logical_name}} "
                                 f"entries ({exc})") from None

    def mask_entries(self) -> list[tuple[bytes, list[int]]]:
        """mask_list as the meter sends it, in order, a name listed twice kept twice."""
        raw = self._get(3)
        try:
            return [(bytes(item[0]), [int(i) for i in item[1]]) for item in raw]
        except (TypeError, IndexError, ValueError) as exc:
            raise MalformedReply(f"{self.obis} mask_list {raw!r} is not {{mask_name, index_list}} entries "
                                 f"({exc})") from None

    def mask_list(self) -> dict[bytes, list[int]]:
        """mask_list by name (a name listed twice: its last entry; `mask_entries` shows both)."""
        return dict(self.mask_entries())

    def active_mask(self) -> bytes:
        raw = self._get(4)
        if not isinstance(raw, (bytes, bytearray)):
            raise MalformedReply(f"{self.obis} active_mask {raw!r} is not an octet string")
        return bytes(raw)

    def active_registers(self) -> list[str]:
        """The registers the active mask activates (MalformedReply if the mask is not in mask_list)."""
        assigned, masks, active = self.register_assignment(), self.mask_list(), self.active_mask()
        if active not in masks:
            raise MalformedReply(f"{self.obis} active_mask {active!r} is not one of mask_list {sorted(masks)}")
        try:
            return [assigned[index - 1] for index in masks[active]]
        except IndexError:
            raise MalformedReply(f"{self.obis} mask {active!r} indexes {masks[active]} outside register_assignment "
                                 f"(1..{len(assigned)})") from None
