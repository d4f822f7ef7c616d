"""Short property-based run over every decoder of bytes from a meter or an instrument: whatever
comes in, only the bench's own errors come out (the long run: benchmarks/fuzz_decoders.py)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from .decoders import DECODERS, escapes

# A few seconds for the whole folder; the database off so every run explores afresh.
SHORT = settings(max_examples=150, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.mark.parametrize("decoder", DECODERS, ids=[d.name for d in DECODERS])
def test_only_bench_errors_escape(decoder):
    @SHORT
    @given(decoder.inputs)
    def check(data):
        escaped = escapes(decoder, data)
        assert escaped is None, f"{decoder.name}: {type(escaped).__name__}: {escaped} on {data!r}"

    check()


def test_every_seed_is_accepted():
    """The valid messages the mutations start from decode cleanly (else the fuzzing starts nowhere)."""
    from smmc_bench.drivers.dlms import apdu

    from . import decoders as d

    for decode, data in [(d.hdlc.decode, d.HDLC_UA), (d.hdlc.decode, d.HDLC_I), (apdu.parse_aare, d.AARE),
                         (apdu.parse_aare, d.AARE_FULL), (apdu.parse_aare, d.AARE_REJECTED),
                         (apdu.parse_rlre, d.RLRE), (apdu.parse_service_reply, d.GET_NORMAL),
                         (apdu.parse_service_reply, d.GET_BLOCK), (apdu.parse_service_reply, d.ACTION_DATA),
                         (apdu.parse_service_reply, d.EXCEPTION), (d.parse_data_notification, d.NOTIFICATION),
                         (d._push_blocks, d.GBT_BLOCK), (d._wrapper_header, d.WRAPPER_HEADER),
                         (d.parse_identification, d.IDENTIFICATION), (d._datetime, d.STAMP)]:
        decode(data)
