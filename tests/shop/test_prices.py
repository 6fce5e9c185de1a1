"""Honest prices: the price history is kept on every edit, and a reduction shows the lowest price
of the 30 days before it (app/shop/prices.py), checked against a brute-force reading of the
history and on the product page."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from app.db import utcnow
from app.shop import catalog, prices
from app.shop.tables import PriceChange
from tests.factories import csrf_from, login, make_member
from tests.shop.helpers import SAFETY

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _brute(history: list[tuple[dt.datetime, int]], now: dt.datetime) -> prices.Reduction | None:
    """The rule read literally, hour by hour: the price in effect at each hour of the 30 days
    before the last change; a reduction if the last change went below all of them (and is at
    most 30 days old)."""
    changes = sorted((at, p) for at, p in history if at <= now)
    if len(changes) < 2:
        return None
    since, price = changes[-1]
    if now - since > dt.timedelta(days=prices.REDUCTION_DAYS):
        return None

    def price_at(moment: dt.datetime) -> int | None:
        held = [p for at, p in changes[:-1] if at <= moment]
        return held[-1] if held else None

    seen = []
    moment = since - dt.timedelta(days=prices.PRIOR_DAYS)
    while moment < since:
        if (held := price_at(moment)) is not None:
            seen.append(held)
        moment += dt.timedelta(hours=1)
    if not seen or price >= min(seen):
        return None
    return prices.Reduction(price, min(seen), since)


changes = st.lists(st.tuples(st.integers(min_value=0, max_value=24 * 120), st.integers(min_value=100, max_value=900)),
                   min_size=0, max_size=8, unique_by=lambda change: change[0])


@settings(max_examples=300, deadline=None)
@given(changes=changes, now_hours=st.integers(min_value=0, max_value=24 * 150))
def test_the_reference_price_is_the_lowest_of_the_30_days_before(changes, now_hours):
    history = [(T0 + dt.timedelta(hours=h), price * 100) for h, price in changes]
    now = T0 + dt.timedelta(hours=now_hours)
    assert prices.reduction(history, now) == _brute(history, now)


def test_the_usual_cases():
    day = dt.timedelta(days=1)
    now = T0 + 60 * day
    # 499 for long, 449 twenty days ago, 399 now: the reference is 449, not 499.
    sale = [(T0, 49_900), (now - 20 * day, 44_900), (now - day, 39_900)]
    assert prices.reduction(sale, now) == prices.Reduction(39_900, 44_900, now - day)
    assert prices.reduction(sale, now).percent == 11
    # Raised to 499 a week ago and "reduced" to 449 today: 399 held within the 30 days, so no reduction.
    fake = [(T0, 39_900), (now - 7 * day, 49_900), (now, 44_900)]
    assert prices.reduction(fake, now) is None
    # A reduction is announced for 30 days, then the price is just the price.
    assert prices.reduction(sale, now + 29 * day) is not None
    assert prices.reduction(sale, now + 31 * day) is None
    assert prices.reduction([(T0, 100)], now) is None


async def test_staff_edits_keep_the_history_and_the_page_shows_the_30_day_lowest_price(client):
    staff = await make_member("Price Staff", staff=True)
    made = await catalog.create_product(staff, {"name": "Wool scarf", "price": "499", "status": "active", **SAFETY,
                                                "variants": [{"name": "Grey", "stock": 4}, {"name": "Blue", "stock": 4}]})
    grey, blue = (v["id"] for v in made["variants"])
    assert await PriceChange.count() == 2  # the first price of each variant
    # Forty days of history: 499 kr, then 449 kr for the last twenty days.
    await PriceChange.update({PriceChange.changed_at: utcnow() - dt.timedelta(days=40)}, force=True)
    await PriceChange.insert(*[PriceChange(variant=v, price=44_900, changed_at=utcnow() - dt.timedelta(days=20))
                               for v in (grey, blue)])
    await catalog.update_product(staff, made["id"], {
        "name": "Wool scarf", "price": "399", "status": "active", **SAFETY,
        "variants": [{"id": grey, "name": "Grey"}, {"id": blue, "name": "Blue"}]})
    assert [r["price"] for r in await PriceChange.select(PriceChange.price).where(PriceChange.variant == grey).order_by(
        PriceChange.changed_at)] == [49_900, 44_900, 39_900]

    page = await client.get(f"/shop/{made['slug']}")
    assert page.status_code == 200
    assert "−11%" in page.text and "Lowest price in the 30 days before: 449,00" in page.text
    assert "499,00" not in page.text  # the highest earlier price is never the reference

    # An edit that does not change the price writes no history.
    await catalog.update_product(staff, made["id"], {
        "name": "Wool scarf, soft", "price": "399", "status": "active", **SAFETY,
        "variants": [{"id": grey, "name": "Grey"}, {"id": blue, "name": "Blue"}]})
    assert await PriceChange.count() == 6

    # One variant's own price goes up again: only the other is still announced as reduced.
    await login(client, staff.email)
    edit = await client.get(f"/staff/products/{made['id']}/edit")
    saved = await client.post(f"/staff/products/{made['id']}/edit", data={
        "_csrf_token": csrf_from(edit.text), "name": "Wool scarf, soft", "price": "399", "ships_in_days": "2",
        "summary": "", "description": "Soft.", "details": "", "category": "",
        "variant_id_0": str(grey), "variant_name_0": "Grey", "variant_id_1": str(blue), "variant_name_1": "Blue",
        "variant_price_1": "499", **SAFETY})
    assert saved.status_code == 303
    page = await client.get(f"/shop/{made['slug']}")
    assert "Grey reduced on" in page.text and "Blue reduced on" not in page.text


async def test_a_drafts_prices_are_never_a_reference(client):
    staff = await make_member("Draft Staff", staff=True)
    made = await catalog.create_product(staff, {"name": "Draft lamp", "price": "999", "status": "draft", **SAFETY,
                                                "variants": [{"name": "White", "stock": 2}]})
    variant = made["variants"][0]["id"]
    await catalog.update_product(staff, made["id"], {"name": "Draft lamp", "price": "499", **SAFETY,
                                                     "variants": [{"id": variant, "name": "White"}]})
    await catalog.set_status(staff, made["id"], "active")
    assert [r["price"] for r in await PriceChange.select(PriceChange.price).where(PriceChange.variant == variant)] == [49_900]
    page = await client.get(f"/shop/{made['slug']}")
    assert "Lowest price in the 30 days before" not in page.text and "999,00" not in page.text
