"""Meter-profile section [supply]: placeholder, filled in by the supply work."""
from __future__ import annotations

from bench.profile_base import StrictModel

SUPPLY_FEATURES: tuple[str, ...] = ()


class SupplyProfile(StrictModel):
    pass
