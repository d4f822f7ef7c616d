"""The bench's instruments in `bench.toml`: the programmable AC source and the load.

Placeholder models: the AC source and load drivers fill these in.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AcSourceSettings(_Strict):
    pass


class LoadSettings(_Strict):
    pass
