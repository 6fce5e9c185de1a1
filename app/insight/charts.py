"""Server-rendered SVG charts with a title, a description and the numbers in a table.

No JavaScript and no build step: a chart is an inline `<svg role="img">` labelled by its own
`<title>` and `<desc>` (a sentence a screen reader can use: the period, the total, the busiest
day), followed by the same numbers in a `<table>` inside a `<details>` so sighted readers can
open them. The SVG scales with its container (viewBox); colours come from the site palette.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from babel.dates import format_date
from babel.numbers import format_compact_decimal
from markupsafe import Markup, escape

from app import i18n
from app.web.templating import money, number

LEFT, RIGHT, TOP, BOTTOM = 52, 14, 14, 30
NARROW, WIDE = (640, 240), (1080, 300)  # viewBox sizes: half a page, a whole page


@dataclass(frozen=True)
class Box:
    """The drawing area: a viewBox as wide as the chart is shown, so text keeps its size."""

    width: int
    height: int

    @property
    def plot_w(self) -> float:
        return self.width - LEFT - RIGHT

    @property
    def plot_h(self) -> float:
        return self.height - TOP - BOTTOM
COLOURS = ("#c2410c", "#0f766e", "#55504a", "#9a3412")  # brand, accent, ink-2, brand-dark
X_LABELS = 6


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round axis ticks (steps of 1, 2, 2.5 or 5 x 10^n, never below 1) covering [low, high] and 0."""
    low, high = min(low, 0), max(high, 0)
    if high == low:
        high = low + 1
    raw_step = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    step = max(step, 1)
    start, stop = math.floor(low / step), math.ceil(high / step)
    return [i * step for i in range(start, stop + 1)]


def _fmt(value: float, currency: str | None) -> str:
    return money(int(value), currency) if currency else number(value)


def _axis_fmt(value: float, currency: str | None) -> str:
    shown = value / 100 if currency else value
    if abs(shown) < 1000:
        return number(int(shown)) if float(shown).is_integer() else number(round(shown, 1))
    return format_compact_decimal(shown, locale=i18n.babel_locale(i18n.get_locale()), fraction_digits=1)


def day_label(day: str, style: str = "d MMM") -> str:
    """'2026-11-03' -> '3 Nov'; any other label is returned unchanged."""
    try:
        return format_date(dt.date.fromisoformat(day), format=style, locale=i18n.babel_locale(i18n.get_locale()))
    except ValueError:
        return day


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "chart"


def describe(labels: Sequence[str], values: Sequence[float], *, what: str, currency: str | None = None) -> str:
    """A one-sentence summary: the period, the total and the busiest day."""
    if not labels:
        return i18n.gettext("No %(what)s to show.", what=what)
    first, last = day_label(labels[0], "d MMM yyyy"), day_label(labels[-1], "d MMM yyyy")
    total = sum(values)
    if not any(values):
        return i18n.gettext("%(what)s per day from %(first)s to %(last)s: none.", what=what.capitalize(),
                            first=first, last=last)
    best = max(range(len(values)), key=lambda i: values[i])
    return i18n.gettext("%(what)s per day from %(first)s to %(last)s: %(total)s in total, highest on %(day)s with "
                        "%(best)s.", what=what.capitalize(), first=first, last=last, total=_fmt(total, currency),
                        day=day_label(labels[best], "d MMM"), best=_fmt(values[best], currency))


def _x_ticks(n: int) -> list[int]:
    if n <= X_LABELS:
        return list(range(n))
    step = (n - 1) / (X_LABELS - 1)
    return sorted({round(i * step) for i in range(X_LABELS)})


