"""Review-A mutants (reva-*: aspects 1, 3, 4, 5, 6, 7, 14, 15), planted by a reviewer who did not write
the suite. Here only their shape is pinned (each replaces an emulator class by a subclass that overrides
one of its hooks); their behaviour was observed by the reviewer against the conforming meter, and
`bench validate` shows which conformance tests kill them."""
from __future__ import annotations

import pytest
from smmc_bench.fixtures.meter.mutants import review_a

PROBED_MUTANTS = {mutant.name for mutant in review_a.MUTANTS}


@pytest.mark.parametrize("mutant", review_a.MUTANTS, ids=lambda m: m.name)
def test_each_replaces_one_emulator_class_by_an_overriding_subclass(mutant):
    assert mutant.name.startswith("reva-") and mutant.replacements
    for base, replacement in mutant.replacements.items():
        assert issubclass(replacement, base) and replacement is not base
        overridden = {name for name, value in vars(replacement).items() if callable(value) and name != "__init__"}
        assert overridden & set(dir(base)) or "__init__" in vars(replacement), mutant.name
