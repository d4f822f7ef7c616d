"""Blame the right party: a well-framed reply whose content breaks the standard is the meter's
non-conformity (FAIL); ERROR is left for what kept the bench from judging."""
from __future__ import annotations

import pytest
from smmc_bench.drivers.dlms.errors import (
    AccessDenied,
    ConnectFailed,
    DlmsTimeout,
    ExceptionResponse,
    InvalidCosemValue,
    LinkClosed,
    LinkOutOfStep,
    MalformedReply,
    UnsupportedFeature,
)
from smmc_bench.drivers.headend.notification import MalformedNotification
from smmc_bench.drivers.links.hdlc import FrameError
from smmc_bench.drivers.links.mode_e import IdentificationError
from smmc_bench.plugin.recorder import classify
from smmc_bench.report.record import Verdict
from smmc_bench.safety.restore import RestoreFailed


@pytest.mark.parametrize("exc", [
    MalformedReply("GET 8/0.0.1.0.0.255/2: 18 trailing bytes after a complete GET-Response-Normal", raw=b"\xc4"),
    InvalidCosemValue("invalid date-time: month=13"),
    FrameError("fcs", "frame check sequence does not match"),
    IdentificationError("identification is not /XXXZ ident"),
    MalformedNotification("date-time length 3"),
    AccessDenied("refused", code=3),
    ExceptionResponse("exception", state_error=1, service_error=2),
    AssertionError("expected 0"),
])
def test_the_meter_breaking_the_standard_is_a_fail(exc):
    assert classify(exc) is Verdict.FAIL


@pytest.mark.parametrize("exc", [
    DlmsTimeout("no reply within 3 s"),
    LinkClosed("peer closed the connection"),
    ConnectFailed("connect refused"),
    LinkOutOfStep("HDLC retransmission exhausted"),
    UnsupportedFeature("ciphering not supported yet"),
    RestoreFailed("disconnect control not fully restored"),
    OSError("instrument gone"),
])
def test_what_kept_the_bench_from_judging_is_an_error(exc):
    assert classify(exc) is Verdict.ERROR
