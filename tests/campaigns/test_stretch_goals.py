"""Stretch goals: staff define them, pledges unlock them exactly once (also under a concurrent
surge), backers hear of it by email and in the bell, the page shows it, and it never locks again."""

from __future__ import annotations

import asyncio

import pytest

from app.campaigns import live, stretch
from app.campaigns import service as campaigns
from app.campaigns.tables import Campaign, CampaignEvent, StretchGoal
from app.errors import Conflict, FormError
from app.jobs import service as jobs
from app.mail.tables import EmailMessage
from app.notifications.tables import Notification
from tests.campaigns.helpers import make_campaign, pledge_with_card
from tests.campaigns.test_campaigns_http import _bearer
from tests.factories import csrf_from, login, make_member
from tests.support.audit import assert_audit_clean


async def test_a_surge_unlocks_each_goal_once_and_every_backer_hears_once(stripe):
    staff = await make_member("Stretch Staff", staff=True)
    campaign_id, campaign = await make_campaign(goal=3, staff=staff)
    variant = campaign["variants"][0]["id"]
    await stretch.add_goal(staff, campaign_id, stretch.GoalInput("units", "6", "A second colour"))
    await stretch.add_goal(staff, campaign_id, stretch.GoalInput("backers", "8", "Reflective trim"))
    await stretch.add_goal(staff, campaign_id, stretch.GoalInput("amount", "100000", "Organic cotton"))  # 100,000 kr
    backers = [await make_member(f"Surger {n}") for n in range(10)]
    await asyncio.gather(*(pledge_with_card(b, campaign_id, variant) for b in backers))
    goals = {g["title"]: g for g in (await campaigns.get_campaign(campaign_id))["stretch_goals"]}
    assert goals["A second colour"]["reached"] and goals["Reflective trim"]["reached"]
    assert not goals["Organic cotton"]["reached"] and goals["Organic cotton"]["current"] == 500_000
    assert (await Campaign.select(Campaign.stretch_open).where(Campaign.id == campaign_id).first())["stretch_open"] == 1
    events = await CampaignEvent.select(CampaignEvent.message).where(
        (CampaignEvent.campaign == campaign_id) & (CampaignEvent.to_status == "stretch_goal"))
    assert sorted(e["message"] for e in events) == ["Stretch goal reached: A second colour",
                                                    "Stretch goal reached: Reflective trim"]
    await asyncio.gather(jobs.drain(), jobs.drain())
    emails = await EmailMessage.select(EmailMessage.recipient, EmailMessage.subject).where(
        EmailMessage.kind == "stretch_goal_reached")
    # each goal: every backer who had pledged by the time the job ran (all 10), once each
    assert len(emails) == 20 and len({(e["recipient"], e["subject"]) for e in emails}) == 20
    assert {b.email for b in backers} == {e["recipient"] for e in emails}
    assert any("A second colour" in e["subject"] for e in emails)
    bells = await Notification.count().where(Notification.title.like("%Stretch goal unlocked%"))
    assert bells == 20
    await assert_audit_clean()


async def test_a_cancelled_pledge_never_locks_a_goal_again_and_a_reached_goal_stays(stripe):
    staff = await make_member("Lock Staff", staff=True)
    campaign_id, campaign = await make_campaign(goal=5, staff=staff)
    goal_id = await stretch.add_goal(staff, campaign_id, stretch.GoalInput("units", "2", "Gift box"))
    backer = await make_member("Big Backer")
    async with live.subscribe(campaign_id) as page:
        pledge_id = await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"], quantity=2)
        assert await asyncio.wait_for(page.get(), timeout=5) == campaign_id  # the open page refreshes
    await campaigns.cancel_pledge(backer, pledge_id)
    campaign = await campaigns.get_campaign(campaign_id)
    assert campaign["pledged_units"] == 0 and campaign["stretch_goals"][0]["reached"]
    with pytest.raises(Conflict):
        await stretch.remove_goal(staff, campaign_id, goal_id)
    assert await StretchGoal.count().where(StretchGoal.campaign == campaign_id) == 1
    # a goal already met when it is added unlocks at once
    other = await make_member("Second Backer")
    await pledge_with_card(other, campaign_id, campaign["variants"][0]["id"], quantity=1)
    met = await stretch.add_goal(staff, campaign_id, stretch.GoalInput("backers", "1", "Thank-you card"))
    assert (await StretchGoal.select(StretchGoal.reached_at).where(StretchGoal.id == met).first())["reached_at"]
    open_id = await stretch.add_goal(staff, campaign_id, stretch.GoalInput("units", "50", "Third colour"))
    await stretch.remove_goal(staff, campaign_id, open_id)
    assert (await Campaign.select(Campaign.stretch_open).where(Campaign.id == campaign_id).first())["stretch_open"] == 0


