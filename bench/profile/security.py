"""Meter-profile section [security]: how the meter answers security failures with HLS-GMAC
(issue #12; aspect 1). Event numbers are those IDIS implementations use (domain notes §8);
which log holds them varies by maker, so the profile names it.

Defaults describe the bench's emulated meter; the article is the profile's reading of the
Anexo (architecture and association, art. 4-4), not a figure of its text.
"""
from __future__ import annotations

from pydantic import Field
from smmc_bench.profile.base import ObisCode, StrictModel

SECURITY_FEATURES: tuple[str, ...] = ("hls_gmac",)


class SecurityProfile(StrictModel):
    article: str = Field(default="4-4", min_length=1, description="the Anexo article the security tests judge")
    event_log: ObisCode = Field(default="0.0.99.98.0.255", description="the log that holds the security events")
    association_failure_event: int = Field(default=46, ge=0, le=255,
                                           description="association authentication failure")
    decryption_failure_event: int = Field(default=49, ge=0, le=255,
                                          description="decryption or authentication (GCM tag) failure")
    replay_event: int = Field(default=50, ge=0, le=255, description="replay attack (invocation counter)")
    key_changed_event: int = Field(default=48, ge=0, le=255, description="global key changed")
    failures_before_event: int = Field(default=1, ge=1, le=100,
                                       description="failed associations before the event is logged")
