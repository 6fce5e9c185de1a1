"""No page issues more SQL as its list grows (issue 6): each page is fetched with a small and a
larger list, and the number of statements must stay the same."""

from __future__ import annotations

from app.community import service as community
from app.ideas import service as ideas
from tests.campaigns.helpers import make_campaign, pledge_with_card
from tests.factories import login, make_idea, make_member
from tests.support.queries import count_queries


async def _queries(client, path: str) -> int:
    await client.get(path)  # warm caches that are filled once per process (e.g. categories)
    with count_queries() as counter:
        response = await client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return counter.count


async def test_ideas_list_and_home_do_not_grow_with_the_list(client):
    viewer = await make_member("Counting Viewer")
    author = await make_member("Counting Author")
    await login(client, viewer.email)
    first = [await make_idea(author, title=f"Counted idea {n}") for n in range(2)]
    await ideas.vote(viewer, first[0])
    small = {path: await _queries(client, path) for path in ("/ideas", "/", "/ideas?q=Counted")}
    more = [await make_idea(author, title=f"Counted idea {n}") for n in range(2, 12)]
    for idea_id in more[:5]:
        await ideas.vote(viewer, idea_id)
    large = {path: await _queries(client, path) for path in small}
    assert large == small


async def test_idea_page_does_not_grow_with_comments(client):
    viewer = await make_member("Comment Counter")
    author = await make_member("Comment Author")
    idea_id = await make_idea(author)
    await login(client, viewer.email)
    await community.add_comment(author, idea_id, "First!")
    small = await _queries(client, f"/ideas/{idea_id}")
    for n in range(8):
        parent = await community.add_comment(author if n % 2 else viewer, idea_id, f"Comment {n}")
        await community.add_comment(author, idea_id, f"Reply {n}", parent_id=parent)
    assert await _queries(client, f"/ideas/{idea_id}") == small


async def test_campaign_pages_and_my_pledges_do_not_grow(client, stripe):
    backer = await make_member("Pledge Counter")
    await login(client, backer.email)
    first, campaign = await make_campaign(goal=50)
    await pledge_with_card(backer, first, campaign["variants"][0]["id"])

    async def back_another_campaign() -> None:
        other, campaign = await make_campaign(goal=50)
        await pledge_with_card(backer, other, campaign["variants"][1]["id"], quantity=2)
        for n in range(2):
            await pledge_with_card(await make_member(f"Other backer {n}"), first, await _variant(first))

    await back_another_campaign()  # so "backers also backed" has something in both measurements
    paths = ("/campaigns", "/me/pledges", f"/ideas/{campaign['idea']}")
    small = {path: await _queries(client, path) for path in paths}
    for _ in range(3):
        await back_another_campaign()
    large = {path: await _queries(client, path) for path in paths}
    assert large == small


async def _variant(campaign_id: int) -> int:
    from app.campaigns import service as campaigns

    return (await campaigns.get_campaign(campaign_id))["variants"][0]["id"]


async def test_product_and_order_pages_do_not_grow(client):
    from app.orders.tables import Order, OrderEvent
    from app.shop import catalog, reviews
    from tests.shop.helpers import make_product
    from tests.shop.social_helpers import make_order

    buyer = await make_member("Shop Counter")
    await login(client, buyer.email)
    products = [await make_product(f"Counted product {n}") for n in range(8)]
    main = products[0]
    order_id = await make_order(buyer, products[:1])
    await OrderEvent.insert(OrderEvent(order=order_id, from_status="placed", to_status="paid"))
    await reviews.submit_review(buyer, main["id"], rating=5)
    await catalog.ask_question(buyer, main["slug"], "Does it come in blue?")
    number = (await Order.select(Order.number).where(Order.id == order_id).first())["number"]
    last = products[-1]  # one heart and one cart line, so both measurements see non-empty lists
    await client.post(f"/wishlist/product/{last['id']}", data={"_csrf_token": await _token(client)})
    await client.post("/cart/lines", data={"variant_id": next(iter(last["variants"].values())), "quantity": 1,
                                           "_csrf_token": await _token(client)})
    paths = (f"/shop/{main['slug']}", f"/orders/{number}", "/orders", "/shop", "/wishlist", "/cart")
    small = {path: await _queries(client, path) for path in paths}

    for n in range(5):  # more reviews, questions, orders, lines, hearts and cart lines
        reviewer = await make_member(f"Reviewer {n}")
        await make_order(reviewer, products[:2])
        await reviews.submit_review(reviewer, main["id"], rating=1 + n % 5, title=f"Review {n}")
        await catalog.ask_question(reviewer, main["slug"], f"Question {n}?")
        await make_order(buyer, products[n:n + 3])
    await _add_lines(order_id, products[1:6])
    for product in products[1:6]:
        await client.post(f"/wishlist/product/{product['id']}", data={"_csrf_token": await _token(client)})
        await client.post("/cart/lines", data={"variant_id": next(iter(product["variants"].values())), "quantity": 1,
                                               "_csrf_token": await _token(client)})
    from app.shop.tables import CartLine, WishlistItem

    assert await CartLine.count() == 6 and await WishlistItem.count() == 6  # the list really grew
    large = {path: await _queries(client, path) for path in paths}
    assert large == small


async def _token(client) -> str:
    from tests.factories import csrf_from

    return csrf_from((await client.get("/cart")).text)


async def _add_lines(order_id: int, products: list[dict]) -> None:
    from app.orders.tables import OrderLine

    for product in products:
        await OrderLine.insert(OrderLine(order=order_id, title=product["name"], product_id=product["id"],
                                         variant_id=next(iter(product["variants"].values())), quantity=1,
                                         unit_price=29_900, total=29_900))


async def test_a_big_total_is_counted_once_for_the_requests_that_arrive_together(monkeypatch):
    """The public list's total is reused for a second once it is big; when it expires, the
    requests arriving meanwhile wait for one count instead of each counting (make bench, signed
    in: ~300 counts in 10 s, 526 ms each)."""
    import asyncio

    monkeypatch.setattr(ideas, "COUNT_CACHE_MIN", 1)  # the test's few ideas count as "big"
    monkeypatch.setattr(ideas, "_totals", {})
    author = await make_member("Total Author")
    viewers = [await make_member(f"Total Viewer {n}") for n in range(10)]
    for n in range(3):
        await make_idea(author, title=f"Totalled idea {n}")
    with count_queries() as counter:
        pages = await asyncio.gather(*(ideas.list_ideas(v, ideas.IdeaQuery()) for v in viewers))
    assert [p.total for p in pages] == [3] * 10
    assert sum("COUNT(" in s.upper() for s in counter.statements) == 1
    await make_idea(author, title="One more")
    monkeypatch.setattr(ideas, "COUNT_CACHE_SECONDS", 0)  # expired: the next request counts again
    assert (await ideas.list_ideas(viewers[0], ideas.IdeaQuery())).total == 4
