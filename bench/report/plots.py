"""Plots for the run report, as inline SVG (matplotlib, no display needed)."""
from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")  # headless: the report is rendered on CI machines without a screen
import matplotlib.pyplot as plt  # noqa: E402


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline: no XML prolog inside HTML


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def measurements_against_limits(title: str, measurements: list[dict]) -> str | None:
    """Each numeric measurement with an upper limit as a share of that limit: under 100 % passes."""
    rows = [(m["name"], _number(m.get("value")), _number(m.get("high")), m.get("passed"))
            for m in measurements if _number(m.get("value")) is not None and _number(m.get("high"))]
    # A deviation counts by its size: -3 s against a 2 s limit is 150 %.
    rows = [(name, abs(value) / high * 100.0, passed) for name, value, high, passed in rows if high > 0]
    if not rows:
        return None
    figure, axes = plt.subplots(figsize=(7.5, 0.35 * len(rows) + 1.2))
    names = [name if len(name) <= 60 else name[:57] + "..." for name, _, _ in rows]
    colours = ["#2e7d32" if passed else "#c62828" for _, _, passed in rows]
    axes.barh(range(len(rows)), [share for _, share, _ in rows], color=colours)
    axes.axvline(100.0, color="black", linestyle="--", linewidth=1)
    axes.set_yticks(range(len(rows)), names, fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("% of the limit (the dashed line)")
    axes.set_title(title, fontsize=9)
    return _svg(figure)


def clock_before_after(before: float, after: float, tolerance: float, labels: tuple[str, str, str]) -> str:
    """The meter's deviation from the reference before and after the sync, against the tolerance band."""
    figure, axes = plt.subplots(figsize=(5, 2.6))
    axes.bar([labels[0], labels[1]], [before, after], color=["#9e9e9e", "#2e7d32" if abs(after) <= tolerance else "#c62828"])
    axes.axhspan(-tolerance, tolerance, color="#a5d6a7", alpha=0.5, label=labels[2])
    axes.axhline(0, color="black", linewidth=0.8)
    for x, value in enumerate((before, after)):
        axes.annotate(f"{value:.3g} s", (x, value), ha="center", va="bottom", fontsize=7)
    axes.set_ylabel("s")
    axes.legend(fontsize=7)
    return _svg(figure)


def series_plot(title: str, series: list[dict]) -> str:
    """Time series a test recorded (e.g. source voltage and the meter's events on one timeline)."""
    figure, axes = plt.subplots(figsize=(7.5, 2.8))
    for line in series:
        points = [(p[0], p[1]) for p in line["points"] if _number(p[1]) is not None]
        if not points:
            continue
        xs, ys = zip(*points)
        axes.step(xs, ys, where="post", label=f"{line['name']} ({line.get('unit', '')})")
        for marker in line.get("markers", []):
            axes.axvline(marker[0], color="#c62828", linestyle=":", linewidth=1)
            axes.annotate(marker[1], (marker[0], axes.get_ylim()[1]), fontsize=6, rotation=90, va="top")
    axes.set_xlabel("s (bench clock, from the test's start)")
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7)
    return _svg(figure)
