"""The demo data shows every capability alive, and its numbers agree with the rows."""

from __future__ import annotations

from app.accounts import service as accounts
from app.accounts.tables import Member
from app.audit import format_report, run_audit
from app.campaigns.tables import Campaign, Pledge
from app.demo import DEMO_MEMBER, DEMO_STAFF, _free_identity, _free_tag, load_demo
from app.ideas.service import IdeaStatus
from app.ideas.tables import Idea, Vote
from app.orders.tables import Order
from app.points.tables import PointsEntry


async def test_demo_covers_every_state_and_is_consistent(stripe):
    assert await load_demo(seed=42, manage_database=False, images=False, progress=False)
    assert not await load_demo(seed=42, manage_database=False, images=False, progress=False)  # once
    statuses = {r["status"] for r in await Idea.select(Idea.status)}
    assert statuses == {s.value for s in IdeaStatus}
    campaign_states = {r["status"] for r in await Campaign.select(Campaign.status)}
    assert {"scheduled", "early_access", "live", "charging", "failed"} <= campaign_states
    for idea in await Idea.select(Idea.id, Idea.vote_count):
        assert idea["vote_count"] == await Vote.count().where(Vote.idea == idea["id"])
    for member in await Member.select(Member.id, Member.points_balance):
        entries = await PointsEntry.select(PointsEntry.points).where(PointsEntry.member == member["id"])
        assert member["points_balance"] == sum(e["points"] for e in entries)
    for campaign in await Campaign.select().where(Campaign.status.is_in(["live", "early_access"])):
        active = await Pledge.select(Pledge.quantity).where((Pledge.campaign == campaign["id"]) & (Pledge.status == "active"))
        assert campaign["pledged_units"] == sum(p["quantity"] for p in active)
    assert await Order.count() > 0
    from app.community.tables import CampaignUpdate, Comment, Follow
    from app.notifications.tables import Notification
    from app.points.tables import MemberBadge

    for table in (Comment, Follow, CampaignUpdate, Notification, MemberBadge):
        assert await table.count() > 0, table
    assert (await accounts.authenticate(email=DEMO_MEMBER[0], password=DEMO_MEMBER[1])).display_name == "Maja Member"
    assert (await accounts.authenticate(email=DEMO_STAFF[0], password=DEMO_STAFF[1])).is_staff
    demo = await accounts.authenticate(email=DEMO_MEMBER[0], password=DEMO_MEMBER[1])
    own = {r["status"]: r for r in await Idea.select(Idea.status, Idea.vote_count).where(Idea.author == demo.id)}
    assert {"draft", "submitted", "changes_requested", "voting"} <= set(own)
    assert own["voting"]["vote_count"] > 0
    assert await Vote.count().where(Vote.member == demo.id) > 0
    report = await run_audit()
    assert report.ok, format_report(report)


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
