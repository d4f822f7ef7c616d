"""Push setup (IC 40) as the conformance tests see it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smmc_bench.cosem.common import obis_text
from smmc_bench.drivers.dlms import DataType, DlmsSession, Typed
from smmc_bench.drivers.dlms.errors import MalformedReply

PUSH_SETUP = 40


@dataclass(frozen=True)
class PushObject:
    class_id: int
    obis: str
    attribute: int


class PushSetup:
    """IC 40 Push setup: what it pushes, where to, and the push method."""

    TCP = 0
    AXDR_APDU = 0

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def object_list(self) -> list[PushObject]:
        raw = self._session.get(PUSH_SETUP, self.obis, 2)
        try:
            return [PushObject(int(item[0]), obis_text(bytes(item[1])), int(item[2])) for item in raw]
        except (TypeError, IndexError, ValueError) as exc:
            raise MalformedReply(f"push setup {self.obis} push_object_list {raw!r} is malformed ({exc})") from None

    def destination(self) -> str:
        raw = self._session.get(PUSH_SETUP, self.obis, 3)
        try:
            return bytes(raw[1]).decode("ascii")
        except (TypeError, IndexError, ValueError, UnicodeDecodeError) as exc:
            raise MalformedReply(f"push setup {self.obis} send_destination {raw!r} is malformed ({exc})") from None

    def set_destination(self, destination: str) -> None:
        """TCP, 'host:port', A-XDR encoded xDLMS APDU (as a head-end configures a meter to push to it)."""
        self._session.set(PUSH_SETUP, self.obis, 3, Typed(DataType.STRUCTURE, [
            Typed(DataType.ENUM, self.TCP), Typed(DataType.OCTET_STRING, destination.encode("ascii")),
            Typed(DataType.ENUM, self.AXDR_APDU)]))

    def push(self) -> None:
        self._session.action(PUSH_SETUP, self.obis, 1, Typed(DataType.INTEGER, 0))

    def values(self, data: Any, objects: list[PushObject]) -> dict[tuple[int, str, int], Any]:
        """A notification body read through the push object list: (class, obis, attribute) -> value."""
        if not isinstance(data, list) or len(data) != len(objects):
            raise MalformedReply(f"pushed body {data!r} does not match the push object list of "
                                 f"{len(objects)} objects")
        return {(o.class_id, o.obis, o.attribute): value for o, value in zip(objects, data)}

    def randomisation_start_interval(self) -> int:
        """Attribute 5, seconds: a push may start up to this much later than triggered."""
        return int(self._session.get(PUSH_SETUP, self.obis, 5))

    def number_of_retries(self) -> int:
        """Attribute 6: how many times a failed push is tried again."""
        return int(self._session.get(PUSH_SETUP, self.obis, 6))

    def set_number_of_retries(self, count: int) -> None:
        self._session.set(PUSH_SETUP, self.obis, 6, Typed(DataType.UNSIGNED, count))

    def repetition_delay(self) -> int:
        """Attribute 7, seconds between a failed push and its retry."""
        return int(self._session.get(PUSH_SETUP, self.obis, 7))

    def set_repetition_delay(self, seconds: int) -> None:
        self._session.set(PUSH_SETUP, self.obis, 7, Typed(DataType.LONG_UNSIGNED, seconds))
