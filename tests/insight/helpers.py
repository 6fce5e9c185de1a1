"""Rows placed on chosen days, and the numbers read back from a chart's table."""

from __future__ import annotations

import datetime as dt
import html
import re

from app.db import raw, utcnow
from app.insight.charts import day_label


def days_ago(n: int, hour: int = 12) -> dt.datetime:
    """Noon UTC `n` days ago (well inside that day whatever the time of the test run)."""
    day = utcnow().date() - dt.timedelta(days=n)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def day_of(n: int) -> str:
    return day_label((utcnow().date() - dt.timedelta(days=n)).isoformat(), "EEE d MMM")


async def move_to(table: str, row_id: int, when: dt.datetime, column: str = "created_at") -> None:
    await raw(f"UPDATE {table} SET {column} = {{}} WHERE id = {{}}", when, row_id)


def chart_numbers(page: str, chart_id: str) -> dict[str, str]:
    """{day label: shown value} from the table of the chart `chart_id` ("Total" for the footer)."""
    match = re.search(rf'<figure class="chart" id="{chart_id}">(.*?)</figure>', page, re.S)
    assert match, f"no chart {chart_id} on the page"
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th><td class="num">([^<]*)</td>', match.group(1))
    return {html.unescape(day): html.unescape(value) for day, value in rows}
