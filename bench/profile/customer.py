"""Meter-profile section [customer]: what the customer's client may read and must not change
(aspect 3, arts 2-1-11 and 2-1-17). Entries are "class_id/OBIS/attribute" (or method).

Defaults describe the bench's emulated meter with the public client (SAP 16) as the
customer's client; the lists are the profile's reading of the Anexo, not figures.
"""
from __future__ import annotations

import re

from pydantic import field_validator
from smmc_bench.profile.base import StrictModel

_ENTRY = re.compile(r"^\d{1,3}/\d{1,3}(\.\d{1,3}){5}/\d{1,3}$")


def parse_entry(entry: str) -> tuple[int, str, int]:
    class_id, obis, number = entry.split("/")
    return int(class_id), obis, int(number)


class CustomerAccess(StrictModel):
    # Values the Anexo makes available to the customer: energy, tariffs, instantaneous values,
    # time, events and messages.
    readable: list[str] = [
        "3/1.0.1.8.0.255/2", "3/1.0.1.8.1.255/2", "3/1.0.1.8.2.255/2", "3/1.0.1.8.3.255/2", "3/1.0.1.8.4.255/2",
        "3/1.0.32.7.0.255/2", "3/1.0.31.7.0.255/2", "3/1.0.1.7.0.255/2",
        "8/0.0.1.0.0.255/2", "1/0.0.96.14.0.255/2", "1/0.0.96.13.0.255/2", "7/0.0.99.98.0.255/2",
    ]
    # Writes the customer's client must be refused (attribute), and methods (method number).
    refused_writes: list[str] = ["8/0.0.1.0.0.255/2", "8/0.0.1.0.0.255/3", "1/0.0.96.13.0.255/2",
                                 "20/0.0.13.0.0.255/6", "3/1.0.1.8.0.255/2", "70/0.0.96.3.10.255/4",
                                 "71/0.0.17.0.0.255/3", "1/0.0.97.98.10.255/2"]
    refused_methods: list[str] = ["70/0.0.96.3.10.255/1", "70/0.0.96.3.10.255/2", "20/0.0.13.0.0.255/1",
                                  "8/0.0.1.0.0.255/6"]

    @field_validator("readable", "refused_writes", "refused_methods")
    @classmethod
    def _entries(cls, entries: list[str]) -> list[str]:
        bad = [e for e in entries if not _ENTRY.match(e)]
        if bad:
            raise ValueError(f"entries are 'class_id/OBIS/number', e.g. 3/1.0.1.8.0.255/2; got {bad}")
        return entries


class CustomerProfile(StrictModel):
    access: CustomerAccess = CustomerAccess()
