"""COSEM objects behind the I1 display interface, as the conformance tests see them."""
from __future__ import annotations

from smmc_bench.drivers.dlms import DataType, DlmsSession, Typed
from smmc_bench.drivers.dlms.errors import MalformedReply

DATA = 1


class ConsumerMessage:
    """IC 1 Data 0-0:96.13.0: the consumer text message (octet-string) the head-end writes."""

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def read(self) -> bytes:
        value = self._session.get(DATA, self.obis, 2)
        if not isinstance(value, bytes):
            raise MalformedReply(f"consumer message {self.obis} is {type(value).__name__}, expected an octet-string")
        return value

    def write(self, text: bytes) -> None:
        self._session.set(DATA, self.obis, 2, Typed(DataType.OCTET_STRING, text))
