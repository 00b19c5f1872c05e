"""Charts as data for the one chart macro (`_macros/chart.html`): server-side SVG geometry, labels, tooltips.

The dashboard's figures stay Decimal and int; only the drawing coordinates are floats. Every chart carries
the numbers it draws as rows for its table, and a one-sentence summary for screen readers.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from flask_babel import format_date, format_decimal, gettext

WIDTH, HEIGHT = 640.0, 220.0
LEFT, RIGHT, TOP, BOTTOM = 64.0, 8.0, 10.0, 26.0
TICKS = 4

Number = Decimal | int


@dataclass(frozen=True)
class Point:
    """One day (or category) of a chart: where it is drawn and what its tooltip and table row say."""

    label: str
    value: Number
    shown: str
    x: float
    y: float
    prior: Number | None = None
    prior_shown: str = ""
    prior_y: float | None = None
    delta_shown: str = ""
    direction: str = ""  # "up", "down" or "" (no change, or no prior)
    width: float = 0.0  # bars: the bar's width; lines: the hover column's


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    kind: str  # "line", "bar" or "hbar"
    points: list[Point]
    summary: str
    value_heading: str
    prior_heading: str = ""
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    width: float = WIDTH
    height: float = HEIGHT
    baseline: float = HEIGHT - BOTTOM
    step: float = 0.0  # the width of one day's hover column
    row_heading: str = ""  # what a row of the numbers' table is ("Week"); "" for a day
    axis_note: str = ""  # said under the chart when the value axis does not start at 0

    @property
    def has_prior(self) -> bool:
        return any(point.prior is not None for point in self.points)

    @property
    def line(self) -> str:
        return _path([(p.x, p.y) for p in self.points])

    @property
    def prior_line(self) -> str:
        return _path([(p.x, p.prior_y) for p in self.points if p.prior_y is not None])

    @property
    def area(self) -> str:
        if not self.points:
            return ""
        first, last = self.points[0], self.points[-1]
        return f"{self.line} L{last.x:.1f},{self.baseline:.1f} L{first.x:.1f},{self.baseline:.1f} Z"


def _path(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{'M' if index == 0 else 'L'}{x:.1f},{y:.1f}" for index, (x, y) in enumerate(points))


def _nice_top(value: float, whole: bool) -> float:
    """The axis top: TICKS steps of a round size (1, 1.5, 2, 2.5, 5 or 7.5 × 10ⁿ; whole for counts) reaching `value`."""
    rough = max(value, 1e-9) / TICKS
    magnitude = 10 ** math.floor(math.log10(rough))
    for step in (1, 1.5, 2, 2.5, 5, 7.5, 10):
        size = step * magnitude
        if size >= rough and (not whole or size == int(size)):
            return max(size, 1.0 if whole else 0.0) * TICKS
    return 10 * magnitude * TICKS


def _scaled_axis(low: float, high: float, whole: bool) -> tuple[float, float]:
    """An axis (bottom, top) of TICKS round steps around the data alone, for a series far from 0 (MRR from 6.6k
    to 8.3k drawn from 0 is a flat line)."""
    span = (high - low) or abs(high) * 0.1 or 1.0
    if high == low:  # a flat series sits mid-axis, not on its floor
        low, high = low - span / 2, high + span / 2
    step = _nice_top(span, whole) / TICKS
    for _ in range(8):  # a bottom rounded down can leave the top short of the data: widen the step
        bottom = math.floor(low / step) * step
        if bottom + step * TICKS >= high:
            break
        step = _nice_top(high - bottom, whole) / TICKS
    return bottom, bottom + step * TICKS


def integer(value: Number) -> str:
    return format_decimal(value, format="#,##0")


def signed(value: Number, shown: Callable[[Number], str]) -> str:
    return ("+" if value > 0 else "−" if value < 0 else "±") + shown(abs(value))


def trend_chart(chart_id: str, title: str, days: Sequence[date], current: Sequence[Number],
                prior: Sequence[Number], shown: Callable[[Number], str], *, kind: str = "line",
                value_heading: str, prior_heading: str, from_zero: bool = True, bucket_days: int = 1) -> Chart:
    """A chart of one value per day (or per `bucket_days` from each day) with the prior period's value on the
    matching day; without `from_zero` a line's axis spans the data only, and says where it starts."""
    count = len(days)
    whole = not any(isinstance(value, Decimal) for value in current)
    top = _nice_top(float(max([*current, *prior, 0])), whole) if any([*current, *prior]) else float(TICKS)
    bottom = min(0.0, float(min([*current, *prior, 0])))
    scaled = not from_zero and kind == "line" and min([*current, *prior]) > 0
    if scaled:
        bottom, top = _scaled_axis(float(min([*current, *prior])), float(max([*current, *prior])), whole)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y_of(value: Number) -> float:
        return TOP + plot_h * (1 - (float(value) - bottom) / ((top - bottom) or 1))

    step = plot_w / count if kind == "bar" else plot_w / max(count - 1, 1)
    points = []
    for index, (day, value, before) in enumerate(zip(days, current, prior, strict=True)):
        x = LEFT + step * (index + 0.5) if kind == "bar" else LEFT + step * index
        delta = value - before
        label = (gettext("Week of %(day)s", day=format_date(day, "medium")) if bucket_days == 7
                 else format_date(day, "medium"))
        points.append(Point(
            label=label, value=value, shown=shown(value), x=x, y=y_of(value), prior=before,
            prior_shown=shown(before), prior_y=y_of(before), delta_shown=signed(delta, shown),
            direction="up" if delta > 0 else "down" if delta < 0 else "", width=step * (0.7 if kind == "bar" else 1)))
    y_ticks = [(y_of(bottom + (top - bottom) * i / TICKS), shown(_tick_value(bottom + (top - bottom) * i / TICKS, current)))
               for i in range(TICKS + 1)]
    every = max(1, count // 6)
    x_ticks = [(p.x, format_date(day, "d MMM")) for index, (p, day) in enumerate(zip(points, days, strict=True))
               if index % every == 0 or index == count - 1]
    summary = gettext("%(title)s from %(first_day)s to %(last_day)s: %(first)s to %(last)s; the prior period "
                      "ended at %(prior)s.", title=title, first_day=points[0].label, last_day=points[-1].label,
                      first=points[0].shown, last=points[-1].shown, prior=points[-1].prior_shown) \
        if kind == "line" else \
        gettext("%(title)s from %(first_day)s to %(last_day)s: %(total)s in all, %(prior)s in the prior period.",
                title=title, first_day=points[0].label, last_day=points[-1].label,
                total=shown(sum(current)), prior=shown(sum(prior)))
    axis_note = gettext("The axis starts at %(value)s, not at 0.", value=shown(_tick_value(bottom, current))) \
        if scaled else ""
    return Chart(chart_id, title, kind, points, summary, value_heading, prior_heading, y_ticks, x_ticks,
                 baseline=y_of(bottom if scaled else max(bottom, 0.0)), step=step,
                 row_heading=gettext("Week") if bucket_days == 7 else "", axis_note=axis_note)


def _tick_value(value: float, like: Sequence[Number]) -> Number:
    """An axis value in the series' own type: whole numbers for counts, cents for money."""
    if like and isinstance(like[0], Decimal):
        return Decimal(str(round(value, 2)))
    return int(round(value))


def category_chart(chart_id: str, title: str, rows: Sequence[tuple[str, Number, str]], *,
                   value_heading: str) -> Chart:
    """Horizontal bars, one per category: (label, value, what the bar says)."""
    top = float(max([value for _, value, _ in rows] + [1]))
    row_h = 28.0
    height = TOP + row_h * len(rows) + 4
    plot_w = WIDTH - 140.0 - 80.0
    points = [Point(label=label, value=value, shown=said, x=140.0, y=TOP + row_h * index + 4,
                    width=plot_w * float(value) / top) for index, (label, value, said) in enumerate(rows)]
    summary = "; ".join(f"{label}: {said}" for label, _, said in rows)
    return Chart(chart_id, title, "hbar", points, f"{title}: {summary}.", value_heading, height=height)
