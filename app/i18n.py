"""Languages: English (the source text) and Swedish, from gettext catalogs read with Babel.

- `gettext` / `ngettext` (also `_` in templates) translate into the request's language, held in
  a context variable: SessionMiddleware sets it per request (member's stored language, else the
  `lang` cookie from the picker, else the browser's Accept-Language), `use_locale` sets it for an
  email rendered for its recipient.
- The Swedish catalog is every `app/locale/sv/LC_MESSAGES/*.po` file merged (one file per area of
  the site), compiled in memory at first use: no build step, no `.mo` files in the repository.
- `N_` marks a module-level string for extraction; translate it where it is shown.
- `tests/i18n/` fails when a template or marked string has no Swedish translation.
"""

from __future__ import annotations

import contextlib
import gettext as _gettext
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache, lru_cache
from io import BytesIO
from typing import Any

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from app.settings import PROJECT_ROOT

LOCALE_DIR = PROJECT_ROOT / "app" / "locale"
DEFAULT = "en"
LANGUAGES = {"en": "English", "sv": "Svenska"}  # each in its own language, for the picker
LANG_COOKIE = "lang"

_current: ContextVar[str] = ContextVar("crowdmade_locale", default=DEFAULT)


def normalize(code: str | None) -> str | None:
    """'sv-SE' / 'sv_se' / 'SV' -> 'sv'; None for a language we do not have."""
    if not code:
        return None
    base = code.strip().replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def from_accept_language(header: str | None) -> str | None:
    """The best of our languages in an Accept-Language header (q-values honoured)."""
    best: tuple[float, str] | None = None
    for part in (header or "").split(",")[:20]:
        piece, _, params = part.partition(";")
        code = normalize(piece)
        if code is None:
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if best is None or quality > best[0]:
            best = (quality, code)
    return best[1] if best else None


def get_locale() -> str:
    return _current.get()


def set_locale(code: str | None) -> None:
    _current.set(normalize(code) or DEFAULT)


@contextlib.contextmanager
def use_locale(code: str | None) -> Iterator[str]:
    token = _current.set(normalize(code) or DEFAULT)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def catalog_files(locale: str) -> list:
    return sorted((LOCALE_DIR / locale / "LC_MESSAGES").glob("*.po"))


def load_catalog(locale: str) -> Catalog:
    """Every .po file of `locale` merged into one catalog (a later file never blanks an earlier
    translation of the same message)."""
    merged = Catalog(locale=locale)
    for path in catalog_files(locale):
        with path.open("rb") as handle:
            part = read_po(handle, locale=locale)
        for message in part:
            if not message.id:
                continue
            existing = merged.get(message.id, message.context)
            if existing is not None and _translated(existing.string) and not _translated(message.string):
                continue
            merged[message.id] = message
    return merged


def _translated(string: Any) -> bool:
    if isinstance(string, tuple | list):
        return all(bool(s) for s in string)
    return bool(string)


@cache
def translations(locale: str) -> _gettext.NullTranslations:
    if locale == DEFAULT:
        return _gettext.NullTranslations()
    buffer = BytesIO()
    write_mo(buffer, load_catalog(locale), use_fuzzy=False)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def gettext(message: str, /, **variables: Any) -> str:
    text = translations(_current.get()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, count: int, /, **variables: Any) -> str:
    text = translations(_current.get()).ngettext(singular, plural, count)
    variables.setdefault("num", count)
    return text % variables


def raw_gettext(message: str) -> str:
    """For Jinja's newstyle gettext, which formats the variables itself (and escapes them)."""
    return translations(_current.get()).gettext(message)


def raw_ngettext(singular: str, plural: str, count: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, count)


def pgettext(context: str, message: str, /, **variables: Any) -> str:
    """A message whose English word means different things in different places ("Shipped": an
    order sent vs an experiment's variant rolled out): the catalogs carry a msgctxt."""
    text = translations(_current.get()).pgettext(context, message)
    return text % variables if variables else text


def raw_pgettext(context: str, message: str) -> str:
    return translations(_current.get()).pgettext(context, message)


def raw_npgettext(context: str, singular: str, plural: str, count: int) -> str:
    return translations(_current.get()).npgettext(context, singular, plural, count)


def N_(message: str) -> str:  # noqa: N802 -- the gettext convention
    return message


_ = gettext


@lru_cache(maxsize=8)
def babel_locale(code: str) -> Locale:
    """Babel's formatting locale: money always in the Swedish style the shop uses, numbers and
    dates in the page's language."""
    return Locale.parse({"en": "en", "sv": "sv_SE"}.get(code, "en"))
