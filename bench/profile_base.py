"""What every meter-profile section is built from: strict models and limits
traceable to the regulation."""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_OBIS = re.compile(r"^\d{1,3}(\.\d{1,3}){5}$")


def _check_obis(value: str) -> str:
    if not _OBIS.match(value) or any(int(part) > 255 for part in value.split(".")):
        raise ValueError(f"{value!r} is not an OBIS code like 0.0.1.0.0.255")
    return value


# An OBIS code written as six dotted decimals, as profiles and reports show them.
ObisCode = Annotated[str, AfterValidator(_check_obis)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limit(StrictModel):
    """A figure a test is judged by, traceable to the regulation."""

    value: float
    unit: str
    article: str = Field(pattern=r"^\d+(-\d+)*$")
    provisional: bool = False
    note: str = ""

    def describe(self) -> str:
        mark = ", provisional" if self.provisional else ""
        return f"{self.value:g} {self.unit} (art. {self.article}{mark})"
