"""Each association/release mutant (aspect 1) differs from the conforming meter in its one
declared way, seen directly on the wire by the bench's session."""
from __future__ import annotations

import pytest
from smmc_bench.drivers.dlms import (
    Authentication,
    DlmsSession,
    SessionSettings,
    TcpWrapperTransport,
)
from smmc_bench.drivers.dlms.errors import DlmsError
from smmc_bench.drivers.secret import Secret
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter, default_lls_password
from smmc_bench.fixtures.meter.mutants import association_release

NAMES = sorted(m.name for m in association_release.MUTANTS)
PROBED_MUTANTS = set(NAMES)


def observe(mutant: str | None) -> tuple:
    """(AARE context, mechanism-name, diagnostic, conformance granted beyond the proposal),
    how object_list reads with a 128-byte client PDU, and what the release answers."""
    with EmulatedMeter(clock=VirtualClock(), mutant=mutant) as meter:
        host, port = meter.address

        def session() -> DlmsSession:
            return DlmsSession(TcpWrapperTransport(host, port, connect_timeout=2.0),
                               SessionSettings(1, 1, Authentication.LOW, Secret(default_lls_password()),
                                               timeout=3.0, max_pdu=128))
        with session() as first:
            aare = first.last_aare
            granted = (aare.application_context, aare.mechanism, aare.diagnostic,
                       aare.initiate.conformance & ~first.proposed_conformance)
            try:
                listed = "ok" if first.object_list() else "empty"
            except DlmsError as exc:
                listed = type(exc).__name__
        second = session()  # the release on a link no earlier defect put out of step
        try:
            second.connect()
            try:
                released = second.release(strict=True)
            except DlmsError as exc:
                released = type(exc).__name__
        finally:
            second.close()
    return granted, listed, released


CONFORMING = ((1, None, 0, 0), "ok", 0)


def test_conforming_meter_observation():
    assert observe(None) == CONFORMING


@pytest.mark.parametrize("name", NAMES)
def test_association_mutant_differs_from_conforming_meter(name):
    observed = observe(name)
    assert observed != CONFORMING
    # one defect only: the parts of the observation outside its own stay conforming
    differing = [i for i in range(3) if observed[i] != CONFORMING[i]]
    assert len(differing) == 1, observed


def test_association_mutant_specific_values():
    assert observe("rlre-inconsistent-length")[2] == "MalformedReply"
    assert observe("rlre-reason-not-normal")[2] == 1
    assert observe("max-pdu-ignored")[1] == "MalformedReply"
    assert observe("block-transfer-granted-but-refused")[1] == "OtherReason"
    assert observe("aare-context-name-wrong")[0][0] == 2
    assert observe("aare-mechanism-name-wrong")[0][1] == 0
    assert observe("aare-diagnostic-not-null")[0][2] == 14
    assert observe("aare-grants-unproposed-conformance")[0][3] != 0
