"""Aspect 1 (art. 4-4): the meter's HDLC data link (IEC 62056-46), in the spirit of
the DLMS UA conformance test groups for the HDLC layer.

Use case: the head-end's data link meets a line that is not perfect: frames
with a wrong FCS or HCS, frames for another station, an information field
longer than agreed, frames out of sequence, connections set up with and without
negotiated parameters, and torn down with DISC. The meter must ignore or answer
each as IEC 62056-46 says, never act on a faulty frame, and still serve a
normal association afterwards.
"""
from __future__ import annotations

import pytest
from smmc_bench.drivers.dlms import DlmsSession, SessionSettings
from smmc_bench.drivers.dlms.errors import DlmsError
from smmc_bench.drivers.links.hdlc import HdlcParameters, Kind
from smmc_bench.plugin.links import (
    neighbour_addresses,
    own_physical_address,
    serial_number,
    unknown_physical_address,
)

HDLC_LINKS = ("optical", "serial", "hdlc-tcp", "rs485")
pytestmark = [pytest.mark.smmc_aspect(1), pytest.mark.smmc_ntd("4-4"),
              pytest.mark.smmc_links(*HDLC_LINKS)]

HEAD_END = "Head-end (bench)"
METER = "Meter"


def still_works(meter, link_access, usecase, step: str) -> None:
    """The last step of every test: the meter's own client associates and reads as usual."""
    with usecase.step(step, HEAD_END, METER, "new connection, association and GET serial number as usual"):
        try:
            link_access.resume()
            answered = bool(serial_number(meter))
            why = ""
        except DlmsError as exc:
            answered, why = False, exc.diagnosis
    usecase.expect("meter serves a normal association afterwards" + (f" ({why})" if why else ""), answered, True,
                   article="4-4")


def long_read(probe, meter) -> int:
    """The public client's object list over the probe's connection: many segments at small sizes."""
    session = probe_session(probe, meter)
    with session:
        return len(session.object_list())


def probe_session(probe, meter) -> DlmsSession:
    return DlmsSession(probe, SessionSettings(client_sap=meter.profile.clients.public_sap,
                                              server_logical=meter.link.server_logical, timeout=meter.link.timeout))


def test_snrm_without_parameters_uses_the_defaults(meter, link_access, usecase):
    probe = link_access.probe(proposal=None)
    with usecase.step("1", HEAD_END, METER, "SNRM without parameter field"):
        answer = probe.snrm(None)
    usecase.expect("answer to SNRM", answer.kinds, ["UA"], article="4-4")
    agreed = probe.negotiated
    usecase.measure("max information field the meter will send (UA)", agreed.max_info_rx, high=128, unit="B",
                    article="4-4")
    usecase.measure("window the meter will use (UA)", agreed.window_rx, high=1, unit="frames", article="4-4")
    with usecase.step("2", HEAD_END, METER, "associate (public client) and read the object list"):
        long_read(probe, meter)
    usecase.measure("largest information field received", probe.stats.max_info_received, high=agreed.max_info_rx,
                    unit="B", article="4-4")
    still_works(meter, link_access, usecase, "3")


