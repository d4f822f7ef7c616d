"""Installed names: one top-level package, `smmc_bench`, mapped onto the repository's folders
(bench/ is the package itself; drivers/, fixtures/ and the conformance suite are its
subpackages), so installing the bench never touches PyPI's `fixtures` or `drivers`."""
from pathlib import Path

from setuptools import setup

ROOTS = {
    "smmc_bench": "bench",
    "smmc_bench.drivers": "drivers",
    "smmc_bench.fixtures": "fixtures",
    "smmc_bench.conformance": "tests/conformance",
}


def packages() -> list[str]:
    here = Path(__file__).parent
    found = []
    for name, folder in ROOTS.items():
        for init in sorted((here / folder).rglob("__init__.py")):
            found.append(".".join((name, *init.parent.relative_to(here / folder).parts)))
    return found + list(DATA)


# Folders of data files, shipped as data-only packages (setuptools' recommended form).
DATA = {"smmc_bench.profiles": ["*.toml"], "smmc_bench.benches": ["*.toml"], "smmc_bench.report.templates": ["*.j2"], "smmc_bench.usecases": ["*.toml"], "smmc_bench.fixtures.secrets": ["*"]}

setup(package_dir=ROOTS, packages=packages(), package_data=DATA)
