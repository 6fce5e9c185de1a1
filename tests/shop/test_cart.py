"""The cart: limits by stock, visitor carts merged at login, the header badge, htmx fragments."""

from __future__ import annotations

import asyncio
import re

import pytest

from app.errors import FormError, NotFound
from app.shop import cart as carts
from app.shop.tables import Cart, CartLine
from tests.factories import csrf_from, login, make_member
from tests.shop.helpers import make_product


def _badge(html: str) -> int:
    match = re.search(r'id="cart-badge"[^>]*>.*?(?:<span class="cart-count"[^>]*>(\d+)</span>)?</a>', html, re.S)
    assert match, "no cart badge on the page"
    return int(match.group(1) or 0)


async def test_quantities_are_limited_by_stock_and_unavailable_products_refused():
    member = await make_member("Cart Limits")
    owner = carts.member_owner(member.id)
    product = await make_product("Wool beanie", price=24_900, variants={"Grey": 3, "Black": 0})
    grey, black = product["variants"]["Grey"], product["variants"]["Black"]
    assert await carts.add_to_cart(owner, grey, 2, member_id=member.id) == 2
    with pytest.raises(FormError) as error:
        await carts.add_to_cart(owner, grey, 2, member_id=member.id)
    assert error.value.errors["quantity"] == "Only 3 left. (you have 2 in your cart)"
    with pytest.raises(FormError) as error:
        await carts.add_to_cart(owner, black, 1, member_id=member.id)
    assert "Sold out" in error.value.errors["quantity"]
    hidden = await make_product("Hidden thing", variants={"One": 5}, status="archived")
    with pytest.raises(FormError) as error:
        await carts.add_to_cart(owner, hidden["variants"]["One"], 1, member_id=member.id)
    assert error.value.errors["variant_id"] == "This product is not available."
    for bad in ("", "abc", "-1", "0", "100"):
        with pytest.raises(FormError):
            await carts.add_to_cart(owner, grey, bad, member_id=member.id)
    summary = await carts.cart_summary(owner)
    assert summary["count"] == 2 and summary["subtotal"] == 49_800
    line_id = summary["lines"][0]["id"]
    with pytest.raises(FormError) as error:
        await carts.set_quantity(owner, line_id, 4)
    assert error.value.errors["quantity"] == "Only 3 left."
    await carts.set_quantity(owner, line_id, 3)
    assert await carts.cart_count(owner) == 3
    await carts.set_quantity(owner, line_id, 0)
    assert await carts.cart_count(owner) == 0 and await CartLine.count() == 0


async def test_a_member_cannot_touch_another_members_cart_line():
    alice, bob = await make_member("Alice Cart"), await make_member("Bob Cart")
    product = await make_product("Tote", variants={"One": 5})
    await carts.add_to_cart(carts.member_owner(alice.id), product["variants"]["One"], 1, member_id=alice.id)
    line_id = (await carts.cart_lines(carts.member_owner(alice.id)))[0]["id"]
    with pytest.raises(NotFound):
        await carts.set_quantity(carts.member_owner(bob.id), line_id, 2)
    with pytest.raises(NotFound):
        await carts.remove_line(carts.member_owner(bob.id), line_id)
    assert await carts.cart_count(carts.member_owner(alice.id)) == 1


async def test_concurrent_adds_never_exceed_the_stock():
    member = await make_member("Fast Clicker")
    owner = carts.member_owner(member.id)
    product = await make_product("Limited mug", variants={"One": 5})
    results = await asyncio.gather(*(carts.add_to_cart(owner, product["variants"]["One"], 1, member_id=member.id)
                                     for _ in range(12)), return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, FormError)) == 7
    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, FormError)]
    assert await carts.cart_count(owner) == 5
    assert await Cart.count() == 1 and await CartLine.count() == 1


