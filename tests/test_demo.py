"""The demo data shows every capability alive, and its numbers agree with the rows."""

from __future__ import annotations

from app.accounts import service as accounts
from app.accounts.tables import Member
from app.audit import format_report, run_audit
from app.campaigns.tables import Campaign, Pledge
from app.demo import DEMO_MEMBER, DEMO_STAFF, DEMO_SWEDISH, _free_identity, _free_tag, load_demo
from app.ideas.service import IdeaStatus
from app.ideas.tables import Idea, Vote
from app.orders.tables import Order, Refund, Withdrawal
from app.points.tables import PointsEntry


async def test_demo_covers_every_state_and_is_consistent(stripe, client):
    assert await load_demo(seed=42, manage_database=False, images=False, progress=False)
    assert not await load_demo(seed=42, manage_database=False, images=False, progress=False)  # once
    statuses = {r["status"] for r in await Idea.select(Idea.status)}
    assert statuses == {s.value for s in IdeaStatus}
    campaign_states = {r["status"] for r in await Campaign.select(Campaign.status)}
    # The funded campaign was charged and its pre-orders went into production (the shop's demo).
    assert {"scheduled", "early_access", "live", "in_production", "failed"} <= campaign_states
    for idea in await Idea.select(Idea.id, Idea.vote_count):
        assert idea["vote_count"] == await Vote.count().where(Vote.idea == idea["id"])
    for member in await Member.select(Member.id, Member.points_balance):
        entries = await PointsEntry.select(PointsEntry.points).where(PointsEntry.member == member["id"])
        assert member["points_balance"] == sum(e["points"] for e in entries)
    for campaign in await Campaign.select().where(Campaign.status.is_in(["live", "early_access"])):
        active = await Pledge.select(Pledge.quantity).where((Pledge.campaign == campaign["id"]) & (Pledge.status == "active"))
        assert campaign["pledged_units"] == sum(p["quantity"] for p in active)
    assert await Order.count() > 0
    from app.campaigns.tables import StretchGoal
    from app.mail.tables import EmailMessage

    assert await StretchGoal.count().where(StretchGoal.reached_at.is_not_null()) >= 3  # unlocked by the demo's pledges
    assert await StretchGoal.count().where(StretchGoal.reached_at.is_null()) >= 2  # still to reach
    assert await EmailMessage.count().where(EmailMessage.kind == "stretch_goal_reached") > 0
    from app.campaigns.tables import DeliveryUpdate

    kinds = [r["kind"] for r in await DeliveryUpdate.select(DeliveryUpdate.kind).order_by(DeliveryUpdate.id)]
    assert kinds == ["milestone", "milestone", "date", "wave"]  # the campaign in production's delivery timeline
    assert await Order.count().where(Order.wave == 1) == 3
    assert await EmailMessage.count().where(EmailMessage.kind == "delivery_update") > 0
    from app.community.tables import CampaignUpdate, Comment, Follow
    from app.notifications.tables import Notification
    from app.points.tables import MemberBadge

    for table in (Comment, Follow, CampaignUpdate, Notification, MemberBadge):
        assert await table.count() > 0, table
    assert (await accounts.authenticate(email=DEMO_MEMBER[0], password=DEMO_MEMBER[1])).display_name == "Maja Member"
    assert (await accounts.authenticate(email=DEMO_STAFF[0], password=DEMO_STAFF[1])).is_staff
    svea = await accounts.authenticate(email=DEMO_SWEDISH[0], password=DEMO_SWEDISH[1])
    assert (svea.display_name, svea.locale) == ("Svea Medlem", "sv")
    assert await Member.count().where(Member.locale == "sv") >= 10
    demo = await accounts.authenticate(email=DEMO_MEMBER[0], password=DEMO_MEMBER[1])
    own = {r["status"]: r for r in await Idea.select(Idea.status, Idea.vote_count).where(Idea.author == demo.id)}
    assert {"draft", "submitted", "changes_requested", "voting"} <= set(own)
    assert own["voting"]["vote_count"] > 0
    assert await Vote.count().where(Vote.member == demo.id) > 0
    await _assert_shop(client, demo)
    report = await run_audit()
    assert report.ok, format_report(report)


