"""Each register-activation mutant (IC 6, aspect 8) differs from the conforming meter in its one way,
observed on the emulator's object beside the tariffs it reports on."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter
from smmc_bench.fixtures.meter.mutants import register_activation

START = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
PROBED_MUTANTS = [mutant.name for mutant in register_activation.MUTANTS]


def build(mutant: str | None) -> EmulatedMeter:
    return EmulatedMeter(clock=VirtualClock(START), mutant=mutant, initial_clock_offset=0.0)


def view(meter) -> tuple[list[bytes], dict[bytes, list[int]], bytes]:
    obj = meter.model.register_activation
    assigned = [item.value[1].value for item in obj.get(2).value]
    masks = {item.value[0].value: [i.value for i in item.value[1].value] for item in obj.get(3).value}
    return assigned, masks, obj.get(4).value


def switch(meter, tariff: int) -> None:
    meter.model.tariffs.current = tariff


def test_the_conforming_object_follows_the_booking():
    meter = build(None)
    assigned, masks, _ = view(meter)
    assert len(assigned) == 4 and masks == {f"T{t}".encode(): [t] for t in range(1, 5)}
    for tariff in (2, 3, 1):
        switch(meter, tariff)
        assert view(meter)[2] == f"T{tariff}".encode()


@pytest.mark.parametrize("name", PROBED_MUTANTS)
def test_each_mutant_differs_in_its_declared_way(name):
    meter = build(name)
    assigned, masks, _ = view(meter)
    if name == "regact-mask-lags-one-switch":
        switch(meter, 1)
        view(meter)
        switch(meter, 2)
        assert view(meter)[2] == b"T1"
    elif name == "regact-masks-2-3-swapped":
        assert masks[b"T2"] == [3] and masks[b"T3"] == [2]
    elif name == "regact-last-register-not-assigned":
        assert len(assigned) == 3
    else:
        pytest.fail(f"no probe for {name}")
