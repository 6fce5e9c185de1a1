"""Reviews by verified buyers: refused for others, one per member and product, exact ratings under
concurrency, staff hiding, points and badge once, and the review-request email once per order line."""

from __future__ import annotations

import asyncio

import pytest

from app.db import utcnow
from app.errors import Forbidden, FormError
from app.jobs.service import drain, enqueue
from app.mail.tables import EmailMessage
from app.points.tables import MemberBadge, PointsEntry
from app.shop import reviews
from app.shop.tables import Product, Review
from tests.factories import PASSWORD, login, make_member
from tests.shop.helpers import make_product
from tests.shop.social_helpers import htmx, make_order, token_of


async def _product_row(product_id: int) -> dict:
    return await Product.select(Product.rating_count, Product.rating_sum, Product.rating_avg).where(
        Product.id == product_id).first()


async def _bearer(client, member) -> dict:
    token = (await client.post("/api/v1/auth/tokens", json={"email": member.email, "password": PASSWORD})).json()["token"]
    return {"Authorization": f"Bearer {token}"}


async def test_non_buyer_is_refused_everywhere(client):
    product = await make_product("Rain jacket")
    stranger = await make_member("Window Shopper")
    placed_only = await make_member("Cart Abandoner")
    await make_order(placed_only, [product], status="placed")
    cancelled = await make_member("Changed Mind")
    await make_order(cancelled, [product], status="cancelled")
    for member in (stranger, placed_only, cancelled):
        with pytest.raises(Forbidden, match="Only members who bought this product"):
            await reviews.submit_review(member, product["id"], rating=5, title="Great", body="Love it")
    # the page shows no form to a non-buyer, and a forged post is refused with a clear message
    await login(client, stranger.email)
    page = await client.get(f"/shop/{product['slug']}/reviews")
    assert page.status_code == 200
    assert "Only members who bought this product can review it" in page.text
    assert 'name="rating"' not in page.text
    response = await client.post(f"/shop/{product['slug']}/reviews",
                                 data={"rating": "5", "title": "Fake", "_csrf_token": await token_of(client)})
    assert response.status_code == 303 and response.headers["location"] == f"/shop/{product['slug']}#reviews"
    refused = await client.post(f"/shop/{product['slug']}/reviews", headers=htmx(),
                                data={"rating": "5", "title": "Fake", "_csrf_token": await token_of(client)})
    assert "Only members who bought this product can review it." in refused.text
    # API: 403 JSON with the reason
    api = await client.post(f"/api/v1/products/{product['id']}/reviews", json={"rating": 5},
                            headers=await _bearer(client, stranger))
    assert api.status_code == 403
    assert "Only members who bought this product" in api.json()["detail"]
    assert await Review.count() == 0
    assert (await _product_row(product["id"]))["rating_count"] == 0


async def test_buyer_reviews_then_edits_and_there_is_still_one(client):
    product = await make_product("Merino socks")
    buyer = await make_member("Happy Buyer")
    await make_order(buyer, [product], status="paid")
    await login(client, buyer.email)
    page = await client.get(f"/shop/{product['slug']}/reviews")
    assert "Write a review" in page.text and 'name="rating"' in page.text
    token = await token_of(client, f"/shop/{product['slug']}/reviews")
    bad = await client.post(f"/shop/{product['slug']}/reviews", data={"title": "No stars", "_csrf_token": token})
    assert bad.status_code == 400 and "Choose from 1 to 5 stars." in bad.text
    assert 'value="No stars"' in bad.text  # what was typed is kept
    first = await client.post(f"/shop/{product['slug']}/reviews",
                              data={"rating": "4", "title": "Warm", "body": "Good socks.", "_csrf_token": token})
    assert first.status_code == 303
    edit = await client.post(f"/shop/{product['slug']}/reviews", headers=htmx(),
                             data={"rating": "2", "title": "Holes after a month", "body": "Sadly thin.", "_csrf_token": token})
    assert edit.status_code == 200
    assert "Your review is updated." in edit.text and "Holes after a month" in edit.text
    assert "<html" not in edit.text  # the fragment alone
    assert await Review.count() == 1
    assert await _product_row(product["id"]) == {"rating_count": 1, "rating_sum": 2, "rating_avg": 2.0}
    page = await client.get(f"/shop/{product['slug']}/reviews")
    assert "Edit your review" in page.text and "Verified buyer" in page.text