def _frame(box: Box, ticks: list[float], y, labels: Sequence[str], x_of, currency: str | None) -> list[str]:
    parts = []
    for tick in ticks:
        ty = y(tick)
        parts.append(f'<line class="chart-grid" x1="{LEFT}" x2="{box.width - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}" '
                     f'stroke="{"#938a80" if tick == 0 else "#e7e0d6"}" stroke-width="1"/>')
        parts.append(f'<text class="chart-axis" x="{LEFT - 8}" y="{ty + 4:.1f}" text-anchor="end" font-size="13" '
                     f'fill="#55504a">{escape(_axis_fmt(tick, currency))}</text>')
    for i in _x_ticks(len(labels)):
        anchor = "start" if i == 0 and len(labels) > 1 else "end" if i == len(labels) - 1 and len(labels) > 1 else "middle"
        parts.append(f'<text class="chart-axis" x="{x_of(i):.1f}" y="{box.height - 8}" text-anchor="{anchor}" '
                     f'font-size="13" fill="#55504a">{escape(day_label(labels[i]))}</text>')
    return parts


def _svg(box: Box, chart_id: str, title: str, description: str, body: list[str], *, narrow: bool = False) -> str:
    chart_id = escape(chart_id)
    kind = " chart-svg-wide" if box.width > NARROW[0] else " chart-svg-narrow" if narrow else ""
    return (f'<svg class="chart-svg{kind}" viewBox="0 0 {box.width} {box.height}" role="img" '
            f'aria-labelledby="{chart_id}-title {chart_id}-desc" preserveAspectRatio="xMidYMid meet" '
            f'xmlns="http://www.w3.org/2000/svg">'
            f'<title id="{chart_id}-title">{escape(title)}</title>'
            f'<desc id="{chart_id}-desc">{escape(description)}</desc>' + "".join(body) + "</svg>")


def _table(title: str, labels: Sequence[str], columns: list[tuple[str, Sequence[float]]], currency: str | None) -> str:
    head = "".join(f'<th scope="col" class="num">{escape(name)}</th>' for name, _ in columns)
    rows = []
    for i, label in enumerate(labels):
        cells = "".join(f'<td class="num">{escape(_fmt(values[i], currency))}</td>' for _, values in columns)
        rows.append(f'<tr><th scope="row">{escape(day_label(label, "EEE d MMM"))}</th>{cells}</tr>')
    totals = "".join(f'<td class="num">{escape(_fmt(sum(values), currency))}</td>' for _, values in columns)
    show, day, total = i18n.gettext("Show the numbers"), i18n.gettext("Day"), i18n.gettext("Total")
    return (f'<details class="chart-data"><summary>{escape(show)}</summary><div class="table-wrap">'
            f'<table class="table chart-table"><caption class="visually-hidden">{escape(title)}</caption>'
            f'<thead><tr><th scope="col">{escape(day)}</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
            f'<tfoot><tr><th scope="row">{escape(total)}</th>{totals}</tr></tfoot></table></div></details>')


def _figure(chart_id: str, title: str, headline: str, svg: str, table: str, legend: str = "") -> Markup:
    # Safe: every text that goes into the pieces (titles, labels, names, formatted numbers, the
    # id) went through escape(); the rest is markup written here.
    return Markup(f'<figure class="chart" id="{escape(chart_id)}"><figcaption class="chart-caption">'  # noqa: S704  # nosec B704
                  f'<span class="chart-title">{escape(title)}</span> <strong class="chart-total">{escape(headline)}</strong>'
                  f'</figcaption>{legend}{svg}{table}</figure>')


