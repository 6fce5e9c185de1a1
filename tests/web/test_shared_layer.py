"""Members' pages in two layers (app/web/shared.py): one shared render for every member, each
member's own votes, hearts, follow, cart, name and CSRF token written in per request."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from app.ideas import service as ideas
from app.ideas.tables import Idea
from app.shop import cart as carts
from app.shop import wishlist
from app.web import shared as shared_module
from tests.factories import csrf_from, login, make_idea, make_member
from tests.shop.helpers import make_product


@pytest.fixture
def layer_on(monkeypatch):
    """Shared renders kept for a minute: every page below is served from one copy unless the
    test moves the clock."""
    monkeypatch.setenv("SHARED_PAGE_SECONDS", "60")
    from app.settings import get_settings

    get_settings.cache_clear()
    shared_module.reset_shared_layer()
    yield shared_module.shared_layer()
    monkeypatch.undo()
    get_settings.cache_clear()
    shared_module.reset_shared_layer()


def browser(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another browser on the same app, with no cookies of its own."""
    return httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))


def card(html: str, title: str) -> str:
    """The idea card with this title."""
    match = re.search(r'<article class="card idea-card">(?:(?!</article>).)*?' + re.escape(title) + r".*?</article>",
                      html, re.S)
    assert match, f"no card for {title}"
    return match.group(0)


def heart_on(card_html: str) -> bool:
    return 'class="heart is-on"' in card_html and 'aria-pressed="true"' in card_html


async def signed_in(client: httpx.AsyncClient, email: str) -> None:
    """Log in and read the welcome flash (a page with a flash message is not shared)."""
    await login(client, email)
    assert (await client.get("/account")).status_code == 200


async def test_two_members_share_one_render_and_never_see_each_others_state(client, layer_on):
    author = await make_member("Ada Author")
    voted_idea = await make_idea(author, title="Packable rain poncho")
    hearted_idea = await make_idea(author, title="Merino hiking socks")
    product = await make_product("Canvas tote")
    alice, bob = await make_member("Alice Backer"), await make_member("Bob Browser")
    await ideas.vote(alice, voted_idea)
    await wishlist.set_heart(alice, "idea", hearted_idea, True)
    await carts.add_to_cart(carts.member_owner(alice.id), product["variants"]["One size"], 2, member_id=alice.id)
    await signed_in(client, alice.email)
    async with browser(client) as other:
        await signed_in(other, bob.email)
        pages = await asyncio.gather(*(c.get("/ideas") for _ in range(8) for c in (client, other)))
    assert all(p.status_code == 200 for p in pages)
    assert len(layer_on.pages) == 1  # one shared render served all sixteen pages
    alice_pages, bob_pages = pages[0::2], pages[1::2]
    alice_token, bob_token = csrf_from(alice_pages[0].text), csrf_from(bob_pages[0].text)
    assert alice_token != bob_token
    for page in alice_pages:
        html = page.text
        assert "Alice Backer" in html and "Bob Browser" not in html
        assert csrf_from(html) == alice_token and bob_token not in html
        assert "including you" in card(html, "Packable rain poncho")
        assert heart_on(card(html, "Merino hiking socks")) and not heart_on(card(html, "Packable rain poncho"))
        assert 'data-testid="cart-count">2<' in html
        assert "<!--slot:" not in html and shared_module.CSRF_MARK not in html
    for page in bob_pages:
        html = page.text
        assert "Bob Browser" in html and "Alice Backer" not in html
        assert csrf_from(html) == bob_token and alice_token not in html
        assert "including you" not in html
        assert not heart_on(card(html, "Merino hiking socks"))
        assert 'data-testid="cart-count"' not in html
        assert "<!--slot:" not in html and shared_module.CSRF_MARK not in html


async def test_a_members_own_vote_and_heart_show_on_their_next_page(client, layer_on):
    author = await make_member("Ada Author")
    await make_idea(author, title="Packable rain poncho")
    idea_id = await make_idea(author, title="Merino hiking socks")
    member = await make_member("Vera Voter")
    await signed_in(client, member.email)
    before = await client.get("/ideas")
    assert "including you" not in card(before.text, "Merino hiking socks")
    token = csrf_from(before.text)
    assert (await client.post(f"/ideas/{idea_id}/vote", data={"_csrf_token": token})).status_code in (200, 303)
    assert (await client.post(f"/wishlist/idea/{idea_id}", data={"_csrf_token": token, "on": "1"})).status_code in (200, 303)
    after = await client.get("/ideas")
    assert len(layer_on.pages) == 1  # the same shared copy: the change is in the member's layer
    mine = card(after.text, "Merino hiking socks")
    assert "including you" in mine and heart_on(mine)
    assert "including you" not in card(after.text, "Packable rain poncho")


