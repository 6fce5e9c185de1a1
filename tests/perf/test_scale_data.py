"""The bulk loader behind `crowdmade demo --scale large|small` (and `make bench`), at a tiny
scale so CI covers it on both databases without the 10-minute run: counts, every state, the
counters the audit checks, reuse, and pages that render from the loaded rows."""

from __future__ import annotations

from app.accounts import service as accounts
from app.accounts.tables import Member
from app.campaigns.tables import Campaign, CampaignVariant, Pledge
from app.demo_scale import BENCH_PASSWORD, SCALES, load_scale, marker_email, member_email
from app.ideas.service import IdeaStatus, hot_score
from app.ideas.tables import Idea, Vote
from app.orders.tables import Order, OrderLine
from app.points.tables import PointsEntry
from app.shop.tables import Product, ProductVariant


async def test_tiny_scale_loads_every_state_with_exact_counters(client):
    counts = SCALES["tiny"]
    result = await load_scale("tiny", manage_database=False, progress=False)
    assert result["loaded"] and result["violations"] == []  # the audit ran and found nothing

    assert await Member.count() == counts.members + 1  # + the bench staff marker
    assert await Idea.count() == counts.ideas
    assert await Vote.count() == counts.votes
    assert await Campaign.count() == counts.campaigns
    assert await Pledge.count() == counts.pledges
    assert await Product.count() == counts.products
    assert await Order.count().where(Order.kind == "shop") == counts.orders
    assert await OrderLine.count() >= counts.orders
    assert {r["status"] for r in await Idea.select(Idea.status)} == {s.value for s in IdeaStatus}
    assert {r["status"] for r in await Campaign.select(Campaign.status)} >= {"live", "failed", "in_production"}

    # The counters the pages show, against the rows (independently of the audit).
    for idea in await Idea.select(Idea.id, Idea.vote_count, Idea.hot_score, Idea.voting_starts_at):
        assert idea["vote_count"] == await Vote.count().where(Vote.idea == idea["id"])
        if idea["voting_starts_at"] is not None:
            assert abs(idea["hot_score"] - hot_score(idea["vote_count"], idea["voting_starts_at"])) < 1e-3
    for member in await Member.select(Member.id, Member.points_balance):
        entries = await PointsEntry.select(PointsEntry.points).where(PointsEntry.member == member["id"])
        assert member["points_balance"] == sum(e["points"] for e in entries)
    for campaign in await Campaign.select(Campaign.id, Campaign.pledged_units, Campaign.backers):
        counted = await Pledge.select(Pledge.quantity).where(
            (Pledge.campaign == campaign["id"]) & Pledge.status.is_in(["active", "paid", "payment_failed", "dropped",
                                                                        "released", "charging"]))
        assert campaign["pledged_units"] == sum(p["quantity"] for p in counted)
        assert campaign["backers"] == len(counted)
    for variant in await CampaignVariant.select().where(CampaignVariant.limit_units.is_not_null()):
        assert variant["reserved"] <= variant["limit_units"]
    assert all(v["stock"] >= 0 for v in await ProductVariant.select(ProductVariant.stock))

    # Bench members can log in; a second load of the same scale reuses the data.
    member = await accounts.authenticate(email=member_email("tiny", 1), password=BENCH_PASSWORD)
    assert member.id
    assert await Member.exists().where(Member.email == marker_email("tiny"))
    again = await load_scale("tiny", manage_database=False, progress=False)
    assert not again["loaded"] and again["violations"] == []
    assert await Idea.count() == counts.ideas

    # Pages render from the bulk rows.
    live = await Campaign.select(Campaign.idea).where(Campaign.status == "live").first()
    for path in ("/", "/ideas", "/ideas?page=2", f"/ideas/{live['idea']}", "/ideas?q=jacket"):
        response = await client.get(path)
        assert response.status_code == 200, path
