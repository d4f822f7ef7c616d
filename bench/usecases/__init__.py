"""The use-case catalogue as data: one TOML file per aspect (IEC 62559-2: name, scope, narrative,
actors, assumptions, scenarios with trigger, pre- and post-conditions, and steps with their service,
producer, receiver, information and requirement), in Spanish and English. Each step names the
conformance tests that verify it, or says why no test can (a back-office step)."""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict

HERE = Path(__file__).resolve().parent
LANGUAGES = ("es", "en")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Actor(_Strict):
    es: str
    en: str
    kind: str


class StepText(_Strict):
    event: str
    information: str


class Step(_Strict):
    id: str
    service: str
    producer: str
    receiver: str
    requirement: str
    verified_by: list[str] = []
    back_office: str | None = None
    es: StepText
    en: StepText


class ScenarioText(_Strict):
    name: str
    trigger: str
    pre: str
    post: str


class Scenario(_Strict):
    id: str
    es: ScenarioText
    en: ScenarioText
    step: list[Step]


class AspectText(_Strict):
    name: str
    scope: str
    narrative: str
    assumptions: list[str]


class UseCase(_Strict):
    number: int
    articles: list[str]
    es: AspectText
    en: AspectText
    scenario: list[Scenario]

    def steps(self) -> list[Step]:
        return [step for scenario in self.scenario for step in scenario.step]

    def actors(self) -> list[str]:
        seen: list[str] = []
        for step in self.steps():
            for actor in (step.producer, step.receiver):
                if actor not in seen:
                    seen.append(actor)
        return seen


def load_actors() -> dict[str, Actor]:
    return {key: Actor(**value) for key, value in tomllib.loads((HERE / "actors.toml").read_text()).items()}


def load_catalogue() -> dict[int, UseCase]:
    cases = [UseCase(**tomllib.loads(path.read_text())) for path in sorted(HERE.glob("aspect*.toml"))]
    return {case.number: case for case in cases}


def suite_tests(suite: Path) -> set[str]:
    """The conformance tests' names, read from the suite's modules (nothing imported)."""
    names = set()
    for module in suite.glob("test_*.py"):
        for node in ast.parse(module.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def problems(catalogue: dict[int, UseCase], tests: set[str], actors: dict[str, Actor]) -> list[str]:
    """What keeps the catalogue and the suite apart: a step naming a test that does not exist, a
    step no test verifies (unless back-office, with its reason), a test no step cites, an unknown actor."""
    found, cited = [], set()
    for case in catalogue.values():
        for step in case.steps():
            for test in step.verified_by:
                cited.add(test)
                if test not in tests:
                    found.append(f"step {step.id}: names unknown test {test}")
            if not step.verified_by and not step.back_office:
                found.append(f"step {step.id}: no test verifies it and it is not marked back-office")
            for actor in (step.producer, step.receiver):
                if actor not in actors:
                    found.append(f"step {step.id}: unknown actor {actor}")
    found += [f"test {test}: verifies no step of the catalogue" for test in sorted(tests - cited)]
    return found
