"""A programmable parameter named by the profile ([links.programming]), typed for writing."""
from __future__ import annotations

from typing import Any

from smmc_bench.drivers.dlms import DataType, DlmsSession, Typed

_TYPES = {"boolean": DataType.BOOLEAN, "integer": DataType.INTEGER, "long": DataType.LONG,
          "unsigned": DataType.UNSIGNED, "long-unsigned": DataType.LONG_UNSIGNED,
          "double-long": DataType.DOUBLE_LONG, "double-long-unsigned": DataType.DOUBLE_LONG_UNSIGNED,
          "enum": DataType.ENUM, "octet-string": DataType.OCTET_STRING, "visible-string": DataType.VISIBLE_STRING}


class Parameter:
    """The attribute aspect 5 programs (from the profile's [links.programming])."""

    def __init__(self, spec) -> None:
        self.spec = spec
        self.name = spec.name

    def typed(self, value: Any) -> Typed:
        data_type = _TYPES[self.spec.data_type]
        if data_type is DataType.OCTET_STRING and isinstance(value, str):
            value = bytes.fromhex(value)
        if data_type is DataType.VISIBLE_STRING and isinstance(value, str):
            value = value.encode("ascii")
        return Typed(data_type, value)

    def test_value(self) -> Any:
        return self.typed(self.spec.value).value

    def read(self, session: DlmsSession) -> Any:
        return session.get(self.spec.class_id, self.spec.obis, self.spec.attribute)

    def write(self, session: DlmsSession, value: Any) -> None:
        session.set(self.spec.class_id, self.spec.obis, self.spec.attribute, self.typed(value))
