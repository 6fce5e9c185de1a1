"""English and Swedish (issue 8): the picker, the member's stored language, emails in the
recipient's language, per-locale numbers and dates, and complete catalogs."""

from __future__ import annotations

import datetime as dt
import re

from app import i18n
from app.accounts.tables import Member
from app.mail.tables import EmailMessage
from app.web.templating import date, money, number, timeago
from tests.factories import csrf_from, login, make_member
from tests.i18n import catalog_check


def test_every_visible_template_text_is_marked_for_translation():
    leftovers = [f"{path.relative_to(catalog_check.PROJECT_ROOT)}:{line}: {text}"
                 for path in catalog_check.template_files([catalog_check.TEMPLATES])
                 for line, text in catalog_check.template_leftovers(path)]
    assert leftovers == [], "Unmarked text (wrap it in {% trans %} or _()):\n" + "\n".join(leftovers)


def test_no_message_hides_in_an_f_string():
    hidden = [f"{path.relative_to(catalog_check.PROJECT_ROOT)}:{line}"
              for path in catalog_check.python_files([catalog_check.APP])
              for line, _text in catalog_check.hidden_in_fstrings(path)]
    assert hidden == []


def test_every_marked_message_has_a_swedish_translation():
    missing = catalog_check.missing_translations([catalog_check.TEMPLATES, catalog_check.APP])
    assert not missing, ("Add these to a file in app/locale/sv/LC_MESSAGES/:\n"
                         + catalog_check.po_stub(missing))


def test_translations_keep_the_placeholders_of_their_message():
    placeholder = re.compile(r"%\((\w+)\)[sd]")
    wrong = []
    for message in i18n.load_catalog("sv"):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        wanted = set(placeholder.findall(ids[-1]))
        for string in strings:
            if string and set(placeholder.findall(string)) - wanted - {"num"}:
                wrong.append((ids[0], string))
            if string and set(placeholder.findall(ids[0])) - set(placeholder.findall(string)) - {"num"}:
                wrong.append((ids[0], string))
    assert wrong == []


def test_numbers_dates_and_times_follow_the_language():
    day = dt.date(2026, 12, 1)
    assert (number(1234567), date(day, "long")) == ("1,234,567", "December 1, 2026")
    with i18n.use_locale("sv"):
        assert number(1234567) == "1\xa0234\xa0567"
        assert date(day, "long") == "1 december 2026"
        assert money(123450) == "1\xa0234,50\xa0kr"
        now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
        assert timeago(now - dt.timedelta(hours=3), now) == "för 3 timmar sedan"
        assert timeago(now - dt.timedelta(days=1), now) == "för 1 dag sedan"
    assert timeago(dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)) == "3 hours ago"


def test_accept_language_picks_the_best_language_we_have():
    assert i18n.from_accept_language("de-DE,sv;q=0.8,en;q=0.5") == "sv"
    assert i18n.from_accept_language("en-GB,en;q=0.9,sv;q=0.8") == "en"
    assert i18n.from_accept_language("fr, de") is None
    assert i18n.from_accept_language("sv;q=abc, en;q=0.1") == "en"


async def test_browser_language_then_picker_then_stored_choice(client):
    page = await client.get("/", headers={"Accept-Language": "sv-SE,sv;q=0.9"})
    assert '<html lang="sv">' in page.text and ">Idéer</a>" in page.text
    page = await client.get("/")
    assert '<html lang="en">' in page.text and ">Ideas</a>" in page.text

    chosen = await client.post("/language", data={"lang": "sv", "next": "/shop",
                                                   "_csrf_token": csrf_from(page.text)})
    assert chosen.status_code == 303 and chosen.headers["location"] == "/shop"
    shop = await client.get("/shop")
    assert '<html lang="sv">' in shop.text and "Webbplatsen är nu på svenska." in shop.text
    # An unknown language changes nothing and says so; a foreign `next` never redirects off-site.
    refused = await client.post("/language", data={"lang": "xx", "next": "https://evil.example/",
                                                   "_csrf_token": csrf_from(shop.text)})
    assert refused.headers["location"] == "/"
    assert "Det språket finns inte." in (await client.get("/")).text


async def test_a_members_language_is_stored_and_used_for_their_emails(client):
    fan = await make_member("Svea Fan")
    await login(client, fan.email)
    page = await client.get("/account")
    await client.post("/language", data={"lang": "sv", "next": "/account", "_csrf_token": csrf_from(page.text)})
    assert (await Member.select(Member.locale).where(Member.id == fan.id).first())["locale"] == "sv"
    # The choice follows the member to a new session (another device): no cookie needed.
    client.cookies.clear()
    await login(client, fan.email)
    assert ">Mina ordrar</a>" in (await client.get("/")).text
    # An email to them is in Swedish even when an English-speaking request causes it.
    client.cookies.clear()
    page = await client.get("/password-reset", headers={"Accept-Language": "en"})
    await client.post("/password-reset", data={"email": fan.email, "_csrf_token": csrf_from(page.text)},
                      headers={"Accept-Language": "en"})
    email = await EmailMessage.select().where(EmailMessage.recipient == fan.email.lower()).order_by(
        EmailMessage.id, ascending=False).first()
    assert email is not None
    assert email["subject"] != "" and "Återställ" in email["subject"] + email["text_body"]
    assert "Reset your password" not in email["text_body"]


def test_one_english_text_has_one_swedish_translation_across_the_catalog_files():
    """The catalogs are merged, so two files translating the same text differently would make one
    of them win by file order. A word that means different things gets a context (pgettext)."""
    from babel.messages.pofile import read_po

    seen: dict[tuple, dict[str, str]] = {}
    for path in i18n.catalog_files("sv"):
        with path.open("rb") as handle:
            for message in read_po(handle, locale="sv"):
                if message.id and message.string:
                    key = (message.id if isinstance(message.id, str) else tuple(message.id), message.context)
                    seen.setdefault(key, {})[path.name] = repr(message.string)
    conflicts = {key: files for key, files in seen.items() if len(set(files.values())) > 1}
    assert conflicts == {}


def test_a_word_with_two_meanings_is_told_apart_by_its_context():
    with i18n.use_locale("sv"):
        assert i18n.pgettext("experiment", "Shipped") == "Infört"
        assert i18n.pgettext("experiment", "Shipped") != i18n.gettext("Shipped")


def test_no_template_rebinds_the_translation_function():
    """`{% set _ = ... %}` or `{% for _, x in ... %}` would replace `_` for the rest of the
    template, and every later `_("...")` would fail with "'NoneType' object is not callable"."""
    rebinding = re.compile(r"\{%-?\s*(?:set\s+(?:[\w, ]*,\s*)?_\s*(?:,|=)|for\s+(?:[\w, ]*,\s*)?_\s*(?:,|\bin\b))")
    found = [f"{path.relative_to(catalog_check.PROJECT_ROOT)}"
             for path in catalog_check.template_files([catalog_check.TEMPLATES])
             if rebinding.search(path.read_text(encoding="utf-8"))]
    assert found == []
    assert rebinding.search("{% set _ = base.update({}) %}") and rebinding.search("{% for key, _ in x %}")