async def test_average_and_distribution_are_exact(client):
    product = await make_product("Canvas tote")
    ratings = [5, 5, 4, 3, 1]
    for n, stars in enumerate(ratings):
        buyer = await make_member(f"Tote Buyer {n}")
        await make_order(buyer, [product], status="delivered")
        await reviews.submit_review(buyer, product["id"], rating=stars, title=f"Review {n}")
    data = await reviews.product_reviews(product["id"], None)
    assert data["count"] == 5 and data["average"] == 3.6
    assert [(d["stars"], d["count"]) for d in data["distribution"]] == [(5, 2), (4, 1), (3, 1), (2, 0), (1, 1)]
    assert [r["title"] for r in data["items"]] == ["Review 4", "Review 3", "Review 2", "Review 1", "Review 0"]
    assert data["can_review"] is False and data["mine"] is None
    page = await client.get(f"/shop/{product['slug']}/reviews")
    assert "3.6" in page.text and "5 reviews from verified buyers" in page.text
    assert "Log in</a> to write a review" in page.text
    api = (await client.get(f"/api/v1/products/{product['id']}/reviews")).json()
    assert api["rating"] == {"average": 3.6, "count": 5, "distribution": {"5": 2, "4": 1, "3": 1, "2": 0, "1": 1}}
    assert len(api["items"]) == 5


async def test_twenty_concurrent_reviews_by_different_buyers_are_exact():
    product = await make_product("Bike light")
    buyers = [await make_member(f"Rider {n}") for n in range(20)]
    for buyer in buyers:
        await make_order(buyer, [product], status="delivered")
    ratings = [(n % 5) + 1 for n in range(20)]
    await asyncio.gather(*(reviews.submit_review(b, product["id"], rating=r, title="Bright") for b, r in zip(buyers, ratings)))
    row = await _product_row(product["id"])
    assert row["rating_count"] == 20 and row["rating_sum"] == sum(ratings)
    assert row["rating_avg"] == pytest.approx(sum(ratings) / 20)
    assert await Review.count() == 20
    # the same buyers editing concurrently (and one buyer submitting ten times at once) stays exact
    await asyncio.gather(*(reviews.submit_review(b, product["id"], rating=5) for b in buyers[:10]),
                         *(reviews.submit_review(buyers[19], product["id"], rating=1) for _ in range(10)))
    expected = sum([5] * 10 + ratings[10:19] + [1])
    row = await _product_row(product["id"])
    assert row["rating_count"] == 20 and row["rating_sum"] == expected
    assert await Review.count() == 20
    points = await PointsEntry.count().where(PointsEntry.reason == "review")
    assert points == 20


