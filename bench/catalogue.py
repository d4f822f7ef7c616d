"""The use-case catalogue: the 15 aspects of the Anexo Tecnico SMMC interoperability
profiles (see shared/seed), their articles and the reference use case each follows."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Aspect:
    number: int
    title: str
    articles: tuple[str, ...]
    reference_use_case: str


ASPECTS: dict[int, Aspect] = {
    a.number: a
    for a in (
        Aspect(1, "Architecture", ("3-2", "4-4"), "AMI Network (AMI Head-End to/from Smart Meter)"),
        Aspect(2, "Readings", ("3-3", "4-10"), "Bulk Meter Readings"),
        Aspect(3, "Customer access", ("2-1-11", "2-1-17"), "Customer Portal"),
        Aspect(4, "I1 meter-display interface", ("3-10",), "DR HAN Device Provisioning; HAN Pricing"),
        Aspect(5, "In-field programming", ("4-11",), "In-Field Programming of Smart Meter and Firmware Upgrade"),
        Aspect(6, "Connect/disconnect", ("3-3",), "Meter Remote Connect / Disconnect"),
        Aspect(7, "Events and alarms", ("5-4",), "OMS Poll (multicast, unicast); Outage (Restoration) Notification"),
        Aspect(8, "Demand and tariffs", ("4-17-6", "4-10-8"), "Real Time Price HAN Messaging"),
        Aspect(9, "Remote firmware update", ("4-21", "5-3-8"), "Remote Meter Firmware Update"),
        Aspect(10, "Remote programming", ("4-21", "5-3"), "Remote Programming of Smart Meter"),
        Aspect(11, "Data warehouse", ("5-1", "3-6"), "Data Warehouse - Utility's Smart Grid Clearinghouse"),
        Aspect(12, "Customer account move", ("5-1",), "Customer account move"),
        Aspect(13, "Time synchronisation", ("3-11",), "Remote meter time synchronisation"),
        Aspect(14, "Remote power limiting", ("5-3",), "Remote power limitation"),
        Aspect(15, "Local power limiting", ("5-3",), "Local power limitation"),
    )
}


def aspect_title(number: int | None) -> str:
    if number is None or number not in ASPECTS:
        return "-"
    return f"{number} {ASPECTS[number].title}"
