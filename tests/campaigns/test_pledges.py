"""Greenlight, pledging with saved cards, limits that are never oversold, changes, cancels."""

from __future__ import annotations

import asyncio

import pytest

from app.campaigns import service as campaigns
from app.campaigns.service import GreenlightTerms, VariantTerms
from app.campaigns.tables import Campaign, CampaignVariant, Pledge
from app.errors import Conflict, FormError
from app.ideas.tables import Idea
from app.mail.tables import EmailMessage
from tests.campaigns.helpers import make_campaign, pledge_with_card, save_card
from tests.factories import make_idea, make_member
from tests.support.audit import assert_audit_clean


async def test_greenlight_validates_terms_and_creates_a_live_campaign(stripe):
    staff = await make_member("Greenlight Staff", staff=True)
    author = await make_member("Lucky Author")
    idea_id = await make_idea(author, staff=staff)
    with pytest.raises(FormError) as error:
        await campaigns.greenlight(staff, idea_id, GreenlightTerms(price="abc", goal_units=0, duration_days=90,
                                                                   early_bird_price="900", early_bird_units=5,
                                                                   estimated_delivery=""))
    assert set(error.value.errors) >= {"price", "goal_units", "duration_days", "estimated_delivery"}
    assert await Campaign.count() == 0
    assert (await Idea.select(Idea.status).where(Idea.id == idea_id).first())["status"] == "voting"
    campaign_id, campaign = await make_campaign(staff=staff, author=await make_member("Other Author"),
                                                early_bird_price="400", early_bird_units=2)
    assert campaign["status"] == "live"  # the tests run without an early-access window
    assert campaign["current_price"] == 40000 and campaign["early_bird_left"] == 2
    assert [v["name"] for v in campaign["variants"]] == ["M", "L"]


async def test_pledge_with_saved_card_counts_and_emails(stripe):
    campaign_id, campaign = await make_campaign(goal=2)
    backer = await make_member("First Backer")
    pledge_id = await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"], quantity=2)
    pledge = await Pledge.select().where(Pledge.id == pledge_id).first()
    assert pledge["status"] == "active" and pledge["payment_method_id"].startswith("pm_")
    assert pledge["amount"] == 2 * 50000 and pledge["consent_version"] and "charged only if" in pledge["consent_text"]
    campaign = await campaigns.get_campaign(campaign_id)
    assert (campaign["pledged_units"], campaign["backers"], campaign["pledged_amount"]) == (2, 1, 100000)
    assert campaign["goal_reached"]
    email = await EmailMessage.select().where(EmailMessage.kind == "pledge_confirmed").first()
    assert email["recipient"] == backer.email
    # confirming twice changes nothing
    await campaigns.confirm_pledge(backer, pledge_id)
    assert (await campaigns.get_campaign(campaign_id))["pledged_units"] == 2


async def test_confirm_refuses_an_unsaved_card_and_another_members_pledge(stripe):
    campaign_id, campaign = await make_campaign()
    backer = await make_member("Careful Backer")
    other = await make_member("Other Member")
    start = await campaigns.start_pledge(backer, campaign_id, variant_id=campaign["variants"][0]["id"], quantity=1,
                                         consent=True)
    with pytest.raises(FormError) as error:
        await campaigns.confirm_pledge(backer, start.pledge_id)
    assert "not saved" in error.value.errors["card"]
    with pytest.raises(campaigns.NotFound):
        await campaigns.confirm_pledge(other, start.pledge_id)
    await save_card(start.client_secret)
    with pytest.raises(campaigns.NotFound):
        await campaigns.cancel_pledge(other, start.pledge_id)
    assert (await campaigns.confirm_pledge(backer, start.pledge_id))["status"] == "active"


