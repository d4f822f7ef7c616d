"""Association LN (IC 15) as the architecture tests see it: the mechanism and the partners."""
from __future__ import annotations

from smmc_bench.drivers.dlms import DlmsSession
from smmc_bench.drivers.dlms.errors import MalformedReply

ASSOCIATION_LN = 15


class AssociationView:
    """The current association (IC 15): its authentication mechanism and partners."""

    def __init__(self, session: DlmsSession, obis: str = "0.0.40.0.0.255") -> None:
        self.session, self.obis = session, obis

    def mechanism(self) -> int:
        """The mechanism id, from either form the Blue Book allows (BER OID or structure)."""
        from smmc_bench.drivers.dlms.names import mechanism_id

        value = self.session.get(ASSOCIATION_LN, self.obis, 6)
        return mechanism_id(value, f"association {self.obis} authentication_mechanism_name")

    def partners(self) -> tuple[int, int]:
        value = self.session.get(ASSOCIATION_LN, self.obis, 3)
        try:
            return int(value[0]), int(value[1])
        except (TypeError, IndexError, ValueError):
            raise MalformedReply(f"association {self.obis} associated_partners_id {value!r} is not "
                                 f"(client SAP, server SAP)") from None
