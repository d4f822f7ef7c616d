"""Meter-profile section [links]: placeholder, filled in by the links work."""
from __future__ import annotations

from bench.profile_base import StrictModel

LINK_FEATURES: tuple[str, ...] = ()


class LinkProfile(StrictModel):
    pass
