"""Direct probes of the HDLC link mutants: each one's defect is observable at the
emulated endpoint (frames built by the bench's codec, answers read by it), and the
conforming endpoint behaves. A mutant that changes nothing fails here."""
from __future__ import annotations

import pytest
from smmc_bench.drivers.links import hdlc as bench
from smmc_bench.fixtures.links.hdlc_server import CONFORMING, HdlcEndpoint
from smmc_bench.fixtures.links.mutants import LINK_MUTANTS

CLIENT, SERVER = bench.Address.client(16), bench.Address.server(1, 17)
OTHER = bench.Address.server(1, 18)
AARQ = bench.LLC_REQUEST + b"\x60\x00"


class Echo:
    def handle(self, client_sap: int, apdu: bytes) -> bytes:
        return b"\x61\x00"


def endpoint(behaviour=CONFORMING) -> HdlcEndpoint:
    return HdlcEndpoint(Echo, logical=1, physical=17, behaviour=behaviour)


def send(ep: HdlcEndpoint, kind: str, *, to=SERVER, info=b"", send_seq=0, recv_seq=0, damage=None) -> list:
    frame = bench.Frame(bench.Kind(kind), to, CLIENT, send_seq=send_seq, recv_seq=recv_seq, info=info)
    wire = bench.encode(frame)
    if damage:
        wire = bench.corrupt(wire, damage)
    out = []
    for event in ep_reader().feed(wire):
        if hasattr(event, "kind"):
            if ep.accepts(event):
                out += ep.handle(event)
        else:
            out += ep.handle_bad(event)
    return [bench.decode(raw) for raw in out]


def ep_reader():
    from smmc_bench.fixtures.links.hdlc_wire import FrameReader
    return FrameReader()


def kinds(frames) -> list[str]:
    return [f.kind.value for f in frames]


def connect(ep, params=None) -> list:
    return send(ep, "SNRM", info=bench.encode_parameters(params) if params else b"")


def both(name):
    """(conforming endpoint, mutant endpoint)."""
    return endpoint(), endpoint(LINK_MUTANTS[name].behaviour)


def test_acts_after_disc():
    for ep, served in zip(both("hdlc-acts-after-disc"), (False, True)):
        connect(ep)
        assert kinds(send(ep, "DISC")) == ["UA"]
        answer = send(ep, "I", info=AARQ)
        assert kinds(answer) == (["I"] if served else ["DM"])


def test_disc_answered_with_dm():
    for ep, expected in zip(both("hdlc-disc-answered-with-dm"), (["UA"], ["DM"])):
        connect(ep)
        assert kinds(send(ep, "DISC")) == expected


def test_disc_without_connection_answered_with_ua():
    for ep, expected in zip(both("hdlc-disc-without-connection-ua"), (["DM"], ["UA"])):
        assert kinds(send(ep, "DISC")) == expected


@pytest.mark.parametrize("damage", ["fcs", "hcs"])
def test_frmr_on_bad_check_sequence(damage):
    for ep, expected in zip(both("hdlc-frmr-on-bad-check-sequence"), ([], ["FRMR"])):
        connect(ep)
        assert kinds(send(ep, "I", info=AARQ, damage=damage)) == expected


def test_ua_ignores_proposal():
    proposal = bench.HdlcParameters.symmetric(64, 1)
    for ep, expected in zip(both("hdlc-ua-ignores-proposal"), (64, 128)):
        ua = connect(ep, proposal)
        agreed = bench.parse_parameters(ua[0].info)
        assert (agreed.max_info_tx, agreed.max_info_rx) == (expected, expected)


def test_rr_wrong_nr():
    for ep, expected in zip(both("hdlc-rr-wrong-nr"), (0, 1)):
        connect(ep)
        answer = send(ep, "I", info=AARQ, send_seq=2)
        assert kinds(answer) == ["RR"] and answer[0].recv_seq == expected


def test_frmr_on_out_of_sequence():
    for ep, expected in zip(both("hdlc-frmr-on-out-of-sequence"), (["RR"], ["FRMR"])):
        connect(ep)
        assert kinds(send(ep, "I", info=AARQ, send_seq=2)) == expected


def test_dm_for_other_addresses():
    for ep, expected in zip(both("hdlc-dm-for-other-addresses"), ([], ["DM"])):
        assert kinds(send(ep, "SNRM", to=OTHER)) == expected
        assert kinds(connect(ep)) == ["UA"]  # its own address still works
