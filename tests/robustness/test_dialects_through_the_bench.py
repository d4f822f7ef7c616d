"""The bench's verdicts do not depend on which encodings the standards allow a meter uses: the
association (aspect 1) and clock (aspect 13) tests, run as a pytest subprocess against the
emulated meter in each dialect, all PASS as against the default one."""
from __future__ import annotations

import pytest
from smmc_bench.fixtures.clock import VirtualClock
from smmc_bench.fixtures.meter import EmulatedMeter
from smmc_bench.fixtures.meter.dialect import DIALECTS

from .conftest import PASSWORD, run_bench, verdicts

SUITE = ["tests/conformance/test_aspect01_architecture.py", "tests/conformance/test_aspect01_association.py",
         "tests/conformance/test_aspect13_time_sync.py"]


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_conforming_meter_passes_in_every_dialect(tmp_path, dialect):
    with EmulatedMeter(clock=VirtualClock(), lls_password=PASSWORD, dialect=dialect) as meter:
        # Not the free run: against a meter the bench does not emulate it waits a real day.
        run, out = run_bench(tmp_path, meter.address[1], SUITE, "--tb=short", "-k", "not free_run", timeout_s=120)
    judged = verdicts(out / "run")
    assert len(judged) >= 10, (run.stdout + run.stderr).decode()[-2000:]
    assert {name: v for name, (v, _) in judged.items() if v != "PASS"} == {}, judged