def _drawings(draw, chart_id: str, title: str, description: str, wide: bool) -> str:
    """The chart drawn for half a page; a wide chart is drawn for a whole page too, and CSS shows
    the drawing that fits (the narrow one on phones, where a flat, wide one would be unreadable).
    The hidden one is display:none, so screen readers meet one image only."""
    if not wide:
        return _svg(Box(*NARROW), chart_id, title, description, draw(Box(*NARROW)))
    return (_svg(Box(*WIDE), chart_id, title, description, draw(Box(*WIDE)))
            + _svg(Box(*NARROW), f"{chart_id}-narrow", title, description, draw(Box(*NARROW)), narrow=True))


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, what: str | None = None,
              currency: str | None = None, chart_id: str | None = None, description: str | None = None,
              wide: bool = False) -> Markup:
    """One bar per label (a day 'YYYY-MM-DD'). `currency`: values are minor units of it. `wide`:
    drawn for the whole width of the page (else for half of it)."""
    chart_id = chart_id or f"chart-{_slug(title)}"
    what = what or title.lower()
    description = description or describe(labels, values, what=what, currency=currency)
    ticks = nice_ticks(min(values, default=0), max(values, default=0))
    low, high = ticks[0], ticks[-1]

    def draw(box: Box) -> list[str]:
        def y(v: float) -> float:
            return TOP + box.plot_h - (v - low) / (high - low) * box.plot_h

        slot = box.plot_w / max(len(labels), 1)
        bar_w = max(slot * 0.72, 1.0)

        def x_of(i: int) -> float:
            return LEFT + slot * i + slot / 2

        body = _frame(box, ticks, y, labels, x_of, currency)
        for i, (label, value) in enumerate(zip(labels, values, strict=True)):
            if not value:
                continue
            top, base = y(max(value, 0)), y(min(value, 0))
            body.append(f'<rect class="chart-bar{" chart-bar-negative" if value < 0 else ""}" '
                        f'x="{x_of(i) - bar_w / 2:.1f}" y="{top:.1f}" width="{bar_w:.1f}" '
                        f'height="{max(base - top, 1):.1f}" rx="{min(3, bar_w / 3):.1f}" '
                        f'fill="{COLOURS[0] if value >= 0 else "#b42318"}">'
                        f'<title>{escape(day_label(label))}: {escape(_fmt(value, currency))}</title></rect>')
        return body

    svg = _drawings(draw, chart_id, title, description, wide)
    return _figure(chart_id, title, _fmt(sum(values), currency), svg,
                   _table(title, labels, [(what.capitalize(), values)], currency))


def line_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], *, title: str,
               currency: str | None = None, chart_id: str | None = None, description: str | None = None,
               wide: bool = False) -> Markup:
    """One line per (name, values) series over the same labels, with a legend when there are several."""
    chart_id = chart_id or f"chart-{_slug(title)}"
    if description is None:
        description = " ".join(describe(labels, values, what=name.lower(), currency=currency) for name, values in series)
    everything = [v for _, values in series for v in values]
    ticks = nice_ticks(min(everything, default=0), max(everything, default=0))
    low, high = ticks[0], ticks[-1]
    n = len(labels)

    def draw(box: Box) -> list[str]:
        def y(v: float) -> float:
            return TOP + box.plot_h - (v - low) / (high - low) * box.plot_h

        def x_of(i: int) -> float:
            return LEFT + (box.plot_w * i / (n - 1) if n > 1 else box.plot_w / 2)

        body = _frame(box, ticks, y, labels, x_of, currency)
        for s, (name, values) in enumerate(series):
            colour = COLOURS[s % len(COLOURS)]
            points = " ".join(f"{x_of(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
            dash = ' stroke-dasharray="6 4"' if s == 2 else ""  # not by colour alone
            body.append(f'<polyline class="chart-line chart-s{s}" points="{points}" fill="none" stroke="{colour}" '
                        f'stroke-width="2.5" stroke-linejoin="round" stroke-linecap="round"{dash}/>')
            if n <= 45:
                for i, v in enumerate(values):
                    body.append(f'<circle class="chart-dot chart-s{s}" cx="{x_of(i):.1f}" cy="{y(v):.1f}" r="3" '
                                f'fill="{colour}"><title>{escape(name)}, {escape(day_label(labels[i]))}: '
                                f'{escape(_fmt(v, currency))}</title></circle>')
        return body

    legend = "" if len(series) < 2 else ('<ul class="chart-legend">' + "".join(
        f'<li><span class="chart-swatch chart-swatch-{s}" aria-hidden="true"></span>{escape(name)} '
        f'<strong>{escape(_fmt(sum(values), currency))}</strong></li>' for s, (name, values) in enumerate(series))
        + "</ul>")
    svg = _drawings(draw, chart_id, title, description, wide)
    headline = "" if len(series) > 1 else _fmt(sum(series[0][1]), currency) if series else ""
    return _figure(chart_id, title, headline, svg, _table(title, labels, list(series), currency), legend)
