"""The one-second page cache for visitors (app/web/page_cache.py): shared where it may be, never
where a page is someone's own."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.ideas.tables import Idea
from app.web import page_cache as page_cache_module
from tests.factories import csrf_from, login, make_idea, make_member


@pytest.fixture
def cache_on(monkeypatch):
    monkeypatch.setenv("PAGE_CACHE_SECONDS", "0.5")
    from app.settings import get_settings

    get_settings.cache_clear()
    page_cache_module.reset_page_cache()
    yield page_cache_module.page_cache()
    monkeypatch.undo()
    get_settings.cache_clear()
    page_cache_module.reset_page_cache()


def visitor(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another browser on the same app: no cookies of its own yet."""
    return httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))


async def test_visitors_share_the_list_page_but_each_gets_their_own_csrf_token(client, cache_on):
    author = await make_member("Ada Author")
    await make_idea(author, title="Packable rain poncho")
    first = await client.get("/ideas")
    assert first.status_code == 200 and "Packable rain poncho" in first.text
    assert first.headers.get("x-page-cache") is None  # rendered
    async with visitor(client) as other:
        second = await other.get("/ideas")
    assert second.status_code == 200 and second.headers.get("x-page-cache") == "hit"
    assert second.headers.get("content-encoding") == "gzip"  # compressed per visitor
    assert "HX-Request" in second.headers["vary"] and "Accept-Encoding" in second.headers["vary"]
    assert "Packable rain poncho" in second.text
    token_a, token_b = csrf_from(first.text), csrf_from(second.text)
    assert token_a and token_b and token_a != token_b
    assert page_cache_module.PLACEHOLDER.decode() not in second.text
    assert second.cookies.get("cm_session")  # the second visitor still gets a visitor session
    assert second.headers.get_list("set-cookie") == [h for h in second.headers.get_list("set-cookie") if "cm_session" in h]
    assert len(second.headers.get_list("set-cookie")) == 1  # their own, never the first visitor's
    assert second.cookies["cm_session"] != first.cookies["cm_session"]
    # The token written into the cached page is the one the second visitor's forms need.
    language = await other_post_language(client, second)
    assert language.status_code == 303


async def other_post_language(client: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
    async with visitor(client) as other:
        other.cookies.set("cm_session", page.cookies["cm_session"])
        return await other.post("/language", data={"lang": "sv", "next": "/ideas", "_csrf_token": csrf_from(page.text)})


async def test_counts_are_fresh_after_the_cache_time(client, cache_on):
    author = await make_member("Ada Author")
    idea_id = await make_idea(author, title="Packable rain poncho")
    await client.get("/ideas")
    await Idea.update({Idea.title: "Packable rain cape"}).where(Idea.id == idea_id)
    async with visitor(client) as other:
        assert "Packable rain poncho" in (await other.get("/ideas")).text  # within the cache time
        await asyncio.sleep(0.6)
        # Expired: this visitor still gets the last copy at once, and the next one is rendered
        # in the background; the visitor after that sees the change.
        stale = await other.get("/ideas")
        assert "Packable rain poncho" in stale.text and stale.headers.get("x-page-cache") == "hit"
        await cache_on.settle()
        fresh = await other.get("/ideas")
    assert "Packable rain cape" in fresh.text and fresh.headers.get("x-page-cache") == "hit"
    assert csrf_from(fresh.text) == csrf_from(stale.text)  # same visitor: their own token again


async def test_members_are_never_served_or_stored(client, cache_on):
    author = await make_member("Ada Author")
    idea_id = await make_idea(author, title="Packable rain poncho")
    await client.get("/ideas")  # a visitor's page is in the cache now
    voter = await make_member("Vera Voter")
    async with visitor(client) as member_browser:
        await login(member_browser, voter.email)
        page = await member_browser.get("/ideas")
        assert page.headers.get("x-page-cache") is None
        assert voter.display_name in page.text  # their own header, not the visitor's
        token = csrf_from(page.text)
        voted = await member_browser.post(f"/ideas/{idea_id}/vote", data={"_csrf_token": token})
        assert voted.status_code in (200, 303)
        again = await member_browser.get("/ideas")
        assert again.headers.get("x-page-cache") is None and again.headers.get("cache-control") == "no-store"
    assert len(cache_on.entries) == 1  # only the visitors' page


async def test_language_query_and_private_cookies_are_kept_apart(client, cache_on):
    author = await make_member("Ada Author")
    await make_idea(author, title="Packable rain poncho")
    english = await client.get("/ideas")
    async with visitor(client) as swedish:
        page = await swedish.get("/ideas", headers={"accept-language": "sv"})
        assert page.headers.get("x-page-cache") is None and 'lang="sv"' in page.text
    async with visitor(client) as other:
        newest = await other.get("/ideas?sort=new")
        assert newest.headers.get("x-page-cache") is None
        other.cookies.set("cm_seen", "12.abc")  # recently viewed ideas: not shown on the list
        assert (await other.get("/ideas")).headers.get("x-page-cache") == "hit"
        other.cookies.set("cm_cart", "1")  # a visitor with a cart sees their own badge
        assert (await other.get("/ideas")).headers.get("x-page-cache") is None
    async with visitor(client) as htmx:
        fragment = await htmx.get("/ideas", headers={"hx-request": "true"})
        assert fragment.headers.get("x-page-cache") is None
    assert english.status_code == 200


async def test_off_when_the_setting_is_zero(client):
    page_cache_module.reset_page_cache()
    try:
        await client.get("/ideas")
        async with visitor(client) as other:
            assert (await other.get("/ideas")).headers.get("x-page-cache") is None
    finally:
        page_cache_module.reset_page_cache()


async def test_a_page_that_may_no_longer_be_shared_is_dropped_on_refresh(client, cache_on, monkeypatch):
    """When the next copy cannot be shared (here: the page now sets a cookie, as a page with a
    running experiment does), the old copy is not served again."""
    author = await make_member("Ada Author")
    await make_idea(author, title="Packable rain poncho")
    await client.get("/ideas")
    assert len(cache_on.entries) == 1
    for key, entry in list(cache_on.entries.items()):
        cache_on.entries[key] = (0.0, *entry[1:])  # expired
    from app.web import page_cache as module

    real_capture = module.PageCache._capture

    def capture_with_cookie(self, key, token_bytes, state, send):
        inner = real_capture(self, key, token_bytes, state, send)

        async def wrapped(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"set-cookie", b"cm_ab=x")]}
            await inner(message)

        return wrapped

    monkeypatch.setattr(module.PageCache, "_capture", capture_with_cookie)
    async with visitor(client) as other:
        assert (await other.get("/ideas")).headers.get("x-page-cache") == "hit"  # the last copy, once
        await cache_on.settle()
        assert not cache_on.entries
        again = await other.get("/ideas")
    assert again.headers.get("x-page-cache") is None


