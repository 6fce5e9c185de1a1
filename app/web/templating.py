"""The one Jinja environment (pages, fragments and emails) and its filters."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app import i18n
from app.settings import PROJECT_ROOT, get_settings

TEMPLATES_DIR = PROJECT_ROOT / "templates"
LOCALE = "en_SE"
# Parsed once: Babel otherwise looks the locale up on every number and date it formats.
_MONEY_LOCALE = Locale.parse(LOCALE)


def money(minor_units: int | None, currency: str | None = None) -> str:
    if minor_units is None:
        return ""
    return format_currency(minor_units / 100, currency or get_settings().currency, locale=_MONEY_LOCALE)


def number(value: int | float | None) -> str:
    return "" if value is None else format_decimal(value, locale=i18n.babel_locale(i18n.get_locale()))


def decimal(value: float | None, digits: int = 1, sign: bool = False) -> str:
    """A number with `digits` decimals in the page's language ("12.5" / "12,5"); `sign` shows "+"."""
    if value is None:
        return ""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    text = format_decimal(round(value, digits), format=pattern, locale=i18n.babel_locale(i18n.get_locale()))
    return f"+{text}" if sign and value >= 0 else text


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def date(value: dt.datetime | dt.date | None, style: str = "medium") -> str:
    if value is None:
        return ""
    return format_date(value, format=style, locale=i18n.babel_locale(i18n.get_locale()))


def datetime_utc(value: dt.datetime | None, style: str = "d MMMM y HH:mm") -> str:
    """A moment with its time, in UTC and saying so ("7 December 2026 12:40 UTC")."""
    if value is None:
        return ""
    return format_datetime(_aware(value), format=style, tzinfo=dt.UTC,
                           locale=i18n.babel_locale(i18n.get_locale())) + " UTC"


def timeago(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if value is None:
        return ""
    now = now or dt.datetime.now(dt.UTC)
    seconds = int((now - _aware(value)).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    if seconds >= 86400:
        n = seconds // 86400
        return (i18n.ngettext("in %(num)s day", "in %(num)s days", n) if future
                else i18n.ngettext("%(num)s day ago", "%(num)s days ago", n))
    if seconds >= 3600:
        n = seconds // 3600
        return (i18n.ngettext("in %(num)s hour", "in %(num)s hours", n) if future
                else i18n.ngettext("%(num)s hour ago", "%(num)s hours ago", n))
    if seconds >= 60:
        n = seconds // 60
        return (i18n.ngettext("in %(num)s minute", "in %(num)s minutes", n) if future
                else i18n.ngettext("%(num)s minute ago", "%(num)s minutes ago", n))
    return i18n.gettext("in a moment") if future else i18n.gettext("just now")


def iso(value: dt.datetime | None) -> str:
    return "" if value is None else _aware(value).isoformat()


def pluralize(count: int, singular: str, plural: str | None = None) -> str:
    """`pluralize(n, "vote")` -> "3 votes" / "3 röster". The words must be in the catalogs as
    an ngettext pair "%(num)s vote" / "%(num)s votes" (tests/i18n checks every call)."""
    plural = plural or singular + "s"
    text = i18n.raw_ngettext(f"%(num)s {singular}", f"%(num)s {plural}", count)
    return text % {"num": number(count)}


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
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks: whitespace collapsed, as Babel extracts them
    env.install_gettext_callables(i18n.raw_gettext, i18n.raw_ngettext, newstyle=True,  # type: ignore[attr-defined]
                                  pgettext=i18n.raw_pgettext, npgettext=i18n.raw_npgettext)
    env.filters.update(money=money, number=number, decimal=decimal, date=date, datetime=datetime_utc, timeago=timeago, iso=iso)
    env.globals.update(pluralize=pluralize, settings=get_settings(), languages=i18n.LANGUAGES,
                       current_locale=i18n.get_locale)
    return env


def render_text(name: str, context: dict[str, Any]) -> str:
    return jinja_env().get_template(name).render(**context)
