"""What a conformance test leaves behind: its use-case steps and its measurements.

Steps follow the IEC 62559-2 interaction sequence (step id, producer, receiver,
information exchanged). Measurements are declared with their limits, units and
article, so a verdict always says what was measured against what (OpenHTF style).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

import allure
from smmc_bench.profile.meter import Limit


class MeasurementFailed(AssertionError):
    """A declared measurement is outside its limits: the meter does not conform."""


@dataclass
class Step:
    id: str
    producer: str
    receiver: str
    information: str
    started: str
    outcome: str = "running"

    def title(self) -> str:
        return f"{self.id} {self.producer} -> {self.receiver}: {self.information}"


@dataclass
class Measurement:
    name: str
    value: Any
    unit: str
    article: str
    passed: bool
    low: float | None = None
    high: float | None = None
    expected: Any = None
    provisional: bool = False

    def describe(self) -> str:
        value = f"{self.value:.3f}".rstrip("0").rstrip(".") if isinstance(self.value, float) else repr(self.value)
        if self.expected is not None:
            bound = f"expected {self.expected!r}"
        else:
            parts = []
            if self.low is not None:
                parts.append(f">= {self.low:g}")
            if self.high is not None:
                parts.append(f"<= {self.high:g}")
            bound = "limit " + " and ".join(parts) + (f" {self.unit}" if self.unit else "")
        unit = f" {self.unit}" if self.unit and self.expected is None else ""
        mark = ", provisional" if self.provisional else ""
        return f"{self.name} = {value}{unit}, {bound} (art. {self.article}{mark})"


@dataclass
class UseCase:
    """The record one conformance test builds as it runs."""

    steps: list[Step] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    # Time series for the report's plots (e.g. the source voltage with the meter's events on it).
    series: list[dict] = field(default_factory=list)

    @contextmanager
    def step(self, step_id: str, producer: str, receiver: str, information: str) -> Iterator[Step]:
        step = Step(step_id, producer, receiver, information, datetime.now(timezone.utc).isoformat())
        self.steps.append(step)
        with allure.step(step.title()):
            try:
                yield step
            except BaseException:
                step.outcome = "failed"
                raise
            step.outcome = "done"

    def measure(
        self,
        name: str,
        value: float,
        *,
        limit: Limit | None = None,
        low: float | None = None,
        high: float | None = None,
        unit: str = "",
        article: str = "",
    ) -> float:
        """Record a numeric measurement; `limit` is an upper bound from the profile."""
        if limit is not None:
            high, unit, article = limit.value, limit.unit, limit.article
        passed = not math.isnan(value) and (low is None or value >= low) and (high is None or value <= high)
        measurement = Measurement(
            name, value, unit, article, passed, low=low, high=high,
            provisional=bool(limit and limit.provisional),
        )
        return self._record(measurement)

    def expect(self, name: str, observed: Any, expected: Any, *, article: str) -> Any:
        """Record an observation that must equal an expected value."""
        return self._record(Measurement(name, observed, "", article, observed == expected, expected=expected))

    def _record(self, measurement: Measurement) -> Any:
        self.measurements.append(measurement)
        # A step of its own in allure, failed when out of limits, so the report shows which one failed.
        with allure.step(f"measure {measurement.describe()}"):
            if not measurement.passed:
                raise MeasurementFailed(measurement.describe())
        return measurement.value

    def record_series(self, name: str, unit: str, points: list[tuple[float, float]], *,
                      markers: list[tuple[float, str]] = (), article: str = "") -> None:
        """A time series for the report (seconds from an origin the test names, value): evidence to
        look at, never a verdict by itself."""
        self.series.append({"name": name, "unit": unit, "article": article,
                            "points": [[float(x), float(y)] for x, y in points],
                            "markers": [[float(x), str(label)] for x, label in markers]})

    def measurements_table(self) -> str:
        """Every measurement with its limits, unit, article and result, one per line."""
        return "\n".join(f"{'PASS' if m.passed else 'FAIL'}  {m.describe()}" for m in self.measurements)

    def to_jsonable(self) -> dict:
        return {
            "series": self.series,
            "steps": [asdict(s) for s in self.steps],
            "measurements": [
                {**asdict(m), "value": _jsonable(m.value), "expected": _jsonable(m.expected)} for m in self.measurements
            ],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "name") and hasattr(value, "value"):  # enums
        return f"{value.name}"
    return value
