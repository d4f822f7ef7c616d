"""What every meter-profile section is built from: strict models and limits
traceable to the regulation."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
