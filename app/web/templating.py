"""The one Jinja environment (pages, fragments and emails) and its filters."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.settings import PROJECT_ROOT, get_settings

TEMPLATES_DIR = PROJECT_ROOT / "templates"
LOCALE = "en_SE"
# Parsed once: Babel otherwise looks the locale up on every number and date it formats.
_MONEY_LOCALE = Locale.parse(LOCALE)
_EN = Locale.parse("en")


def money(minor_units: int | None, currency: str | None = None) -> str:
    if minor_units is None:
        return ""
    return format_currency(minor_units / 100, currency or get_settings().currency, locale=_MONEY_LOCALE)


def number(value: int | float | None) -> str:
    return "" if value is None else format_decimal(value, locale=_EN)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def date(value: dt.datetime | dt.date | None, style: str = "medium") -> str:
    if value is None:
        return ""
    return format_date(value, format=style, locale=_EN)


def timeago(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if value is None:
        return ""
    now = now or dt.datetime.now(dt.UTC)
    seconds = int((now - _aware(value)).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            text = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {text}" if future else f"{text} ago"
    return "in a moment" if future else "just now"


def iso(value: dt.datetime | None) -> str:
    return "" if value is None else _aware(value).isoformat()


def pluralize(count: int, singular: str, plural: str | None = None) -> str:
    return f"{number(count)} {singular if count == 1 else (plural or singular + 's')}"


@lru_cache(maxsize=1)
def jinja_env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(enabled_extensions=("html", "xml"), default_for_string=True, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        # Production never edits templates in place: skip the file-time check on every render.
        auto_reload=not get_settings().is_production,
    )
    env.filters.update(money=money, number=number, date=date, timeago=timeago, iso=iso)
    env.globals.update(pluralize=pluralize, settings=get_settings())
    return env


def render_text(name: str, context: dict[str, Any]) -> str:
    return jinja_env().get_template(name).render(**context)
