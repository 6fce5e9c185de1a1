"""The SVG chart helpers: accessible markup, the numbers in a table, round axis ticks."""

from __future__ import annotations

import re

from app.insight import charts
from app.web.templating import money

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]


def test_nice_ticks():
    assert charts.nice_ticks(0, 0) == [0, 1]
    assert charts.nice_ticks(0, 7) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(0, 100) == [0, 25, 50, 75, 100]
    assert charts.nice_ticks(0, 1234) == [0, 500, 1000, 1500]
    assert charts.nice_ticks(-30, 90) == [-50, 0, 50, 100]
    assert charts.nice_ticks(0, 3) == [0, 1, 2, 3]  # never a fraction of a count


def test_bar_chart_is_accessible_and_carries_its_numbers():
    html = str(charts.bar_chart(DAYS, [3, 0, 5, 1], title="Votes", chart_id="chart-votes"))
    svg = re.search(r"<svg[^>]*>", html).group(0)
    assert 'role="img"' in svg and 'aria-labelledby="chart-votes-title chart-votes-desc"' in svg
    assert '<title id="chart-votes-title">Votes</title>' in html
    desc = re.search(r'<desc id="chart-votes-desc">([^<]*)</desc>', html).group(1)
    assert desc == "Votes per day from 1 Nov 2026 to 4 Nov 2026: 9 in total, highest on 3 Nov with 5."
    assert html.count("<rect") == 3  # no bar for a zero
    assert "<details" in html and "<summary>Show the numbers</summary>" in html
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th><td class="num">([^<]*)</td></tr>', html)
    assert rows == [("Sun 1 Nov", "3"), ("Mon 2 Nov", "0"), ("Tue 3 Nov", "5"), ("Wed 4 Nov", "1"), ("Total", "9")]


def test_money_chart_with_a_negative_day_and_escaped_text():
    html = str(charts.bar_chart(DAYS, [10_000, -2_500, 0, 0], title="Revenue <b>", currency="SEK"))
    assert "<b>" not in html and "Revenue &lt;b&gt;" in html
    assert money(-2_500, "SEK") in html and money(7_500, "SEK") in html
    assert "chart-bar-negative" in html
    assert ">-50</text>" in html and ">100</text>" in html  # axis ticks in major units, below zero too


def test_line_chart_has_one_line_per_series_and_a_legend():
    html = str(charts.line_chart(DAYS, [("Views", [10, 20, 30, 40]), ("Votes", [1, 2, 3, 4])],
                                 title="Views and votes", chart_id="chart-x"))
    assert html.count("<polyline") == 2 and html.count("<circle") == 8
    assert '<ul class="chart-legend">' in html and "Views" in html and "Votes" in html
    assert "<th scope=\"col\" class=\"num\">Views</th><th scope=\"col\" class=\"num\">Votes</th>" in html
    assert '<tr><th scope="row">Wed 4 Nov</th><td class="num">40</td><td class="num">4</td></tr>' in html
    desc = re.search(r'<desc id="chart-x-desc">([^<]*)</desc>', html).group(1)
    assert "Views per day" in desc and "Votes per day" in desc


def test_an_empty_period_says_so():
    html = str(charts.bar_chart(DAYS, [0, 0, 0, 0], title="Pledges"))
    assert "Pledges per day from 1 Nov 2026 to 4 Nov 2026: none." in html
    assert "<rect" not in html


def test_a_wide_chart_also_carries_a_phone_sized_drawing_with_its_own_ids():
    html = str(charts.line_chart(DAYS, [("Views", [1, 2, 3, 4])], title="Views", chart_id="chart-w", wide=True))
    assert 'viewBox="0 0 1080 300"' in html and 'viewBox="0 0 640 240"' in html
    assert 'class="chart-svg chart-svg-narrow"' in html
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids)) and "chart-w-narrow-title" in ids
    assert html.count("<table") == 1
