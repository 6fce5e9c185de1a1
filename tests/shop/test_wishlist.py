"""The wishlist: hearts on products and ideas (htmx and without JS), the wishlist page, and the
shared link that only works when the member made it public."""

from __future__ import annotations

import asyncio
import re

from app.accounts.tables import Member
from app.shop import wishlist
from app.shop.tables import WishlistItem
from tests.factories import login, make_idea, make_member
from tests.shop.helpers import make_product
from tests.shop.social_helpers import htmx, token_of


async def test_heart_toggles_without_js_and_with_htmx(client):
    product = await make_product("Packable down vest")
    author = await make_member("Idea Author")
    idea_id = await make_idea(author, title="Solar camping lantern")
    fan = await make_member("Heart Fan")
    await login(client, fan.email)
    token = await token_of(client, "/ideas")
    # no JS: the form posts and we go back where we were
    response = await client.post(f"/wishlist/product/{product['id']}", data={"on": "1", "next": "/ideas", "_csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/ideas"
    assert await WishlistItem.count().where(WishlistItem.member == fan.id) == 1
    # a double click sends the same wish: still one heart
    await client.post(f"/wishlist/product/{product['id']}", data={"on": "1", "next": "/ideas", "_csrf_token": token})
    assert await WishlistItem.count().where(WishlistItem.member == fan.id) == 1
    # htmx: the button comes back pressed
    fragment = await client.post(f"/wishlist/idea/{idea_id}", headers=htmx(), data={"on": "1", "_csrf_token": token})
    assert fragment.status_code == 200 and 'aria-pressed="true"' in fragment.text and "<html" not in fragment.text
    # the idea list shows the idea's heart pressed
    page = await client.get("/ideas")
    heart = re.search(rf'action="/wishlist/idea/{idea_id}".*?aria-pressed="(\w+)"', page.text, re.S)
    assert heart and heart.group(1) == "true"
    # toggle off (no "on" field: a plain toggle)
    off = await client.post(f"/wishlist/idea/{idea_id}", headers=htmx(), data={"_csrf_token": token})
    assert 'aria-pressed="false"' in off.text
    assert await wishlist.hearted_idea_ids(await _current(fan), [idea_id]) == set()
    assert await wishlist.hearted_product_ids(await _current(fan), [product["id"], 999]) == {product["id"]}


async def _current(member):
    from app.accounts import service as accounts

    return await accounts.get_member(member.id)


async def test_visitors_are_sent_to_log_in(client):
    product = await make_product("Trail runners")
    author = await make_member("Lantern Author")
    idea_id = await make_idea(author, title="Foldable kayak paddle")
    page = await client.get("/ideas")
    assert 'href="/login?next=/ideas"' in page.text and "Log in to save Foldable kayak paddle" in page.text
    token = await token_of(client, "/ideas")
    response = await client.post(f"/wishlist/product/{product['id']}", data={"next": "/ideas", "_csrf_token": token})
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=/ideas")
    hx = await client.post(f"/wishlist/idea/{idea_id}", headers=htmx(), data={"next": "/ideas", "_csrf_token": token})
    assert hx.headers.get("hx-redirect", "").startswith("/login")
    assert await WishlistItem.count() == 0
    assert (await client.get("/wishlist")).status_code == 303  # the page itself needs a login


async def test_hearts_of_unknown_or_hidden_things_are_404(client):
    hidden = await make_product("Secret prototype", status="draft")
    author = await make_member("Draft Author")
    draft = await make_idea(author, status="draft", title="Unfinished draft")
    fan = await make_member("Curious Fan")
    await login(client, fan.email)
    token = await token_of(client)
    for path in (f"/wishlist/product/{hidden['id']}", f"/wishlist/idea/{draft}", "/wishlist/idea/999999",
                 "/wishlist/colour/1"):
        assert (await client.post(path, data={"on": "1", "_csrf_token": token})).status_code == 404, path
    assert await WishlistItem.count() == 0


async def test_wishlist_page_and_public_link(client):
    product = await make_product("Rolltop backpack")
    author = await make_member("Pack Author")
    idea_id = await make_idea(author, title="Heated bike grips")
    fan = await make_member("Sharing Fan")
    await wishlist.set_heart(fan, "product", product["id"], True)
    await wishlist.set_heart(fan, "idea", idea_id, True)
    public_url = f"/wishlist/{fan.handle}"
    assert (await client.get(public_url)).status_code == 404  # private by default
    await login(client, fan.email)
    page = await client.get("/wishlist")
    assert page.status_code == 200
    assert "Rolltop backpack" in page.text and "Heated bike grips" in page.text
    assert "Share my wishlist" in page.text and page.headers["cache-control"] == "no-store"
    shared = await client.post("/wishlist", data={"public": "1", "_csrf_token": await token_of(client, "/wishlist")})
    assert shared.status_code == 303
    assert (await Member.select(Member.wishlist_public).where(Member.id == fan.id).first())["wishlist_public"]
    page = await client.get("/wishlist")
    assert f"http://testserver.local{public_url}" in page.text and "Stop sharing" in page.text
    client.cookies.clear()
    public = await client.get(public_url)
    assert public.status_code == 200
    assert "Sharing Fan's wishlist" in public.text and "Rolltop backpack" in public.text
    assert "Share my wishlist" not in public.text
    assert (await client.get("/wishlist/nobody-by-that-name")).status_code == 404
    # private again: the link stops working
    await login(client, fan.email)
    await client.post("/wishlist", data={"public": "0", "_csrf_token": await token_of(client, "/wishlist")})
    client.cookies.clear()
    assert (await client.get(public_url)).status_code == 404


async def test_concurrent_hearts_make_one_row():
    product = await make_product("Thermos")
    fan = await make_member("Eager Fan")
    results = await asyncio.gather(*(wishlist.set_heart(fan, "product", product["id"], True) for _ in range(20)))
    assert all(results)
    assert await WishlistItem.count().where(WishlistItem.member == fan.id) == 1
    await asyncio.gather(*(wishlist.set_heart(fan, "product", product["id"], False) for _ in range(10)))
    assert await WishlistItem.count().where(WishlistItem.member == fan.id) == 0