async def _assert_shop(client, demo) -> None:
    """Products in every status with stock, orders at every stage paid through checkout, reviews,
    questions, wishlists and collections featured on the home page."""
    from app.orders.tables import OrderPayment
    from app.shop.catalog import LOW_STOCK
    from app.shop.collections import featured_collections
    from app.shop.tables import (
        Collection,
        Product,
        ProductQuestion,
        ProductVariant,
        Review,
        Voucher,
        WishlistItem,
    )
    from tests.factories import login

    products = await Product.select(Product.id, Product.status, Product.campaign, Product.rating_count)
    assert {p["status"] for p in products} == {"active", "draft", "hidden", "archived"}
    active = [p["id"] for p in products if p["status"] == "active"]
    assert len(active) >= 10 and any(p["campaign"] for p in products if p["status"] == "active")
    variants = await ProductVariant.select().where(ProductVariant.product.is_in(active))
    for product_id in active:
        assert 2 <= len([v for v in variants if v["product"] == product_id]) <= 4
        assert any(v["stock"] > 0 for v in variants if v["product"] == product_id)
    assert any(0 < v["stock"] <= LOW_STOCK for v in variants) and any(v["stock"] == 0 for v in variants)

    orders = await Order.select().where(Order.kind == "shop")
    assert {"paid", "shipped", "delivered", "refunded", "cancelled"} <= {o["status"] for o in orders}
    assert len(orders) >= 15
    for order in orders:  # every one paid for real, through checkout and Stripe
        assert order["paid_at"] is not None and order["payment_intent_id"].startswith("pi_")
        assert await OrderPayment.count().where((OrderPayment.order == order["id"]) & (OrderPayment.status == "paid")) == 1
        if order["status"] in ("shipped", "delivered"):
            assert order["carrier"] and order["tracking_number"]
    assert any(o["status"] == "refunded" and o["refunded"] == o["total"] for o in orders)
    assert any(o["status"] == "cancelled" and o["stock_released"] for o in orders)
    mine = [o for o in orders if o["member"] == demo.id]
    assert {"paid", "shipped", "delivered"} <= {o["status"] for o in mine}
    assert any(0 < o["refunded"] < o["total"] for o in mine)
    voucher = await Voucher.select().where(Voucher.member == demo.id).first()
    assert voucher["status"] == "spent" and voucher["order_id"] in {o["id"] for o in mine}
    assert await Order.count().where((Order.kind == "preorder") & (Order.status == "in_production")) > 0
    # A buyer withdrew from one item of a delivered order: refunded, and the parcel back in stock.
    withdrawn = await Withdrawal.select(Withdrawal.amount, Withdrawal.goods_returned_at)
    assert len(withdrawn) == 1 and withdrawn[0]["amount"] > 0 and withdrawn[0]["goods_returned_at"] is not None
    assert await Refund.select(Refund.status).where(Refund.id == (await Withdrawal.select(
        Withdrawal.refund_id).first())["refund_id"]).first() == {"status": "succeeded"}
    assert any(v["made_to_order"] for v in variants)  # engraved to order: no right of withdrawal
    beanie = await Product.select(Product.slug).where(Product.name == "Recycled wool beanie").first()
    page = await client.get(f"/shop/{beanie['slug']}")
    assert "−15%" in page.text and "Lowest price in the 30 days before: 329,00" in page.text

    reviews = await Review.select()
    assert len({r["product"] for r in reviews if not r["hidden"]}) >= 4
    assert len({r["rating"] for r in reviews}) >= 4
    assert any(r["hidden"] and r["hidden_reason"] for r in reviews)
    delivered = {o["id"] for o in mine if o["status"] == "delivered"}
    assert any(r["member"] == demo.id for r in reviews) and delivered
    for product in products:
        assert product["rating_count"] == len([r for r in reviews if r["product"] == product["id"] and not r["hidden"]])
    assert await ProductQuestion.count().where(ProductQuestion.answer != "") >= 3

    assert await WishlistItem.count().where(WishlistItem.product.is_not_null()) > 0
    assert await WishlistItem.count().where(WishlistItem.idea.is_not_null()) > 0
    assert await Member.exists().where((Member.id == demo.id) & Member.wishlist_public.eq(True))

    featured = await featured_collections()
    assert [c["home_position"] for c in featured] == sorted(c["home_position"] for c in featured) and len(featured) == 2
    for collection in featured:
        assert {"product", "idea"} <= {item["kind"] for item in collection["items"]}
    assert await Collection.count().where(Collection.published.eq(False)) == 1
    home = (await client.get("/")).text
    assert home.index(featured[0]["title"]) < home.index(featured[1]["title"])
    assert "Everyday merino tee" in (await client.get("/shop")).text
    await login(client, DEMO_MEMBER[0], DEMO_MEMBER[1])
    page = (await client.get("/orders")).text
    assert all(o["number"] in page for o in mine)


async def test_demo_reset_picks_free_emails_and_handles():
    """--reset on a database that already holds demo data (twice, or with real members) never collides."""
    from tests.factories import make_member

    async def member_with(email: str):
        member = await make_member()
        await Member.update({Member.email: email}).where(Member.id == member.id)
        return member

    assert await _free_tag() == ""
    await member_with(DEMO_MEMBER[0])
    await member_with("member-2@crowdmade.test")
    assert await _free_tag() == "-3"
    taken = await member_with("elias.1-3@crowdmade.test")
    assert await _free_identity("elias.1-3@crowdmade.test", "elias-1-3") == ("elias.1-3-2@crowdmade.test", "elias-1-3-2")
    assert await _free_identity("new@crowdmade.test", taken.handle) == ("new-2@crowdmade.test", f"{taken.handle}-2")