async def test_pledge_rules(stripe):
    campaign_id, campaign = await make_campaign()
    unverified = await make_member("Unverified", verified=False)
    backer = await make_member("Rule Backer")
    variant = campaign["variants"][0]["id"]
    with pytest.raises(campaigns.Forbidden):
        await campaigns.start_pledge(unverified, campaign_id, variant_id=variant, quantity=1, consent=True)
    with pytest.raises(FormError) as error:
        await campaigns.start_pledge(backer, campaign_id, variant_id=variant, quantity=1, consent=False)
    assert "consent" in error.value.errors
    with pytest.raises(FormError):
        await campaigns.start_pledge(backer, campaign_id, variant_id=variant, quantity=0, consent=True)
    await campaigns.start_pledge(backer, campaign_id, variant_id=variant, quantity=1, consent=True)
    with pytest.raises(Conflict, match="already back"):
        await campaigns.start_pledge(backer, campaign_id, variant_id=variant, quantity=1, consent=True)


async def test_three_hundred_concurrent_pledges_never_oversell_a_limited_variant(stripe):
    campaign_id, campaign = await make_campaign(variants=[VariantTerms("Limited", 100), VariantTerms("Open")])
    limited = campaign["variants"][0]["id"]
    backers = [await make_member(f"Rush {n}") for n in range(300)]

    async def try_pledge(member):
        try:
            await campaigns.start_pledge(member, campaign_id, variant_id=limited, quantity=1, consent=True)
            return "ok"
        except Conflict as error:
            return error.message

    results = await asyncio.gather(*(try_pledge(m) for m in backers))
    assert results.count("ok") == 100
    assert all("Sold out" in r for r in results if r != "ok")
    variant = await CampaignVariant.select().where(CampaignVariant.id == limited).first()
    assert variant["reserved"] == 100
    assert await Pledge.count().where((Pledge.variant == limited) & (Pledge.status == "pending")) == 100
    await assert_audit_clean()


async def test_one_member_starting_five_pledges_at_once_gets_one(stripe):
    """Pledges start under a shared campaign lock; one member's starts still queue one at a time."""
    campaign_id, campaign = await make_campaign(variants=[VariantTerms("Open")])
    variant = campaign["variants"][0]["id"]
    member = await make_member("Double Clicker")

    async def try_pledge():
        try:
            await campaigns.start_pledge(member, campaign_id, variant_id=variant, quantity=1, consent=True)
            return "ok"
        except Conflict as error:
            return error.message

    results = await asyncio.gather(*(try_pledge() for _ in range(5)))
    assert results.count("ok") == 1
    assert all("already back" in r for r in results if r != "ok")
    assert await Pledge.count().where((Pledge.campaign == campaign_id) & (Pledge.member == member.id)) == 1
    variant_row = await CampaignVariant.select().where(CampaignVariant.id == variant).first()
    assert variant_row["reserved"] == 1


async def test_concurrent_edits_cannot_push_past_the_limit(stripe):
    campaign_id, campaign = await make_campaign(variants=[VariantTerms("Limited", 10), VariantTerms("Open")])
    limited, open_variant = campaign["variants"][0]["id"], campaign["variants"][1]["id"]
    backers = [await make_member(f"Editor {n}") for n in range(8)]
    pledges = [await pledge_with_card(m, campaign_id, open_variant, quantity=2) for m in backers]

    async def try_change(member, pledge_id):
        try:
            await campaigns.change_pledge(member, pledge_id, variant_id=limited, quantity=2)
            return True
        except Conflict:
            return False

    results = await asyncio.gather(*(try_change(m, p) for m, p in zip(backers, pledges, strict=True)))
    assert results.count(True) == 5
    variants = {v["id"]: v for v in await CampaignVariant.select()}
    assert variants[limited]["reserved"] == 10
    assert variants[open_variant]["reserved"] == 6
    campaign = await campaigns.get_campaign(campaign_id)
    assert campaign["pledged_units"] == 16 and campaign["backers"] == 8
    await assert_audit_clean()


async def test_early_bird_units_are_exact_and_priced(stripe):
    campaign_id, campaign = await make_campaign(early_bird_price="300", early_bird_units=3)
    variant = campaign["variants"][0]["id"]
    backers = [await make_member(f"Early {n}") for n in range(5)]
    starts = await asyncio.gather(*(campaigns.start_pledge(m, campaign_id, variant_id=variant, quantity=1, consent=True)
                                    for m in backers))
    amounts = sorted(s.amount for s in starts)
    assert amounts == [30000, 30000, 30000, 50000, 50000]
    row = await Campaign.select(Campaign.early_bird_taken).where(Campaign.id == campaign_id).first()
    assert row["early_bird_taken"] == 3
    # cancelling an early-bird pledge frees its early-bird unit
    cheap = next(s for s in starts if s.amount == 30000)
    owner = backers[starts.index(cheap)]
    await campaigns.cancel_pledge(owner, cheap.pledge_id)
    row = await Campaign.select(Campaign.early_bird_taken).where(Campaign.id == campaign_id).first()
    assert row["early_bird_taken"] == 2


