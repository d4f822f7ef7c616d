"""IEC HDLC setup (IC 23) as the data-link tests see it."""
from __future__ import annotations

from smmc_bench.drivers.dlms import DlmsSession

HDLC_SETUP = 23


class HdlcSetupView:
    """The HDLC setup object (IC 23)."""

    def __init__(self, session: DlmsSession, obis: str) -> None:
        self.session, self.obis = session, obis

    def read(self, attributes: dict[str, int]) -> dict[str, int]:
        return {name: int(self.session.get(HDLC_SETUP, self.obis, number)) for name, number in attributes.items()}
