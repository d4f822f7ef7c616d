"""What every meter-profile section is built from: strict models and limits
traceable to the regulation."""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from smmc_bench.config import KeyProblem

_OBIS = re.compile(r"^\d{1,3}(\.\d{1,3}){5}$")


def _check_obis(value: str) -> str:
    if not _OBIS.match(value) or any(int(part) > 255 for part in value.split(".")):
        raise ValueError(f"{value!r} is not an OBIS code like 0.0.1.0.0.255")
    return value


# An OBIS code written as six dotted decimals, as profiles and reports show them.
ObisCode = Annotated[str, AfterValidator(_check_obis)]


class StrictModel(BaseModel):
    # No NaN or infinity: a NaN tolerance fails every comparison, an infinite one passes all.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# The largest value a limit may take, by unit: a duration longer than a day or a share over
# 100 % is a typo, and a wait the bench would sit through silently.
LIMIT_CEILINGS = {"s": 86400.0, "%": 100.0}
LIMIT_CEILING_OTHER_UNITS = 1e6


class Limit(StrictModel):
    """A figure a test is judged by, traceable to the regulation: a magnitude (a tolerance, a
    duration, a threshold, a count), never negative."""

    value: float = Field(ge=0)
    unit: str
    article: str = Field(pattern=r"^\d+(-\d+)*$")
    provisional: bool = False
    note: str = ""

    @model_validator(mode="after")
    def _bounded(self) -> "Limit":
        ceiling = LIMIT_CEILINGS.get(self.unit, LIMIT_CEILING_OTHER_UNITS)
        if self.value > ceiling:
            raise KeyProblem("value", f"at most {ceiling:g} {self.unit} (got {self.value:g})")
        return self

    def describe(self) -> str:
        mark = ", provisional" if self.provisional else ""
        return f"{self.value:g} {self.unit} (art. {self.article}{mark})"


def provisional_limit(value: float, unit: str, article: str, note: str) -> Limit:
    """A default limit whose official figure is not public: the lab is meant to set it."""
    return Limit(value=value, unit=unit, article=article, provisional=True, note=note)