async def test_change_and_cancel_move_the_counters_and_email(stripe):
    campaign_id, campaign = await make_campaign(goal=10)
    backer = await make_member("Changer")
    pledge_id = await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"], quantity=1)
    await campaigns.change_pledge(backer, pledge_id, variant_id=campaign["variants"][1]["id"], quantity=3)
    campaign = await campaigns.get_campaign(campaign_id)
    assert (campaign["pledged_units"], campaign["pledged_amount"]) == (3, 150000)
    await campaigns.cancel_pledge(backer, pledge_id)
    campaign = await campaigns.get_campaign(campaign_id)
    assert (campaign["pledged_units"], campaign["backers"], campaign["pledged_amount"]) == (0, 0, 0)
    kinds = [e["kind"] for e in await EmailMessage.select(EmailMessage.kind).where(EmailMessage.recipient == backer.email)]
    assert {"pledge_confirmed", "pledge_changed", "pledge_cancelled"} <= set(kinds)


async def test_early_access_is_for_insiders_first(stripe, monkeypatch):
    from app.accounts.tables import Member
    from app.settings import get_settings

    monkeypatch.setattr(get_settings(), "early_access_hours", 24)
    campaign_id, campaign = await make_campaign()
    assert campaign["status"] == "early_access"
    fan = await make_member("Regular Fan")
    insider = await make_member("Insider Ines")
    await Member.update({Member.points_lifetime: 6000}).where(Member.id == insider.id)
    from app.accounts.service import get_member

    insider = await get_member(insider.id)
    variant = campaign["variants"][0]["id"]
    with pytest.raises(campaigns.Forbidden, match="Early access is for Insiders"):
        await campaigns.start_pledge(fan, campaign_id, variant_id=variant, quantity=1, consent=True)
    await campaigns.start_pledge(insider, campaign_id, variant_id=variant, quantity=1, consent=True)
    # after the window everyone can pledge
    import datetime as dt

    from app.db import utcnow

    await Campaign.update({Campaign.early_access_ends_at: utcnow() - dt.timedelta(seconds=1)}).where(Campaign.id == campaign_id)
    await campaigns.advance_campaign(campaign_id)
    assert (await campaigns.get_campaign(campaign_id))["status"] == "live"
    await campaigns.start_pledge(fan, campaign_id, variant_id=variant, quantity=1, consent=True)


async def test_goal_crossed_under_concurrent_pledges_then_closed_once(stripe):
    from app.jobs import service as jobs

    campaign_id, campaign = await make_campaign(goal=10)
    backers = [await make_member(f"Crosser {n}") for n in range(12)]
    await asyncio.gather(*(pledge_with_card(b, campaign_id, campaign["variants"][0]["id"]) for b in backers))
    campaign = await campaigns.get_campaign(campaign_id)
    assert campaign["pledged_units"] == 12 and campaign["backers"] == 12 and campaign["goal_reached"]
    assert campaign["status"] == "live"  # goal reached early: still open until the deadline
    results = await asyncio.gather(*(campaigns.close_campaign(campaign_id, early=True) for _ in range(8)))
    assert [r for r in results if r] == ["funded"]
    await asyncio.gather(jobs.drain(), jobs.drain())
    assert await EmailMessage.count().where(EmailMessage.kind == "campaign_funded") == 12
    from app.points.tables import PointsEntry

    assert await PointsEntry.count().where(PointsEntry.reason == "idea_funded") == 1


