"""'N people viewed this today' and 'people who viewed this also viewed' (issue 5)."""

from __future__ import annotations

import asyncio

import httpx

from app.asgi import create_app
from app.community import views
from app.db import raw
from tests.factories import login, make_idea, make_member


def _visitor() -> httpx.AsyncClient:
    app = create_app(run_jobs=False, manage_database=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50001)),
                             base_url="http://testserver.local")


async def test_viewers_counted_once_a_day_and_viewed_together(client):
    author = await make_member("Viewed Author")
    first = await make_idea(author, title="Solar lantern")
    second = await make_idea(author, title="Bamboo bike rack")
    for n in range(3):
        async with _visitor() as visitor:
            await visitor.get("/")  # the visitor's id cookie; cookie-less requests are not counted
            for _ in range(3):  # reloads count once
                assert (await visitor.get(f"/ideas/{first}")).status_code == 200
            await visitor.get(f"/ideas/{second}")
    async with _visitor() as bot:  # never kept a cookie: not counted
        bot.cookies = httpx.Cookies()
        await bot.get(f"/ideas/{second}")
    await views.flush()
    assert await views.viewers_today("idea", first) == 3
    assert await views.viewers_today("idea", second) == 3

    member = await make_member("Viewing Member")
    await login(client, member.email)
    page = (await client.get(f"/ideas/{first}")).text
    assert "3 people</strong> viewed this today" in page
    assert "People who viewed this also viewed" in page and "Bamboo bike rack" in page
    second_page = (await client.get(f"/ideas/{second}")).text
    assert "Solar lantern" in second_page.split("People who viewed this also viewed")[1]
    await views.flush()
    assert await views.viewers_today("idea", first) == 4


async def test_concurrent_views_and_flushes_count_each_viewer_once():
    author = await make_member("Busy Author")
    idea_id = await make_idea(author)
    keys = [views.viewer_key(None, f"a.visitor-{n}") for n in range(40)]
    for key in keys + keys:  # every viewer twice
        views.record_view("idea", idea_id, key, [])
    await asyncio.gather(views.flush(), views.flush(), views.flush())
    for key in keys[:10]:
        views.record_view("idea", idea_id, key, [])
    await asyncio.gather(views.flush(), views.flush())
    assert await views.viewers_today("idea", idea_id) == 40
    rows = await raw("SELECT COUNT(*) AS n FROM viewer_day WHERE subject = {}", idea_id)
    assert rows[0]["n"] == 40


def test_a_planted_recently_viewed_cookie_is_ignored():
    _, cookie = views.remember(None, 7)
    assert views.read_recent(cookie) == [7]
    assert views.read_recent("7-8-9.forgedsignature") == []
    assert views.read_recent(cookie.replace("7", "8", 1)) == []


async def test_product_pages_count_viewers_and_show_viewed_also(client):
    from tests.shop.helpers import make_product

    lamp, rack = await make_product("Reading lamp"), await make_product("Shoe rack")
    for _ in range(2):
        async with _visitor() as visitor:
            await visitor.get("/shop")
            await visitor.get(f"/shop/{lamp['slug']}")
            await visitor.get(f"/shop/{rack['slug']}")
    await views.flush()
    page = (await client.get(f"/shop/{lamp['slug']}")).text
    assert "2 people</strong> viewed this today" in page
    assert "Shoe rack" in page.split("People who viewed this also viewed")[1]