async def test_hidden_review_leaves_the_average_and_disappears(client):
    product = await make_product("Wool beanie")
    good, bad = await make_member("Fair Reviewer"), await make_member("Spam Reviewer")
    for member in (good, bad):
        await make_order(member, [product])
    await reviews.submit_review(good, product["id"], rating=5, title="Cosy")
    spam = await reviews.submit_review(bad, product["id"], rating=1, title="Buy cheap watches at spam.example")
    assert (await _product_row(product["id"]))["rating_avg"] == 3.0
    member = await make_member("Not Staff")
    await login(client, member.email)
    refused = await client.post(f"/staff/moderation/review/{spam['id']}/decide",
                                data={"action": "remove", "ground": "rules", "statement": "xxxxxxxxxxxx",
                                      "_csrf_token": await token_of(client)})
    assert refused.status_code == 403
    staff = await make_member("Review Moderator", staff=True)
    client.cookies.clear()
    await login(client, staff.email)
    page = await client.get(f"/shop/{product['slug']}/reviews")
    assert f"/staff/moderation/review/{spam['id']}" in page.text
    token = await token_of(client, f"/staff/moderation/review/{spam['id']}")
    no_reason = await client.post(f"/staff/moderation/review/{spam['id']}/decide",
                                  data={"action": "remove", "ground": "rules", "statement": " ", "_csrf_token": token})
    assert no_reason.status_code == 400 and "Write the statement of reasons" in no_reason.text
    hidden = await client.post(f"/staff/moderation/review/{spam['id']}/decide",
                               data={"action": "remove", "ground": "rules", "statement": "Advertising, not a review",
                                     "_csrf_token": token})
    assert hidden.status_code == 303
    # hiding twice (a double click) changes nothing more
    await reviews.set_hidden(staff, spam["id"], hidden=True, reason="Advertising")
    assert await _product_row(product["id"]) == {"rating_count": 1, "rating_sum": 5, "rating_avg": 5.0}
    # the hidden review's points are taken back once, also after showing and hiding it again
    await reviews.set_hidden(staff, spam["id"], hidden=False)
    await reviews.set_hidden(staff, spam["id"], hidden=True, reason="Advertising again")
    reasons = [e["reason"] for e in await PointsEntry.select(PointsEntry.reason).where(PointsEntry.member == bad.id)]
    assert reasons.count("review") == 1 and reasons.count("review_removed") == 1
    client.cookies.clear()
    public = await client.get(f"/shop/{product['slug']}/reviews")
    assert "spam.example" not in public.text and "Cosy" in public.text
    # the author sees why
    await login(client, bad.email)
    own = await client.get(f"/shop/{product['slug']}/reviews")
    assert "Our team hid your review" in own.text and "Advertising" in own.text
    # editing a hidden review keeps it hidden and out of the average
    await reviews.submit_review(bad, product["id"], rating=2, title="Still spam")
    assert await _product_row(product["id"]) == {"rating_count": 1, "rating_sum": 5, "rating_avg": 5.0}
    await reviews.set_hidden(staff, spam["id"], hidden=False)
    assert await _product_row(product["id"]) == {"rating_count": 2, "rating_sum": 7, "rating_avg": 3.5}


async def test_hide_refused_for_members_in_the_service():
    product = await make_product("Mug")
    buyer = await make_member("Mug Buyer")
    await make_order(buyer, [product])
    review = await reviews.submit_review(buyer, product["id"], rating=4)
    with pytest.raises(Forbidden):
        await reviews.set_hidden(buyer, review["id"], hidden=True, reason="mine")
    with pytest.raises(FormError):
        await reviews.submit_review(buyer, product["id"], rating=6)


async def test_points_and_reviewer_badge_once():
    first, second = await make_product("Scarf"), await make_product("Gloves")
    buyer = await make_member("Prolific Reviewer")
    await make_order(buyer, [first, second])
    await reviews.submit_review(buyer, first["id"], rating=5)
    await reviews.submit_review(buyer, first["id"], rating=4, title="edited")
    await asyncio.gather(*(reviews.submit_review(buyer, first["id"], rating=3) for _ in range(5)))
    entries = await PointsEntry.select(PointsEntry.points).where(
        (PointsEntry.member == buyer.id) & (PointsEntry.reason == "review"))
    assert [e["points"] for e in entries] == [20]
    await reviews.submit_review(buyer, second["id"], rating=5)
    assert await PointsEntry.count().where((PointsEntry.member == buyer.id) & (PointsEntry.reason == "review")) == 2
    assert await MemberBadge.count().where((MemberBadge.member == buyer.id) & (MemberBadge.badge == "reviewer")) == 1