def test_snrm_with_parameters_negotiates_within_the_proposal(meter, link_access, usecase):
    hdlc = meter.profile.links.hdlc
    proposals = [HdlcParameters.symmetric(hdlc.max_info_length, hdlc.window_size),
                 HdlcParameters.symmetric(max(32, hdlc.max_info_length // 2), 1)]
    probe = link_access.probe()
    for number, proposal in enumerate(proposals, 1):
        with usecase.step(f"{number}a", HEAD_END, METER, f"SNRM proposing {proposal.describe()}"):
            answer = probe.snrm(proposal)
        usecase.expect("answer to SNRM", answer.kinds, ["UA"], article="4-4")
        agreed = probe.negotiated
        usecase.measure("max information field the meter will send", agreed.max_info_rx,
                        high=proposal.max_info_rx, unit="B", article="4-4")
        usecase.measure("max information field the meter accepts", agreed.max_info_tx,
                        low=min(hdlc.min_info_length.value, proposal.max_info_tx), unit="B",
                        article=hdlc.min_info_length.article)
        usecase.measure("window the meter will use", agreed.window_rx, high=proposal.window_rx, unit="frames",
                        article="4-4")
        with usecase.step(f"{number}b", HEAD_END, METER, "associate (public client) and read the object list"):
            long_read(probe, meter)
        usecase.measure("largest information field received", probe.stats.max_info_received,
                        high=agreed.max_info_rx, unit="B", article="4-4")
        probe.stats.max_info_received = 0
    still_works(meter, link_access, usecase, "3")


@pytest.mark.parametrize("damaged", ["fcs", "hcs"])
def test_frame_with_a_wrong_check_sequence_is_ignored(meter, link_access, usecase, damaged):
    probe = link_access.probe()
    with usecase.step("1", HEAD_END, METER, "SNRM"):
        usecase.expect("answer to SNRM", probe.snrm(probe.proposal).kinds, ["UA"], article="4-4")
    request = probe.public_request()
    with usecase.step("2", HEAD_END, METER, f"I-frame (AARQ) with a wrong {damaged.upper()}"):
        answer = probe.information(request, corrupt=damaged)
    usecase.expect(f"answer to a frame with a wrong {damaged.upper()}", answer.describe(), "no answer",
                   article="4-4")
    with usecase.step("3", HEAD_END, METER, "the same I-frame, intact"):
        answer = probe.information(request)
    usecase.expect("the intact frame is taken in sequence and answered", answer.processed, True, article="4-4")
    still_works(meter, link_access, usecase, "4")


def test_frame_for_an_unknown_address_is_ignored(meter, bench_station, link_access, usecase):
    with usecase.step("0", HEAD_END, METER, "the meter's own physical address (link, else HDLC setup device_address)"):
        own = own_physical_address(meter)
    unknown = unknown_physical_address(own, neighbour_addresses(bench_station, meter.link))
    probe = link_access.probe()
    with usecase.step("1", HEAD_END, METER, f"SNRM to physical address {unknown} (no meter there)"):
        answer = probe.snrm(probe.proposal, physical=unknown)
    usecase.expect(f"answer from a meter to physical address {unknown}", answer.describe(), "no answer",
                   article="4-4")
    with usecase.step("2", HEAD_END, METER, "SNRM to the meter's own address"):
        answer = probe.snrm(probe.proposal)
    usecase.expect("answer to SNRM", answer.kinds, ["UA"], article="4-4")
    still_works(meter, link_access, usecase, "3")


def test_information_field_longer_than_agreed_is_rejected(meter, link_access, usecase):
    probe = link_access.probe()
    with usecase.step("1", HEAD_END, METER, "SNRM"):
        usecase.expect("answer to SNRM", probe.snrm(probe.proposal).kinds, ["UA"], article="4-4")
    too_long = probe.negotiated.max_info_tx + 1
    with usecase.step("2", HEAD_END, METER, f"I-frame with a {too_long}-byte information field "
                                            f"(agreed: {too_long - 1})"):
        answer = probe.information(probe.public_request(), pad_to=too_long)
    usecase.expect("meter acts on the over-long frame", answer.processed, False, article="4-4")
    usecase.expect("answer is a frame reject or nothing", set(answer.kinds) <= {"FRMR"}, True, article="4-4")
    with usecase.step("3", HEAD_END, METER, "SNRM (a rejected frame ends the connection state)"):
        usecase.expect("answer to SNRM", probe.snrm(probe.proposal).kinds, ["UA"], article="4-4")
    still_works(meter, link_access, usecase, "4")


def test_out_of_sequence_frame_is_not_acted_on(meter, link_access, usecase):
    probe = link_access.probe()
    with usecase.step("1", HEAD_END, METER, "SNRM"):
        usecase.expect("answer to SNRM", probe.snrm(probe.proposal).kinds, ["UA"], article="4-4")
    request = probe.public_request()
    with usecase.step("2", HEAD_END, METER, "I-frame (AARQ) with N(S) = 2 where 0 is due"):
        answer = probe.information(request, send_seq=2)
    usecase.expect("meter acts on the out-of-sequence frame", answer.processed, False, article="4-4")
    rr = answer.first(Kind.RR)
    usecase.expect("answer is nothing or RR with N(R) = 0", set(answer.kinds) <= {"RR"} and
                   (rr is None or rr.recv_seq == 0), True, article="4-4")
    with usecase.step("3", HEAD_END, METER, "the I-frame with N(S) = 0"):
        answer = probe.information(request)
    usecase.expect("the in-sequence frame is answered", answer.processed, True, article="4-4")
    still_works(meter, link_access, usecase, "4")


def test_meter_frames_have_valid_check_sequences(meter, link_access, usecase):
    limit = meter.profile.links.hdlc.max_bad_frames
    probe = link_access.probe(proposal=HdlcParameters())
    with usecase.step("1", HEAD_END, METER, "SNRM with the default 128-byte information field"):
        usecase.expect("answer to SNRM", probe.snrm(HdlcParameters()).kinds, ["UA"], article="4-4")
    with usecase.step("2", HEAD_END, METER, "associate (public client) and read the object list three times"):
        for _ in range(3):
            long_read(probe, meter)
    usecase.measure("frames received", probe.stats.frames_received, unit="frames", article="4-4")
    usecase.measure("frames from the meter with a wrong HCS/FCS", probe.stats.bad_frames, limit=limit)
    still_works(meter, link_access, usecase, "3")


def test_disc_ends_the_connection(meter, link_access, usecase):
    probe = link_access.probe()
    with usecase.step("0", HEAD_END, METER, "DISC with no connection set up"):
        answer = probe.disc()
    usecase.expect("answer to DISC in the disconnected state", answer.kinds, ["DM"], article="4-4")
    with usecase.step("1", HEAD_END, METER, "SNRM"):
        usecase.expect("answer to SNRM", probe.snrm(probe.proposal).kinds, ["UA"], article="4-4")
    with usecase.step("2", HEAD_END, METER, "DISC"):
        answer = probe.disc()
    usecase.expect("answer to DISC", answer.kinds, ["UA"], article="4-4")
    with usecase.step("3", HEAD_END, METER, "I-frame (AARQ) after DISC"):
        answer = probe.information(probe.public_request())
    usecase.expect("meter acts on a frame after DISC", answer.processed, False, article="4-4")
    usecase.expect("answer is DM or nothing", set(answer.kinds) <= {"DM"}, True, article="4-4")
    still_works(meter, link_access, usecase, "4")
