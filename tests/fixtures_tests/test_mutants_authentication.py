"""Each authentication mutant lets through a wrong LLS password the conforming meter refuses."""
from __future__ import annotations

import pytest
from smmc_bench.fixtures.meter import MUTANTS
from smmc_bench.fixtures.meter.apdu import AcseServiceUser
from smmc_bench.fixtures.meter.mutants import authentication
from smmc_bench.fixtures.meter.security import LowLevelSecurity

RIGHT = b"0123456789abcdef"
WRONG = {
    "lls-accepts-any-password": b"nothing like it",
    "lls-accepts-password-prefix": RIGHT[:-1],
    "lls-compares-eight-bytes": RIGHT[:8] + b"XXXXXXXX",
}
PROBED_MUTANTS = set(WRONG)


def checker(mutant: str | None) -> LowLevelSecurity:
    kind = MUTANTS[mutant].replacements[LowLevelSecurity] if mutant else LowLevelSecurity
    return kind(RIGHT)


def test_every_authentication_mutant_is_probed():
    assert {m.name for m in authentication.MUTANTS} == PROBED_MUTANTS


@pytest.mark.parametrize("name", sorted(WRONG))
def test_mutant_accepts_a_password_the_conforming_meter_refuses(name):
    wrong = WRONG[name]
    assert checker(None).check(1, wrong) is AcseServiceUser.AUTHENTICATION_FAILURE
    assert checker(name).check(1, wrong) is AcseServiceUser.NULL
    assert checker(name).check(1, RIGHT) is AcseServiceUser.NULL  # otherwise conforming
