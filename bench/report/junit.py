"""junit.xml as CI tools read it (xunit2: no per-test properties): the suite named after the
station, the station, bench and meters as suite properties, and an ERROR verdict written as
<error>, never <failure>.

pytest's junit writer has no API for these, so this is the one module that reaches into it
(`_pytest.junitxml`); tests/report/test_junit.py pins each touch and validates the file
against tests/report/junit.xsd."""
from __future__ import annotations

import pytest

FAMILY = "xunit2"


def _writer(config: pytest.Config):
    from _pytest.junitxml import xml_key

    return config.stash.get(xml_key, None)


def configure(config: pytest.Config, suite_name: str) -> None:
    """Before any test reports: the family CI schemas accept and the suite's name."""
    writer = _writer(config)
    if writer is not None:
        writer.family = FAMILY
        writer.suite_name = suite_name


def add_suite_properties(config: pytest.Config, properties: dict[str, str]) -> None:
    """Suite-level <properties>, written when the session ends."""
    writer = _writer(config)
    if writer is None:
        return
    known = {name for name, _ in writer.global_properties}
    for name, value in properties.items():
        if name not in known:
            writer.add_global_property(name, value)


def mark_error(config: pytest.Config, report: pytest.TestReport) -> None:
    """The test's <failure> becomes <error>: the bench could not judge (or was interrupted),
    the meter is not blamed. pytest keeps a test's XML nodes until its teardown report."""
    writer = _writer(config)
    if writer is None:
        return
    for node in writer.node_reporter(report).nodes:
        if node.tag == "failure":
            node.tag = "error"
            # The suite's counts were taken when the <failure> was added.
            writer.stats["failure"] -= 1
            writer.stats["error"] += 1