async def test_a_staff_edit_reaches_members_within_the_layers_second(client, monkeypatch):
    monkeypatch.setenv("SHARED_PAGE_SECONDS", "1")
    from app.settings import get_settings

    get_settings.cache_clear()
    shared_module.reset_shared_layer()
    clock = [1000.0]
    monkeypatch.setattr(shared_module.time, "monotonic", lambda: clock[0])
    try:
        author = await make_member("Ada Author")
        idea_id = await make_idea(author, title="Packable rain poncho")
        member = await make_member("Mia Member")
        await signed_in(client, member.email)
        assert "Packable rain poncho" in (await client.get("/ideas")).text
        await Idea.update({Idea.title: "Packable rain cape"}).where(Idea.id == idea_id)
        clock[0] += 0.5
        assert "Packable rain poncho" in (await client.get("/ideas")).text  # still the shared copy
        clock[0] += 0.6
        fresh = (await client.get("/ideas")).text
        assert "Packable rain cape" in fresh and "Packable rain poncho" not in fresh
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        shared_module.reset_shared_layer()


async def test_a_category_follow_and_htmx_results_come_from_their_own_shared_copies(client, layer_on):
    author = await make_member("Ada Author")
    await make_idea(author, title="Packable rain poncho", category="bags")
    member = await make_member("Finn Follower")
    await signed_in(client, member.email)
    page = await client.get("/ideas?category=bags")
    assert 'value="follow"' in page.text and 'aria-pressed="false"' in page.text
    token = csrf_from(page.text)
    category = re.search(r'name="target" value="(\d+)"', page.text).group(1)
    followed = await client.post("/follow", data={"_csrf_token": token, "kind": "category", "target": category,
                                                  "action": "follow", "next": "/ideas?category=bags"})
    assert followed.status_code in (200, 303)
    again = await client.get("/ideas?category=bags")
    assert 'value="unfollow"' in again.text
    fragment = await client.get("/ideas?category=bags", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and "Packable rain poncho" in fragment.text
    assert len(layer_on.pages) == 2  # the page and its htmx fragment


async def test_staff_and_a_members_own_lists_are_rendered_the_ordinary_way(client, layer_on):
    author = await make_member("Ada Author")
    await make_idea(author, title="Packable rain poncho")
    await signed_in(client, author.email)
    mine = await client.get("/ideas?mine=1")
    assert mine.status_code == 200 and "Packable rain poncho" in mine.text
    assert layer_on.pages == {}
    staff = await make_member("Sam Staff", staff=True)
    async with browser(client) as other:
        await signed_in(other, staff.email)
        assert (await other.get("/ideas")).status_code == 200
    assert layer_on.pages == {}


async def test_a_page_from_the_shared_copy_costs_only_the_members_overlay(client, layer_on):
    """Served from the shared copy, a member's ideas list asks the database for the member's
    layer only: the session, the cart badge, the votes and hearts among the ids on the page."""
    from tests.support.queries import count_queries

    author = await make_member("Ada Author")
    for n in range(6):
        await make_idea(author, title=f"Counted idea {n}")
    member = await make_member("Quinn Queries")
    await signed_in(client, member.email)
    await client.get("/ideas")  # the shared copy
    with count_queries() as counter:
        page = await client.get("/ideas")
    assert page.status_code == 200 and "Counted idea 5" in page.text
    assert counter.count == 4, counter.statements if hasattr(counter, "statements") else counter.count


async def test_product_page_members_share_it_with_their_own_hearts_and_recently_viewed(client, layer_on):
    tote, socks = await make_product("Canvas tote"), await make_product("Merino socks")
    alice, bob = await make_member("Alice Backer"), await make_member("Bob Browser")
    await wishlist.set_heart(alice, "product", tote["id"], True)
    await signed_in(client, alice.email)
    assert (await client.get(f"/shop/{socks['slug']}")).status_code == 200  # Alice saw the socks first
    async with browser(client) as other:
        await signed_in(other, bob.email)
        pages = await asyncio.gather(*(c.get(f"/shop/{tote['slug']}") for _ in range(4) for c in (client, other)))
    assert all(p.status_code == 200 for p in pages)
    assert sum(1 for key in layer_on.pages if key[0] == "product") == 2  # the socks and the tote, once each
    for page in pages[0::2]:
        html = page.text
        assert "Alice Backer" in html and "Bob Browser" not in html
        assert 'class="heart is-on"' in html  # her heart on the tote
        assert 'id="row-recent"' in html and "Merino socks" in html  # her recently viewed row
    for page in pages[1::2]:
        html = page.text
        assert "Bob Browser" in html and "Alice Backer" not in html
        assert 'class="heart is-on"' not in html and 'id="row-recent"' not in html
        assert "<!--slot:" not in html and shared_module.CSRF_MARK not in html


async def test_product_page_buyers_and_visitors(client, layer_on):
    from tests.shop.social_helpers import make_order

    product = await make_product("Merino socks")
    buyer = await make_member("Happy Buyer")
    await make_order(buyer, [product], status="paid")
    async with browser(client) as visitor:
        seen = await visitor.get(f"/shop/{product['slug']}")
        assert seen.status_code == 200 and "Log in" in seen.text and "Write a review" not in seen.text
        assert ("product", product["slug"], "en", "visitor") in layer_on.pages
        assert csrf_from(seen.text) != shared_module.CSRF_MARK
    await signed_in(client, buyer.email)
    page = await client.get(f"/shop/{product['slug']}")
    assert "Write a review" in page.text  # a buyer's page is their own: the review form
    assert ("product", product["slug"], "en", "member") in layer_on.pages  # asked, not used for the buyer
    hidden = await make_product("Secret prototype", status="hidden")
    assert (await client.get(f"/shop/{hidden['slug']}")).status_code == 404


async def test_the_front_page_is_shared_with_each_members_votes_and_hearts(client, layer_on):
    author = await make_member("Ada Author")
    idea_id = await make_idea(author, title="Packable rain poncho")
    product = await make_product("Canvas tote")
    alice, bob = await make_member("Alice Backer"), await make_member("Bob Browser")
    await ideas.vote(alice, idea_id)
    await wishlist.set_heart(alice, "product", product["id"], True)
    await signed_in(client, alice.email)
    async with browser(client) as other:
        await signed_in(other, bob.email)
        mine, theirs = await asyncio.gather(client.get("/"), other.get("/"))
    assert ("home", "en") in layer_on.pages
    assert "including you" in card(mine.text, "Packable rain poncho") and 'class="heart is-on"' in mine.text
    assert "Alice Backer" in mine.text and "Bob Browser" not in mine.text
    assert "including you" not in theirs.text and 'class="heart is-on"' not in theirs.text
    assert "Bob Browser" in theirs.text and "Alice Backer" not in theirs.text


async def test_a_product_page_is_kept_while_its_version_stands_and_any_change_shows_within_the_second(
        client, monkeypatch):
    """A product page is checked, not rendered, once its second is over: the same version keeps
    the copy; a new question, a stock change or a staff edit renders it again at the next check."""
    from app.db import utcnow
    from app.shop import catalog
    from app.shop.tables import Product, ProductVariant

    monkeypatch.setenv("SHARED_PAGE_SECONDS", "1")
    from app.settings import get_settings

    get_settings.cache_clear()
    shared_module.reset_shared_layer()
    clock = [1000.0]
    monkeypatch.setattr(shared_module.time, "monotonic", lambda: clock[0])
    try:
        product = await make_product("Waxed field jacket", variants={"M": 3})
        layer = shared_module.shared_layer()
        member, asker = await make_member("Mia Member"), await make_member("Curious Carl")
        await signed_in(client, member.email)
        first = await client.get(f"/shop/{product['slug']}")
        assert first.status_code == 200 and "Waxed field jacket" in first.text
        key = ("product", product["slug"], "en", "member")
        copy = layer.pages[key]
        clock[0] += 1.5
        again = await client.get(f"/shop/{product['slug']}")
        assert layer.pages[key] is copy and layer.revalidated == 1 and "Mia Member" in again.text
        # a question by another member: the next check renders it
        await catalog.ask_question(asker, product["slug"], "Does the wax come off on a white shirt?")
        clock[0] += 0.5
        assert "white shirt" not in (await client.get(f"/shop/{product['slug']}")).text  # within its second
        clock[0] += 0.6
        assert "white shirt" in (await client.get(f"/shop/{product['slug']}")).text
        # a sale moves the stock, a staff edit the text: each is a new version
        changes = ((lambda: ProductVariant.update({ProductVariant.stock: 0}).where(
                        ProductVariant.product == product["id"]), "Sold out"),
                   (lambda: Product.update({Product.summary: "Now with a corduroy collar", Product.updated_at: utcnow()})
                        .where(Product.id == product["id"]), "corduroy collar"))
        for change, seen in changes:
            before = layer.pages[key]
            await change()
            clock[0] += 1.1
            page = await client.get(f"/shop/{product['slug']}")
            assert layer.pages[key] is not before and seen in page.text, seen
        # a copy is rendered again after its longest age even when nothing changed
        settled = layer.pages[key]
        clock[0] += shared_module.VERSIONED_MAX_AGE + 1
        await client.get(f"/shop/{product['slug']}")
        assert layer.pages[key] is not settled
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        shared_module.reset_shared_layer()
