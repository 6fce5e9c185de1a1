"""Carriers staff can ship with, and the member-facing tracking link for each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from app.i18n import N_, gettext


@dataclass(frozen=True)
class Carrier:
    code: str
    name: str
    url: str | None  # "{}" is replaced by the url-encoded tracking number; None: no public tracking page


CARRIERS: dict[str, Carrier] = {c.code: c for c in (
    Carrier("postnord", "PostNord", "https://tracking.postnord.com/se/?id={}"),
    Carrier("dhl", "DHL", "https://www.dhl.com/se-en/home/tracking/tracking-parcel.html?submit=1&tracking-id={}"),
    Carrier("ups", "UPS", "https://www.ups.com/track?tracknum={}"),
    Carrier("bring", "Bring", "https://tracking.bring.com/tracking/{}"),
    Carrier("dbschenker", "DB Schenker", "https://www.dbschenker.com/app/tracking-public/?refNumber={}"),
    Carrier("budbee", "Budbee", "https://tracking.budbee.com/{}"),
    Carrier("instabox", "Instabox", "https://track.instabox.io/{}"),
    Carrier("other", N_("Other"), None),  # the one name that is translated where shown
)}
TRACKING_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,79}$")


def find_carrier(value: str | None) -> Carrier | None:
    """By code ("postnord") or by name ("PostNord"), case-insensitively."""
    key = (value or "").strip().lower()
    if not key:
        return None
    if key in CARRIERS:
        return CARRIERS[key]
    return next((c for c in CARRIERS.values() if c.name.lower() == key), None)


def carrier_name(value: str | None) -> str:
    carrier = find_carrier(value)
    return carrier.name if carrier else (value or "")


def display_name(value: str | None) -> str:
    """The carrier's name for a page or an email, in the current language ("Other" / "Annan")."""
    carrier = find_carrier(value)
    return gettext(carrier.name) if carrier else (value or "")


def tracking_url(carrier: str | None, tracking_number: str | None) -> str | None:
    """An https link to the carrier's tracking page, or None (no carrier, no number, "Other")."""
    found = find_carrier(carrier)
    number = (tracking_number or "").strip()
    if found is None or found.url is None or not number:
        return None
    return found.url.format(quote(number, safe=""))


def clean_tracking_number(value: str | None) -> str | None:
    """The number as staff typed it, trimmed; None when it is not a plausible tracking number."""
    number = " ".join((value or "").split())
    return number if TRACKING_PATTERN.match(number) else None