async def test_merge_adds_quantities_capped_by_stock():
    member = await make_member("Merger")
    product = await make_product("Socks", variants={"S": 4, "M": 10})
    visitor = "a.visitor-test.sig"
    await carts.add_to_cart(carts.member_owner(member.id), product["variants"]["S"], 3, member_id=member.id)
    await carts.add_to_cart(visitor, product["variants"]["S"], 3)
    await carts.add_to_cart(visitor, product["variants"]["M"], 2)
    assert await carts.merge_visitor_cart(visitor, member.id) == 6  # S: 3 + 3 capped at 4, M: 2
    lines = {line["variant"]: line["quantity"] for line in await carts.cart_lines(carts.member_owner(member.id))}
    assert lines == {"S": 4, "M": 2}
    assert not await Cart.exists().where(Cart.owner == visitor)
    assert await carts.merge_visitor_cart(visitor, member.id) == 6  # nothing left to merge


async def test_visitor_cart_over_http_merged_at_login_with_badge(client):
    product = await make_product("Rain jacket", price=89_900, variants={"M": 2, "L": 5})
    member = await make_member("Shopper")
    home = await client.get("/cart")
    assert home.status_code == 200 and "Your cart is empty" in home.text and _badge(home.text) == 0
    token = csrf_from(home.text)
    # no JavaScript: a plain form post, redirected to the cart
    added = await client.post("/cart/lines", data={"variant_id": product["variants"]["M"], "quantity": "1",
                                                   "_csrf_token": token})
    assert added.status_code == 303 and added.headers["location"] == "/cart"
    # htmx: the badge fragment with the new count and an out-of-band message
    fragment = await client.post("/cart/lines", data={"variant_id": product["variants"]["L"], "quantity": "2"},
                                 headers={"HX-Request": "true", "x-csrftoken": token})
    assert fragment.status_code == 200
    assert 'id="cart-badge"' in fragment.text and _badge(fragment.text) == 3
    assert 'hx-swap-oob="true"' in fragment.text and "Added to your cart." in fragment.text
    # more than the stock: a clear message, nothing added
    over = await client.post("/cart/lines", data={"variant_id": product["variants"]["M"], "quantity": "2"},
                             headers={"HX-Request": "true", "x-csrftoken": token})
    assert "Only 2 left. (you have 1 in your cart)" in over.text and _badge(over.text) == 3
    page = await client.get("/cart")
    assert "Rain jacket" in page.text and _badge(page.text) == 3
    assert "2 697,00" in page.text.replace("\u00a0", " ").replace("\u202f", " ")  # 3 x 899 kr
    await login(client, member.email)
    shop_page = await client.get("/cart")
    assert _badge(shop_page.text) == 3 and "Rain jacket" in shop_page.text
    assert await carts.cart_count(carts.member_owner(member.id)) == 3
    # htmx quantity change: the cart fragment and the badge out of band
    line_id = (await carts.cart_lines(carts.member_owner(member.id)))[0]["id"]
    token = csrf_from(shop_page.text)
    changed = await client.post(f"/cart/lines/{line_id}", data={"quantity": "3"},
                                headers={"HX-Request": "true", "x-csrftoken": token})
    assert changed.status_code == 200 and "Only 2 left." in changed.text and 'id="cart"' in changed.text
    removed = await client.post(f"/cart/lines/{line_id}/remove", data={"_csrf_token": token})
    assert removed.status_code == 303
    assert _badge((await client.get("/cart")).text) == 2


async def test_badge_costs_no_query_for_a_visitor_without_a_cart(client, monkeypatch):
    calls = []
    original = carts.cart_count

    async def counting(owner):
        calls.append(owner)
        return await original(owner)

    monkeypatch.setattr(carts, "cart_count", counting)
    page = await client.get("/login")
    assert page.status_code == 200 and _badge(page.text) == 0
    assert calls == []  # a visitor who never added anything: no query for the badge
    member = await make_member("Badge Member")
    await login(client, member.email)
    calls.clear()
    await client.get("/login")
    assert calls == [f"m:{member.id}"]  # a member: one query per page
