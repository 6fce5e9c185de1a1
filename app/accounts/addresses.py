"""A member's delivery addresses: the countries we ship to, the fields and their checks, and the
saved address book that the shop's checkout fills and pre-orders reuse."""

from __future__ import annotations

import re
from typing import Any

from app.accounts.tables import Address
from app.errors import FormError
from app.i18n import N_, gettext, ngettext

ADDRESS_FIELDS: dict[str, tuple[str, int, bool]] = {  # field -> (label, max length, required)
    "name": (N_("Full name"), 100, True),
    "line1": (N_("Street address"), 120, True),
    "line2": (N_("Apartment, suite, c/o"), 120, False),
    "postal_code": (N_("Postal code"), 20, True),
    "city": (N_("City"), 80, True),
    "country": (N_("Country"), 2, True),
    "phone": (N_("Phone"), 30, False),
}
ADDRESS_REQUIRED = {  # the message for a required field left empty
    "name": N_("Enter your full name."),
    "line1": N_("Enter your street address."),
    "postal_code": N_("Enter your postal code."),
    "city": N_("Enter your city."),
    "country": N_("Enter your country."),
}
COUNTRIES = {  # English names (stored data and emails translate them where shown: country_names())
    "SE": N_("Sweden"), "NO": N_("Norway"), "DK": N_("Denmark"), "FI": N_("Finland"), "IS": N_("Iceland"),
    "DE": N_("Germany"), "NL": N_("Netherlands"), "BE": N_("Belgium"), "FR": N_("France"), "ES": N_("Spain"),
    "IT": N_("Italy"), "AT": N_("Austria"), "PL": N_("Poland"), "IE": N_("Ireland"), "GB": N_("United Kingdom"),
    "EE": N_("Estonia"), "LV": N_("Latvia"), "LT": N_("Lithuania"),
}


def country_names() -> dict[str, str]:
    """The countries we ship to, named in the page's language."""
    return {code: gettext(name) for code, name in COUNTRIES.items()}


def clean_address(data: dict[str, Any]) -> dict[str, str]:
    """Trimmed address fields, or a FormError naming each bad field."""
    address, errors = {}, {}
    for name, (label, length, required) in ADDRESS_FIELDS.items():
        value = " ".join(str(data.get(name) or "").split())
        if name == "country":
            value = value.upper()
        if required and not value:
            errors[name] = gettext(ADDRESS_REQUIRED[name])
        elif len(value) > length:
            errors[name] = ngettext("%(label)s can be at most %(num)s character.",
                                    "%(label)s can be at most %(num)s characters.", length, label=gettext(label))
        address[name] = value
    if address["country"] and address["country"] not in COUNTRIES and "country" not in errors:
        errors["country"] = gettext("Choose a country we ship to.")
    if address["postal_code"] and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 -]{1,18}", address["postal_code"]):
        errors.setdefault("postal_code", gettext("Enter a valid postal code."))
    if address["phone"] and not re.fullmatch(r"\+?[0-9 ()-]{5,30}", address["phone"]):
        errors.setdefault("phone", gettext("Enter a phone number with digits only (and +, spaces or dashes)."))
    if errors:
        raise FormError(errors)
    return address


async def saved_addresses(member_id: int) -> list[dict[str, Any]]:
    return await Address.select().where(Address.member == member_id).order_by(
        Address.is_default, ascending=False).order_by(Address.id, ascending=False).limit(10)


async def address_suggestion(member_id: int) -> dict[str, str]:
    """The member's default saved address (from a checkout), to prefill the pre-order form."""
    row = await Address.select().where(Address.member == member_id).order_by(
        Address.is_default, ascending=False).order_by(Address.id, ascending=False).first()
    if row is None:
        return {}
    return {k: row[k] for k in ("name", "line1", "line2", "postal_code", "city", "country", "phone")}