async def test_campaign_lists_sort_in_sql_as_members_expect():
    from app.campaigns.tables import Campaign as CampaignTable

    staff = await make_member("Sort Staff", staff=True)
    made = []
    for units, goal, days in ((5, 10, 9), (12, 10, 3), (0, 10, 20), (9, 10, 5), (2000, 10, 7)):
        campaign_id, _ = await make_campaign(goal=goal, days=days, staff=staff)
        await CampaignTable.update({CampaignTable.pledged_units: units}).where(CampaignTable.id == campaign_id)
        made.append(campaign_id)
    rows = [campaigns.decorate(r) for r in await CampaignTable.select().where(CampaignTable.id.is_in(made))]
    expected = {
        "ending": [r["id"] for r in sorted(rows, key=lambda r: (r["ends_at"], r["id"]))],
        "funded": [r["id"] for r in sorted(rows, key=lambda r: (-r["percent"], r["id"]))],
        "almost": [r["id"] for r in sorted(rows, key=lambda r: (r["goal_reached"], -r["percent"], r["id"]))],
        "new": sorted(made, reverse=True),
    }
    for sort, ids in expected.items():
        assert [c["id"] for c in await campaigns.list_campaigns(sort=sort)] == ids, sort
        assert [c["id"] for c in await campaigns.list_campaigns(sort=sort, limit=2)] == ids[:2], sort
    assert expected["funded"][0] == made[4]  # 20,000 % is shown as 999 % and still sorts first


async def test_a_confirm_that_loses_the_race_sends_no_confirmation(stripe, monkeypatch):
    """The confirmation email is written before the campaign lock; when the pledge turns out to be
    no longer pending (cancelled, or confirmed by another request) it is rolled back, not sent."""
    campaign_id, campaign = await make_campaign(variants=[VariantTerms("Open")])
    member = await make_member("Racing Rita")
    start = await campaigns.start_pledge(member, campaign_id, variant_id=campaign["variants"][0]["id"], quantity=1,
                                         consent=True)
    await save_card(start.client_secret)
    real_move = campaigns.move_pledge

    async def cancelled_meanwhile(pledge_id, to, **kwargs):
        await real_move(pledge_id, campaigns.PledgeStatus.CANCELLED, message="Cancelled by the backer")
        return await real_move(pledge_id, to, **kwargs)  # PENDING expected: None

    monkeypatch.setattr(campaigns, "move_pledge", cancelled_meanwhile)
    pledge = await campaigns.confirm_pledge(member, start.pledge_id)
    assert pledge["status"] == "pending"  # the cancel ran inside the rolled-back transaction
    assert await EmailMessage.count().where(EmailMessage.kind == "pledge_confirmed") == 0
    row = await Campaign.select(Campaign.backers, Campaign.pledged_units).where(Campaign.id == campaign_id).first()
    assert (row["backers"], row["pledged_units"]) == (0, 0)
    monkeypatch.undo()
    confirmed = await campaigns.confirm_pledge(member, start.pledge_id)  # the real confirm still works
    assert confirmed["status"] == "active"
    assert await EmailMessage.count().where(EmailMessage.kind == "pledge_confirmed") == 1


async def test_a_confirmed_pledge_drops_its_expiry_job_and_a_pending_one_keeps_it(stripe):
    """A pending pledge is cancelled 30 minutes on if its card is never saved; once it is
    confirmed that job would find nothing to do, so it is dropped with the confirmation."""
    import datetime as dt

    from app.jobs.service import run_due_jobs
    from app.jobs.tables import Job

    campaign_id, campaign = await make_campaign()
    variant = campaign["variants"][0]["id"]
    backer, waverer = await make_member("Quick Backer"), await make_member("Slow Backer")
    confirmed = await pledge_with_card(backer, campaign_id, variant)
    pending = await campaigns.start_pledge(waverer, campaign_id, variant_id=variant, quantity=1, consent=True)
    keys = [r["unique_key"] for r in await Job.select(Job.unique_key).where(
        (Job.kind == "expire_pending_pledge") & (Job.status == "queued"))]
    assert keys == [f"expire_pending_pledge:{pending.pledge_id}"]
    await Job.update({Job.run_at: Job.run_at - dt.timedelta(minutes=31)}).where(Job.kind == "expire_pending_pledge")
    await run_due_jobs()
    statuses = {r["id"]: r["status"] for r in await Pledge.select(Pledge.id, Pledge.status)}
    assert statuses == {confirmed: "active", pending.pledge_id: "cancelled"}
