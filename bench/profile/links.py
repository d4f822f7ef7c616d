"""Meter-profile section [links]: what the meter's communication side must offer.

- [links.hdlc]: what the bench proposes at SNRM, what the meter must accept, the
  HDLC setup object (IC 23) it must report, and the data-link test parameters;
- [[links.mandatory_objects]]: the objects aspect 1 requires in the object list
  (class, version, OBIS);
- [links.association]: the authentication mechanism each client must get;
- [links.mode_e]: what the optical port's identification must say, and its
  reaction time;
- [links.programming]: the parameter aspect 5 writes through the optical port.

Defaults describe the bench's emulated meter. Every figure a test judges by is
a Limit with its article; `provisional = true` where the Anexo gives no public
value.
"""
from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from smmc_bench.profile.base import Limit, ObisCode, StrictModel

# Declared under [features] by a profile whose meter has them.
LINK_FEATURES: tuple[str, ...] = ("optical_port", "hdlc")


class HdlcSetupExpectation(StrictModel):
    """IC 23 attributes the meter's HDLC setup object must report (left out: not checked)."""

    obis: ObisCode = "0.0.22.0.0.255"
    comm_speed: int | None = Field(default=5, ge=0, le=9, description="enum: 5 = 9600 Bd")
    window_size_transmit: int | None = Field(default=1, ge=1, le=7)
    window_size_receive: int | None = Field(default=1, ge=1, le=7)
    max_info_field_length_transmit: int | None = Field(default=128, ge=32, le=2030)
    max_info_field_length_receive: int | None = Field(default=128, ge=32, le=2030)
    inter_octet_time_out: int | None = Field(default=25, ge=20, le=6000)
    inactivity_time_out: int | None = Field(default=120, ge=0, le=0xFFFF)


    # IC 23 attribute numbers, by name.
    ATTRIBUTES: ClassVar[dict[str, int]] = {"comm_speed": 2, "window_size_transmit": 3, "window_size_receive": 4,
                  "max_info_field_length_transmit": 5, "max_info_field_length_receive": 6,
                  "inter_octet_time_out": 7, "inactivity_time_out": 8}

    def expected(self) -> dict[str, tuple[int, int]]:
        """name -> (attribute number, expected value), for the attributes the profile gives."""
        return {name: (number, getattr(self, name)) for name, number in self.ATTRIBUTES.items()
                if getattr(self, name) is not None}


class HdlcProfile(StrictModel):
    # The bench's SNRM proposal (both directions); a link may override it.
    max_info_length: int = Field(default=128, ge=32, le=2030)
    window_size: int = Field(default=1, ge=1, le=7)
    # The smallest maximum information field the meter must accept when offered more.
    min_info_length: Limit = Limit(value=128, unit="B", article="4-4", provisional=True,
                                   note="smallest max information field the meter must agree to (IEC 62056-46 default)")
    setup: HdlcSetupExpectation = HdlcSetupExpectation()
    # Data-link test parameters.
    no_answer_window: Limit = Limit(value=0.3, unit="s", article="4-4", provisional=True,
                                    note="test parameter: silence this long after a frame counts as 'not answered'")
    max_bad_frames: Limit = Limit(value=0, unit="frames", article="4-4", provisional=True,
                                  note="frames with a wrong HCS/FCS the meter may send during a long read on a clean line")


class MandatoryObject(StrictModel):
    class_id: int = Field(ge=1, le=0xFFFF)
    version: int = Field(ge=0, le=255)
    obis: ObisCode
    name: str = ""


    def describe(self) -> str:
        return f"{self.name or 'object'} {self.class_id}/{self.obis} v{self.version}"


def _emulated_mandatory() -> list[MandatoryObject]:
    rows = [
        (15, 1, "0.0.40.0.0.255", "association LN"),
        (1, 0, "0.0.42.0.0.255", "logical device name"),
        (1, 0, "0.0.96.1.0.255", "serial number"),
        (1, 0, "1.0.0.2.0.255", "firmware identifier"),
        (8, 0, "0.0.1.0.0.255", "clock"),
        (3, 0, "1.0.1.8.0.255", "active energy import"),
        (70, 0, "0.0.96.3.10.255", "disconnect control"),
        (7, 1, "0.0.99.98.0.255", "standard event log"),
        (23, 1, "0.0.22.0.0.255", "HDLC setup"),
        (64, 0, "0.0.43.0.0.255", "security setup"),
    ]
    return [MandatoryObject(class_id=c, version=v, obis=o, name=n) for c, v, o, n in rows]


Mechanism = Literal["none", "low", "high-gmac"]
MECHANISM_IDS: dict[str, int] = {"none": 0, "low": 1, "high-gmac": 5}


class AssociationProfile(StrictModel):
    """The authentication mechanism each client's association must carry (IC 15 attr 6)."""

    management_mechanism: Mechanism = "low"
    public_mechanism: Mechanism = "none"


class ModeEProfile(StrictModel):
    maker: str = Field(default="EMU", min_length=3, max_length=3, description="FLAG id, compared case-insensitively")
    min_baud: int = Field(default=9600, ge=300, le=115200,
                          description="slowest HDLC rate the identification may offer (IEC 62056-21: 300..115200)")
    ident_pattern: str = Field(default=r".+", description="regular expression the identification must match")
    reaction_time: Limit = Limit(value=1.5, unit="s", article="4-11", provisional=True,
                                 note="IEC 62056-21 reaction time tr <= 1500 ms (sign-on to identification)")

    @field_validator("ident_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


DataTypeName = Literal["boolean", "integer", "long", "unsigned", "long-unsigned", "double-long",
                       "double-long-unsigned", "enum", "octet-string", "visible-string"]


class ProgrammingProfile(StrictModel):
    """The parameter aspect 5 writes through the optical port and reads back (restored afterwards)."""

    name: str = "clock.time_zone"
    class_id: int = Field(default=8, ge=1, le=0xFFFF)
    obis: ObisCode = "0.0.1.0.0.255"
    attribute: int = Field(default=3, ge=2, le=127)
    data_type: DataTypeName = "long"
    value: int | str = Field(default=-180, description="written value (octet-string as hex)")
    # A value of the right type the meter must refuse (Blue Book IC 8 time_zone: -720..720 min); None: none.
    invalid_value: int | str | None = Field(default=721, description="out-of-range value of the same type")
    # IDIS 47 "parameters changed", in the standard event log; left out: not checked.
    event: int | None = Field(default=47, ge=0, le=255)



class LinkProfile(StrictModel):
    hdlc: HdlcProfile = HdlcProfile()
    mandatory_objects: list[MandatoryObject] = Field(default_factory=_emulated_mandatory)
    association: AssociationProfile = AssociationProfile()
    mode_e: ModeEProfile = ModeEProfile()
    programming: ProgrammingProfile = ProgrammingProfile()

    @model_validator(mode="after")
    def _distinct_objects(self) -> "LinkProfile":
        names = [o.obis for o in self.mandatory_objects]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"mandatory_objects lists {', '.join(repeated)} more than once")
        return self