async def test_visitors_arriving_together_wait_for_one_render(client, cache_on, monkeypatch):
    """A cold page (after a deploy, a new search) is rendered once, not by each visitor."""
    from app.ideas import service

    author = await make_member("Ada Author")
    await make_idea(author, title="Packable rain poncho")
    calls = 0
    real = service.list_ideas

    async def counted(*args, **kwargs):
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)  # a slow first render: the others arrive meanwhile
        return await real(*args, **kwargs)

    monkeypatch.setattr(service, "list_ideas", counted)
    browsers = [visitor(client) for _ in range(5)]
    try:
        pages = await asyncio.gather(*(b.get("/ideas") for b in browsers))
    finally:
        for b in browsers:
            await b.aclose()
    assert all(p.status_code == 200 and "Packable rain poncho" in p.text for p in pages)
    assert calls == 1
    assert sorted(p.headers.get("x-page-cache") or "rendered" for p in pages) == ["hit"] * 4 + ["rendered"]
    assert len({csrf_from(p.text) for p in pages}) == 5  # each visitor still has their own token


async def test_idea_pages_are_shared_but_each_visit_is_the_visitors_own(client, cache_on):
    """The copy of an idea page is shared; each visitor served it still has their view counted
    and gets their own recently-viewed cookie, never the first visitor's."""
    from app.community import views

    author = await make_member("Ada Author")
    seen_first = await make_idea(author, title="Insulated flask")
    idea_id = await make_idea(author, title="Packable rain poncho")
    first = await client.get(f"/ideas/{idea_id}")
    assert first.status_code == 200 and first.headers.get("x-page-cache") is None
    assert views.read_recent(first.cookies["cm_seen"]) == [idea_id]
    async with visitor(client) as other:
        await other.get(f"/ideas/{seen_first}")  # this visitor saw another idea before
        views._pending.clear()
        second = await other.get(f"/ideas/{idea_id}")
    assert second.headers.get("x-page-cache") == "hit" and "Packable rain poncho" in second.text
    assert views.read_recent(second.cookies["cm_seen"]) == [idea_id, seen_first]  # their own list
    assert [c for c in second.headers.get_list("set-cookie") if c.startswith("cm_seen=")] == [
        f"cm_seen={second.cookies['cm_seen']}; HttpOnly; Max-Age=2592000; Path=/; SameSite=lax"]
    # their view is counted, with the pair "viewed this, then that"
    assert [(v.kind, v.subject, v.recent) for v in views._pending] == [("idea", idea_id, (seen_first,))]
    assert views._pending[0].viewer  # a returning visitor (their session cookie), so a viewer


async def test_an_idea_page_rendered_in_the_background_records_no_view(client, cache_on):
    from app.community import views

    author = await make_member("Ada Author")
    idea_id = await make_idea(author, title="Packable rain poncho")
    await client.get(f"/ideas/{idea_id}")
    for key, entry in list(cache_on.entries.items()):
        cache_on.entries[key] = (0.0, *entry[1:])  # expired
    async with visitor(client) as other:
        await other.get("/ideas")  # a visitor who has been here before (their session cookie)
        views._pending.clear()
        served = await other.get(f"/ideas/{idea_id}")  # the last copy; the next renders meanwhile
        await cache_on.settle()
    assert served.headers.get("x-page-cache") == "hit"
    assert [v.subject for v in views._pending] == [idea_id]  # this visitor's view, once
    assert cache_on.entries[(f"/ideas/{idea_id}", b"", "en")][0] > 0  # the new copy is kept


async def test_idea_pages_visitors_may_not_see_are_never_shared(client, cache_on):
    author = await make_member("Ada Author")
    draft = await make_idea(author, title="Secret draft", status="draft")
    assert (await client.get(f"/ideas/{draft}")).status_code == 404
    async with visitor(client) as other:
        again = await other.get(f"/ideas/{draft}")
    assert again.status_code == 404 and again.headers.get("x-page-cache") is None
    assert not cache_on.entries
