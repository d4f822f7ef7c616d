"""What `bench validate` counts (smmc_bench.validation) and how it says it (an 80-column summary),
on made-up runs: no suite is run here."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from smmc_bench.report import record
from smmc_bench.cli.validate import render
from smmc_bench.report.record import RunRecord, Verdict
from smmc_bench.station import MutantInfo, known_mutants
from smmc_bench.validation import (
    INCOMPLETE,
    KILLED,
    KILLED_OUTSIDE,
    NOT_EXERCISED,
    SURVIVED,
    validate,
)

REPO = Path(__file__).resolve().parents[2]

# Test id -> aspect.
TESTS = {
    "tests/conformance/test_aspect06_connect_disconnect.py::test_remote_disconnect[emu-1]": 6,
    "tests/conformance/test_aspect13_time_sync.py::test_clock_sync_within_tolerance[emu-1]": 13,
    "tests/conformance/test_aspect13_time_sync.py::test_shift_time_moves_clock_by_the_step_and_back_again_as_asked"
    "[emu-1-optical]": 13,
    "tests/conformance/test_aspect14_remote_power_limit.py::test_limiter_needs_a_load[emu-1]": 14,
}
DISCONNECT, SYNC, SHIFT, LIMITER = TESTS

MUTANTS = {
    "clock-shift-ignored": MutantInfo("clock-shift-ignored", "shift_time does nothing", 13),
    "disconnect-event-late": MutantInfo("disconnect-event-late", "event 62 stamped late", 6),
    "breaker-caught-by-clock": MutantInfo("breaker-caught-by-clock", "seen only by a clock test", 6),
    "no-answer-after-outage": MutantInfo("no-answer-after-outage", "silent after an outage", 13),
    "limiter-never-trips": MutantInfo("limiter-never-trips", "never trips", 14),
    "hdlc-bad-fcs": MutantInfo("hdlc-bad-fcs", "bad FCS", 1, ("optical", "serial")),
}


def run(verdicts: dict[str, Verdict], mutant: str | None = None) -> RunRecord:
    tests = [record.TestRecord(id=test_id, name=test_id.split("::")[-1].split("[")[0], aspect=TESTS[test_id],
                        verdict=verdict, diagnosis="" if verdict is Verdict.PASS else f"{verdict.value} here")
             for test_id, verdict in verdicts.items()]
    return RunRecord(run_id="r", started="now", station={}, bench_file="bench.toml", mutant=mutant,
                     collected=len(tests), tests=tests)


P, F, E, S = Verdict.PASS, Verdict.FAIL, Verdict.ERROR, Verdict.SKIP
CONFORMING = run({DISCONNECT: P, SYNC: P, SHIFT: P, LIMITER: S})


def runs(**overrides: dict[str, Verdict] | str) -> dict[str, RunRecord | str]:
    """Every mutant's run: all PASS (limiter test skipped) unless overridden."""
    result: dict[str, RunRecord | str] = {}
    for name in MUTANTS:
        given = overrides.get(name.replace("-", "_"), {})
        if isinstance(given, (str, RunRecord)):
            result[name] = given
        else:
            result[name] = run({DISCONNECT: P, SYNC: P, SHIFT: P, LIMITER: S} | given, name)
    return result


def good_runs() -> dict[str, RunRecord | str]:
    return runs(clock_shift_ignored={SHIFT: F}, disconnect_event_late={DISCONNECT: F},
                breaker_caught_by_clock={SYNC: F}, no_answer_after_outage={SYNC: F, SHIFT: E})


def test_only_a_fail_is_a_kill_and_an_error_is_shown_as_such():
    result = validate(CONFORMING, runs(clock_shift_ignored={SHIFT: F}, no_answer_after_outage={SYNC: E, SHIFT: E},
                                       disconnect_event_late={DISCONNECT: F}, breaker_caught_by_clock={SYNC: F}),
                      MUTANTS)
    by_name = {m.name: m for m in result.mutants}
    silent = by_name["no-answer-after-outage"]
    assert silent.status == SURVIVED and silent.errors == [SYNC, SHIFT] and not silent.kills_in_aspect
    assert any(p.startswith("no-answer-after-outage: survives") and "ERROR in 2" in p for p in result.problems)
    assert by_name["clock-shift-ignored"].status == KILLED
    assert {t.id: t.errors for t in result.tests}[SYNC] == ["no-answer-after-outage"]
    assert not result.ok


def test_a_fail_on_a_test_that_fails_on_the_conforming_meter_is_no_kill():
    conforming = run({DISCONNECT: P, SYNC: F, SHIFT: P, LIMITER: S})
    result = validate(conforming, good_runs(), MUTANTS)
    sync = next(t for t in result.tests if t.id == SYNC)
    assert not sync.validated and sync.kills == []
    assert f"{SYNC}: FAIL against the conforming meter: FAIL here" in result.problems
    assert {m.name: m.status for m in result.mutants}["breaker-caught-by-clock"] == SURVIVED


def test_kills_outside_the_mutants_aspect_are_flagged_not_failed():
    result = validate(CONFORMING, good_runs(), MUTANTS)
    caught = next(m for m in result.mutants if m.name == "breaker-caught-by-clock")
    assert caught.status == KILLED_OUTSIDE and caught.kills_outside_aspect == [SYNC] and not caught.kills_in_aspect
    assert result.ok, result.problems