async def test_review_request_email_once_per_order_line_even_if_the_job_runs_twice():
    socks, jacket, mug = await make_product("Hiking socks"), await make_product("Shell jacket"), await make_product("Camp mug")
    anna, ben = await make_member("Anna Delivered"), await make_member("Ben Recent")
    await make_order(anna, [socks, jacket], delivered_days_ago=8)  # two lines: two emails
    await make_order(anna, [mug], status="shipped")  # not delivered: no email
    await make_order(ben, [socks], delivered_days_ago=2)  # too recent (review_request_days is 7)
    reviewed = await make_member("Cara Reviewed")
    await make_order(reviewed, [mug], delivered_days_ago=9)
    await reviews.submit_review(reviewed, mug["id"], rating=5)  # already reviewed: nothing to ask
    for _ in range(2):
        await enqueue("request_reviews", {}, unique_key=None)
        await drain()
        await reviews.enqueue_review_requests()
        await drain()
    emails = await EmailMessage.select(EmailMessage.recipient, EmailMessage.subject, EmailMessage.text_body).where(
        EmailMessage.kind == "review_request").order_by(EmailMessage.id)
    assert len(emails) == 2
    assert {e["subject"] for e in emails} == {"How do you like your Hiking socks?", "How do you like your Shell jacket?"}
    assert all(e["recipient"] == anna.email for e in emails)
    assert any(f"/shop/{socks['slug']}/reviews#write-review" in e["text_body"] for e in emails)
    # sending again by hand changes nothing either (the outbox key is per order line)
    line_ids = [r["id"] for r in await reviews.due_review_requests(utcnow())]
    assert [await reviews.send_review_request(line_id) for line_id in line_ids] == [False] * len(line_ids)
    assert await EmailMessage.count().where(EmailMessage.kind == "review_request") == 2


async def test_review_request_jobs_running_concurrently_send_once():
    product = await make_product("Trail bottle")
    buyers = [await make_member(f"Bottle Buyer {n}") for n in range(5)]
    for buyer in buyers:
        await make_order(buyer, [product], delivered_days_ago=8)
    lines = [r["id"] for r in await reviews.due_review_requests()]
    assert len(lines) == 5
    await asyncio.gather(*(reviews.send_review_request(line) for line in lines * 4),
                         *(reviews.enqueue_review_requests() for _ in range(4)))
    await drain()
    assert await EmailMessage.count().where(EmailMessage.kind == "review_request") == 5


async def test_a_backer_reviews_the_product_made_from_the_campaign_they_backed():
    """A funded campaign's product, published to the shop: its paid backers are verified buyers
    (their pre-order line names the campaign, not the product); an unpaid one is not."""
    from app.orders.tables import Order
    from tests.campaigns.helpers import make_campaign

    campaign_id, _campaign = await make_campaign(goal=1)
    product = await make_product("Backed rain hat")
    await Product.update({Product.campaign: campaign_id}).where(Product.id == product["id"])
    other = await make_product("Unrelated scarf")
    backer, unpaid = await make_member("Paid Backer"), await make_member("Cancelled Backer")
    for number, (member, status) in enumerate(((backer, "delivered"), (unpaid, "cancelled"))):
        await Order.insert(Order(number=f"CM-B{number:07d}", member=member.id, status=status, kind="preorder",
                                 subtotal=4900, total=4900, campaign_id=campaign_id, paid_at=utcnow()))
    await reviews.submit_review(backer, product["id"], rating=5, title="Worth the wait", body="")
    assert await Review.count().where(Review.product == product["id"]) == 1
    with pytest.raises(Forbidden, match="Only members who bought this product"):
        await reviews.submit_review(unpaid, product["id"], rating=4, title="", body="")
    with pytest.raises(Forbidden, match="Only members who bought this product"):
        await reviews.submit_review(backer, other["id"], rating=4, title="", body="")
