"""Method validation (ISO/IEC 17025): what the runs against the conforming meter and against
each mutant prove about the suite. No I/O here: `bench validate` runs the suite and renders.

The rules (method.md, rule 6):
- a test is validated when it passes on the conforming meter (one it skips there is not
  applicable on this bench; any other verdict there is a problem);
- a mutant is killed only by a FAIL of a validated test: an ERROR (the bench could not carry
  the test out) is shown as such and is never evidence that the defect was seen;
- a kill by a test of another aspect than the mutant's is shown apart: a mutant killed only
  outside its aspect is flagged;
- the validation fails (exit 1) when the conforming meter does not pass a test, a run did not
  finish, a validated test kills no mutant, or a mutant survives (no test kills it although
  tests of its aspect ran). A mutant no test of its aspect reaches on this bench or selection
  is "not exercised" and listed, not failed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smmc_bench.report.record import RunRecord, Verdict
from smmc_bench.station import MutantInfo

KILLED = "killed"
KILLED_OUTSIDE = "killed outside its aspect"
SURVIVED = "survived"
NOT_EXERCISED = "not exercised"
INCOMPLETE = "run incomplete"


@dataclass
class TestResult:
    id: str
    name: str
    aspect: int | None
    conforming: Verdict
    diagnosis: str
    kills: list[str] = field(default_factory=list)  # mutants it FAILs
    errors: list[str] = field(default_factory=list)  # mutants it could not judge (ERROR)

    @property
    def validated(self) -> bool:
        return self.conforming is Verdict.PASS


@dataclass
class MutantResult:
    name: str
    aspect: int
    defect: str
    link_kinds: tuple[str, ...]
    status: str = SURVIVED
    incomplete: str | None = None  # why its run is no evidence
    verdicts: dict[str, str] = field(default_factory=dict)  # test id -> verdict ("" = no verdict)
    kills_in_aspect: list[str] = field(default_factory=list)
    kills_outside_aspect: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return f"link ({', '.join(self.link_kinds)})" if self.link_kinds else "meter"


@dataclass
class Validation:
    tests: list[TestResult]
    not_applicable: dict[str, str]
    mutants: list[MutantResult]
    problems: list[str]
    conforming_incomplete: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def count(self, status: str) -> int:
        return sum(m.status == status for m in self.mutants)

    def to_jsonable(self) -> dict[str, Any]:
        """validation.json: the summary and the full test x mutant matrix."""
        return {
            "ok": self.ok,
            "problems": self.problems,
            "conforming_incomplete": self.conforming_incomplete,
            "conforming": {t.id: t.conforming.value for t in self.tests} | {t: "SKIP" for t in self.not_applicable},
            "not_applicable": self.not_applicable,
            "tests": {t.id: {"name": t.name, "aspect": t.aspect, "conforming": t.conforming.value,
                             "diagnosis": t.diagnosis, "kills": t.kills, "errors": t.errors}
                      for t in self.tests},
            "mutants": {m.name: {"aspect": m.aspect, "kind": "link" if m.link_kinds else "meter",
                                 "link_kinds": list(m.link_kinds), "defect": m.defect, "status": m.status,
                                 "incomplete": m.incomplete, "kills_in_aspect": m.kills_in_aspect,
                                 "kills_outside_aspect": m.kills_outside_aspect, "errors": m.errors}
                        for m in self.mutants},
            # Rows: tests; columns: mutants; cells: the verdict against that mutant ("" = none).
            "matrix": {t.id: {m.name: m.verdicts.get(t.id, "") for m in self.mutants} for t in self.tests},
        }


def validate(conforming: RunRecord | str, runs: dict[str, RunRecord | str],
             mutants: dict[str, MutantInfo]) -> Validation:
    """`conforming`/`runs[name]`: each run's record, or why it is no evidence (a string)."""
    if isinstance(conforming, str):
        return Validation([], {}, [_incomplete(mutants[name], "not judged: the conforming run is no evidence")
                                   for name in sorted(runs)],
                          [f"conforming meter: {conforming}"], conforming_incomplete=conforming)
    problems: list[str] = []
    not_applicable = {t.id: t.diagnosis for t in conforming.tests if t.verdict is Verdict.SKIP}
    tests = [TestResult(t.id, t.name, t.aspect, t.verdict, t.diagnosis)
             for t in conforming.tests if t.verdict is not Verdict.SKIP]
    for test in tests:
        if not test.validated:
            problems.append(f"{test.id}: {test.conforming.value} against the conforming meter: {test.diagnosis}")
    aspects_run = {t.aspect for t in tests if t.validated}
    results = []
    for name in sorted(runs):
        info, run = mutants[name], runs[name]
        if isinstance(run, str):
            results.append(_incomplete(info, run))
            problems.append(f"{name}: {run}")
            continue
        result = MutantResult(name, info.aspect, info.description, info.link_kinds)
        judged = {t.id: t.verdict for t in run.tests}
        for test in tests:
            verdict = judged.get(test.id)
            result.verdicts[test.id] = verdict.value if verdict else ""
            if verdict is None:  # the run never judged it: no evidence either way
                problems.append(f"{test.id}: no verdict in the run against {name}")
            elif verdict is Verdict.ERROR:
                result.errors.append(test.id)
                test.errors.append(name)
            elif verdict is Verdict.FAIL and test.validated:
                (result.kills_in_aspect if test.aspect == info.aspect else result.kills_outside_aspect).append(test.id)
                test.kills.append(name)
        if result.kills_in_aspect:
            result.status = KILLED
        elif result.kills_outside_aspect:
            result.status = KILLED_OUTSIDE
        elif info.aspect in aspects_run:
            result.status = SURVIVED
            errors = f" (ERROR in {len(result.errors)}, which is no evidence)" if result.errors else ""
            problems.append(f"{name}: survives: no test FAILs against it{errors}")
        else:
            result.status = NOT_EXERCISED
        results.append(result)
    if runs:
        for test in tests:
            if test.validated and not test.kills:
                errors = f" (only ERRORs: {len(test.errors)}, which are no evidence)" if test.errors else ""
                problems.append(f"{test.id}: kills no mutant{errors}")
    return Validation(tests, not_applicable, results, problems)


def _incomplete(info: MutantInfo, why: str) -> MutantResult:
    return MutantResult(info.name, info.aspect, info.description, info.link_kinds, status=INCOMPLETE, incomplete=why)