def test_a_mutant_no_test_of_its_aspect_reaches_is_not_exercised():
    """The limiter test is not applicable on this bench (skipped): its mutant cannot be judged."""
    result = validate(CONFORMING, good_runs(), MUTANTS)
    statuses = {m.name: m.status for m in result.mutants}
    assert statuses["limiter-never-trips"] == NOT_EXERCISED and statuses["hdlc-bad-fcs"] == NOT_EXERCISED
    assert result.not_applicable == {LIMITER: "SKIP here"}


def test_a_test_that_kills_nothing_fails_the_validation():
    result = validate(CONFORMING, runs(clock_shift_ignored={SHIFT: F}, breaker_caught_by_clock={SHIFT: F},
                                       disconnect_event_late={DISCONNECT: F}, no_answer_after_outage={SHIFT: F}),
                      MUTANTS)
    assert result.problems == [f"{SYNC}: kills no mutant"]


def test_a_run_that_did_not_finish_is_no_evidence():
    result = validate(CONFORMING, runs(clock_shift_ignored="run incomplete (pytest exit 3): crashed",
                                       disconnect_event_late={DISCONNECT: F}, breaker_caught_by_clock={SYNC: F},
                                       no_answer_after_outage={SHIFT: F}), MUTANTS)
    crashed = next(m for m in result.mutants if m.name == "clock-shift-ignored")
    assert crashed.status == INCOMPLETE
    assert "clock-shift-ignored: run incomplete (pytest exit 3): crashed" in result.problems
    missing = validate(CONFORMING, runs(clock_shift_ignored=run({SHIFT: F}, "clock-shift-ignored"),
                                        disconnect_event_late={DISCONNECT: F}, breaker_caught_by_clock={SYNC: F}),
                       MUTANTS)
    assert f"{SYNC}: no verdict in the run against clock-shift-ignored" in missing.problems
    broken = validate("run incomplete (pytest exit 2): bad bench", good_runs(), MUTANTS)
    assert broken.problems == ["conforming meter: run incomplete (pytest exit 2): bad bench"]


def test_validation_json_holds_the_full_matrix():
    document = validate(CONFORMING, good_runs(), MUTANTS).to_jsonable()
    assert set(document["matrix"]) == {DISCONNECT, SYNC, SHIFT}
    assert all(set(row) == set(MUTANTS) for row in document["matrix"].values())
    assert document["matrix"][SHIFT]["no-answer-after-outage"] == "ERROR"
    assert document["matrix"][SHIFT]["clock-shift-ignored"] == "FAIL"
    assert document["mutants"]["breaker-caught-by-clock"]["kills_outside_aspect"] == [SYNC]
    assert document["tests"][SHIFT]["kills"] == ["clock-shift-ignored"]
    assert document["conforming"][LIMITER] == "SKIP"


def test_the_summary_fits_80_columns():
    texts = []
    for validation in (validate(CONFORMING, good_runs(), MUTANTS),
                       validate(CONFORMING, runs(no_answer_after_outage={SYNC: E}), MUTANTS)):
        buffer = io.StringIO()
        render(validation, Console(file=buffer, width=80, force_terminal=False, color_system=None))
        text = buffer.getvalue()
        assert max(len(line) for line in text.splitlines()) <= 80, text
        assert all(name in text for name in MUTANTS)
        headers = [line.split() for line in text.splitlines() if line.split()[:1] in (["Mutant"], ["Test"])]
        assert headers == [["Mutant", "Asp", "Result", "Kills", "ERR"], ["Test", "Asp", "Conf.", "Kills", "ERR"]]
        texts.append(" ".join(text.split()))
    assert "breaker-caught-by-clock (aspect 6): only by test_clock_sync_within_tolerance[emu-1] (aspect 13)" in texts[0]
    assert "validated" in texts[0] and "NOT VALIDATED" not in texts[0]
    assert "…[emu-1-optical]" in texts[0]  # a name cut in the middle keeps its parameters
    assert "no-answer-after-outage: survives: no test FAILs against it (ERROR in 1, which is no evidence)" in texts[1]


def test_validate_list_names_every_mutant_with_its_aspect_and_defect():
    result = subprocess.run([sys.executable, "-m", "smmc_bench.cli", "validate", "--list"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    flat = " ".join(result.stdout.split())
    for mutant in known_mutants().values():
        assert mutant.name in flat
        assert " ".join(mutant.description.split()) in flat
    assert "(meter)" in flat and "(optical)" in flat  # meter mutants and link mutants alike


def test_security_mutants_apply_only_where_the_emulated_meter_uses_hls_gmac():
    import argparse
    from pathlib import Path

    from smmc_bench.cli.validate import selected_mutants
    from smmc_bench.config import load_bench

    root = Path(__file__).resolve().parents[2]
    chosen = {bench: set(selected_mutants(argparse.Namespace(mutants=[], bench=bench), load_bench(root / bench)))
              for bench in ("bench.toml", "examples/hls.toml")}
    assert not {name for name in chosen["bench.toml"] if name.startswith("sec-")}
    assert {name for name in chosen["examples/hls.toml"] if name.startswith("sec-")} == \
        {name for name in known_mutants() if name.startswith("sec-")}