async def test_bad_goals_get_messages_by_the_field_and_nothing_is_written(stripe):
    staff = await make_member("Careful Staff", staff=True)
    campaign_id, _ = await make_campaign(staff=staff)
    with pytest.raises(FormError) as error:
        await stretch.add_goal(staff, campaign_id, stretch.GoalInput("colours", "-3", "x", "y" * 1001))
    assert set(error.value.errors) == {"metric", "threshold", "title", "description"}
    with pytest.raises(FormError) as error:
        await stretch.add_goal(staff, campaign_id, stretch.GoalInput("amount", "12.345", "Zipper pulls"))
    assert "kronor" in error.value.errors["threshold"]
    await stretch.add_goal(staff, campaign_id, stretch.GoalInput("units", "10", "Zipper pulls"))
    with pytest.raises(FormError) as error:
        await stretch.add_goal(staff, campaign_id, stretch.GoalInput("units", "10", "Other pulls"))
    assert "already a goal" in error.value.errors["threshold"]
    assert await StretchGoal.count().where(StretchGoal.campaign == campaign_id) == 1
    await campaigns.close_campaign(campaign_id, early=True)
    with pytest.raises(Conflict):
        await stretch.add_goal(staff, campaign_id, stretch.GoalInput("units", "20", "Too late"))


async def test_staff_pages_and_the_campaign_page_show_goals(client, stripe):
    staff = await make_member("Page Staff", staff=True)
    campaign_id, campaign = await make_campaign(goal=2, staff=staff)
    await login(client, staff.email)
    dashboard = await client.get(f"/staff/campaigns/{campaign_id}")
    assert "No stretch goals yet." in dashboard.text
    token = csrf_from(dashboard.text)
    bad = await client.post(f"/staff/campaigns/{campaign_id}/stretch-goals", data={
        "metric": "units", "threshold": "lots", "title": "", "_csrf_token": token})
    assert bad.status_code == 400 and "Give a whole number above zero." in bad.text
    assert "Give the goal a name of 3 to 120 characters." in bad.text and 'value="lots"' in bad.text
    ok = await client.post(f"/staff/campaigns/{campaign_id}/stretch-goals", data={
        "metric": "units", "threshold": "1", "title": "Glow-in-the-dark logo", "description": "Night rides.",
        "_csrf_token": token})
    assert ok.status_code == 303
    await pledge_with_card(await make_member("Page Backer"), campaign_id, campaign["variants"][0]["id"])
    page = await client.get(f"/ideas/{campaign['idea']}")
    assert 'data-testid="stretch-goals"' in page.text and "Glow-in-the-dark logo" in page.text
    assert "Unlocked" in page.text and "Night rides." in page.text
    fragment = await client.get(f"/campaigns/{campaign_id}/progress")  # what the live stream sends
    assert "Glow-in-the-dark logo" in fragment.text and "Unlocked" in fragment.text
    dashboard = await client.get(f"/staff/campaigns/{campaign_id}")
    assert "Unlocked" in dashboard.text and "/delete" not in dashboard.text  # a reached goal has no Remove


async def test_the_api_adds_lists_and_refuses(client, stripe):
    staff = await make_member("Api Staff", staff=True)
    fan = await make_member("Api Fan")
    campaign_id, _ = await make_campaign(goal=2, staff=staff)
    staff_headers, fan_headers = await _bearer(client, staff), await _bearer(client, fan)
    url = f"/api/v1/staff/campaigns/{campaign_id}/stretch-goals"
    assert (await client.post(url, json={"metric": "units", "threshold": 5, "title": "Nope"},
                              headers=fan_headers)).status_code == 403
    bad = await client.post(url, json={"metric": "units", "threshold": 0, "title": "Zero"}, headers=staff_headers)
    assert bad.status_code == 400 and "threshold" in bad.json()["extra"]["errors"]
    made = await client.post(url, json={"metric": "amount", "threshold": "5000", "title": "Embroidery"},
                             headers=staff_headers)
    assert made.status_code == 201
    goal = made.json()["stretch_goals"][0]
    assert goal["threshold"] == 500_000 and goal["reached"] is False and goal["metric"] == "amount"
    shown = (await client.get(f"/api/v1/campaigns/{campaign_id}")).json()
    assert shown["stretch_goals"][0]["title"] == "Embroidery"
    gone = await client.delete(f"{url}/{goal['id']}", headers=staff_headers)
    assert gone.status_code == 200 and gone.json()["stretch_goals"] == []
    assert (await client.delete(f"{url}/{goal['id']}", headers=staff_headers)).status_code == 404


async def test_the_audit_names_a_locked_goal_its_counters_reached(stripe):
    from app.audit import run_audit
    from app.db import raw

    staff = await make_member("Audit Stretch Staff", staff=True)
    campaign_id, campaign = await make_campaign(goal=5, staff=staff)
    await stretch.add_goal(staff, campaign_id, stretch.GoalInput("units", "3", "Patch kit"))
    await pledge_with_card(await make_member("Audit Backer"), campaign_id, campaign["variants"][0]["id"], quantity=1)
    assert (await run_audit()).ok
    await raw("UPDATE campaign SET pledged_units = 3 WHERE id = {}", campaign_id)  # counted without the unlock
    await raw("UPDATE pledge SET quantity = 3 WHERE campaign = {}", campaign_id)
    await raw("UPDATE campaign_variant SET reserved = 3 WHERE campaign = {} AND reserved = 1", campaign_id)
    broken = {(v.check, v.subject) for v in (await run_audit()).violations}
    assert broken == {("stretch_goals", f"campaign {campaign_id}")}
