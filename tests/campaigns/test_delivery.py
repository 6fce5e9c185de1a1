"""Delivery trust: the public delivery timeline (milestones, a new estimated delivery with its
reason, shipping waves), each waiting pre-order's place in the queue, the backer report (CSV)
and tracking numbers imported from a CSV file. Both databases."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json

from app.accounts.tables import Member
from app.audit import run_audit
from app.campaigns import delivery
from app.campaigns.events import DeliveryPosted
from app.campaigns.tables import Campaign, DeliveryUpdate
from app.jobs import service as jobs
from app.mail.tables import EmailMessage
from app.notifications.tables import Notification
from app.orders import fulfilment
from app.orders.tables import Order
from tests.campaigns.test_campaigns_http import _bearer
from tests.factories import csrf_from, login, make_member
from tests.orders.helpers import ADDRESS, make_preorders
from tests.support.audit import assert_audit_clean


async def _idea_of(campaign_id: int) -> int:
    return (await Campaign.select(Campaign.idea).where(Campaign.id == campaign_id).first())["idea"]


async def _staff_post(client, campaign_id: int, action: str, data: dict):
    page = await client.get(f"/staff/campaigns/{campaign_id}")
    assert page.status_code == 200, page.text[:300]
    return await client.post(f"/staff/campaigns/{campaign_id}/delivery/{action}",
                             data={**data, "_csrf_token": csrf_from(page.text)})


async def test_staff_post_a_milestone_and_a_later_date_and_each_backer_is_told_once(client, stripe):
    backers = [await make_member("Timeline Fan"), await make_member("Tidslinje Fan")]
    await Member.update({Member.locale: "sv"}).where(Member.id == backers[1].id)
    staff = await make_member("Timeline Staff", staff=True)
    made = await make_preorders(backers, staff=staff)
    campaign_id = made["campaign_id"]
    before = (await Campaign.select(Campaign.estimated_delivery).where(Campaign.id == campaign_id).first())[
        "estimated_delivery"]
    await login(client, staff.email)
    idea_page = f"/ideas/{await _idea_of(campaign_id)}"
    assert 'id="delivery"' not in (await client.get(idea_page)).text  # nothing posted yet

    # bad input: a message by the field, nothing written
    bad = await _staff_post(client, campaign_id, "milestones", {"title": "ok", "body": "x" * 2001})
    assert bad.status_code == 400
    assert "Give the milestone a title of 3 to 120 characters." in bad.text
    assert "Keep the text under 2000 characters." in bad.text
    past = await _staff_post(client, campaign_id, "date", {"new_date": "2020-01-01", "reason": "short"})
    assert past.status_code == 400
    assert "Choose a date after today and within three years." in past.text
    assert "Tell backers why, in 10 to 1000 characters." in past.text
    garbled = await _staff_post(client, campaign_id, "date", {"new_date": "next spring", "reason": "x" * 20})
    assert garbled.status_code == 400 and "Use a date like 2027-03-01." in garbled.text
    assert await DeliveryUpdate.count() == 0
    assert (await Campaign.select(Campaign.estimated_delivery).where(Campaign.id == campaign_id).first())[
        "estimated_delivery"] == before

    posted = await _staff_post(client, campaign_id, "milestones",
                               {"title": "Sample approved", "body": "The knit is right; the factory starts Monday."})
    assert posted.status_code == 303
    later = before + dt.timedelta(days=30)
    moved = await _staff_post(client, campaign_id, "date", {
        "new_date": later.isoformat(), "reason": "The yarn dyer is three weeks late with the second colour."})
    assert moved.status_code == 303
    assert (await Campaign.select(Campaign.estimated_delivery).where(Campaign.id == campaign_id).first())[
        "estimated_delivery"] == later
    same = await _staff_post(client, campaign_id, "date", {"new_date": later.isoformat(), "reason": "x" * 20})
    assert same.status_code == 400 and "That is already the estimated delivery date." in same.text

    page = (await client.get(idea_page)).text
    assert 'data-testid="delivery-timeline"' in page
    assert "Sample approved" in page and "the factory starts Monday" in page
    assert "Estimated delivery moved from" in page and "The yarn dyer is three weeks late" in page
    assert 'data-testid="eta-moved"' in page  # the pledge panel links to why
    assert page.index("Estimated delivery moved from") < page.index("Sample approved")  # newest first

    await jobs.drain()
    emails = await EmailMessage.select().where(EmailMessage.kind == "delivery_update").order_by(EmailMessage.id)
    assert len(emails) == 4  # two posts x two backers
    english = [e for e in emails if e["recipient"] == backers[0].email]
    swedish = [e for e in emails if e["recipient"] == backers[1].email]
    assert any("Sample approved" in e["subject"] for e in english)
    assert any("new estimated delivery" in e["subject"] and "The yarn dyer" in e["text_body"] for e in english)
    assert any("nytt beräknat leveransdatum" in e["subject"] for e in swedish), [e["subject"] for e in swedish]
    assert await Notification.count().where(Notification.member == backers[0].id) >= 2
    # a rerun of the job after a crash sends nothing twice
    latest = await DeliveryUpdate.select(DeliveryUpdate.id).where(DeliveryUpdate.kind == "date").first()
    await delivery.tell_backers(DeliveryPosted(campaign_id, latest["id"], "date"))
    assert await EmailMessage.count().where(EmailMessage.kind == "delivery_update") == 4

    # the backer's order page: the new month, what it moved from and why
    await login(client, backers[0].email)
    number = (await Order.select(Order.number).where(Order.member == backers[0].id).first())["number"]
    order = (await client.get(f"/orders/{number}")).text
    assert later.strftime("%B %Y") in order and 'data-testid="eta-slip"' in order
    assert "The yarn dyer is three weeks late" in order
    await assert_audit_clean()


async def test_waves_shipped_at_the_same_time_are_numbered_once_and_each_order_ships_once(stripe):
    backers = [await make_member(f"Wave Backer {n}") for n in range(5)]
    staff = await make_member("Wave Staff", staff=True)
    made = await make_preorders(backers, staff=staff)
    campaign_id = made["campaign_id"]
    await fulfilment.bulk_in_production(staff, campaign_id)
    numbers = [o["number"] for o in made["orders"]]

    first, second = await asyncio.gather(
        fulfilment.bulk_ship(staff, campaign_id, carrier="postnord", only_listed=True,
                             tracking_lines=f"{numbers[0]} 00340434161000000001\n{numbers[1]} 00340434161000000002"),
        fulfilment.bulk_ship(staff, campaign_id, carrier="postnord", only_listed=True,
                             tracking_lines=f"{numbers[2]} 00340434161000000003"))
    assert sorted([first.wave, second.wave]) == [1, 2]
    assert sorted([len(first.moved), len(second.moved)]) == [1, 2]
    # the same order in two waves at once: it ships once, and only one wave is posted
    third, fourth = await asyncio.gather(*(
        fulfilment.bulk_ship(staff, campaign_id, carrier="postnord", only_listed=True,
                             tracking_lines=f"{numbers[3]} 00340434161000000004") for _ in range(2)))
    assert sorted([len(third.moved), len(fourth.moved)]) == [0, 1]
    assert {third.wave, fourth.wave} == {3, None}

    orders = {o["number"]: o for o in await Order.select().where(Order.campaign_id == campaign_id)}
    assert [orders[n]["status"] for n in numbers] == ["shipped"] * 4 + ["in_production"]
    assert orders[numbers[3]]["wave"] == 3 and orders[numbers[4]]["wave"] is None
    waves = await DeliveryUpdate.select(DeliveryUpdate.wave, DeliveryUpdate.shipped).where(
        DeliveryUpdate.kind == "wave").order_by(DeliveryUpdate.wave)
    assert [w["wave"] for w in waves] == [1, 2, 3] and sum(w["shipped"] for w in waves) == 4
    assert (await Campaign.select(Campaign.delivery_posts).where(Campaign.id == campaign_id).first())[
        "delivery_posts"] == 3
    assert await EmailMessage.count().where(EmailMessage.kind == "order_shipped") == 4
    await assert_audit_clean()

    # the audit notices a wave whose count disagrees with its orders
    await Order.update({Order.wave: None}).where(Order.number == numbers[3])
    report = await run_audit()
    assert any(v.check == "delivery_timeline" and "wave 3" in v.detail for v in report.violations), report
    await Order.update({Order.wave: 3}).where(Order.number == numbers[3])


async def test_staff_ship_a_wave_from_a_csv_file_and_backers_see_their_place_in_the_queue(client, stripe):
    backers = [await make_member(f"Queue Backer {n}") for n in range(3)]
    staff = await make_member("Queue Staff", staff=True)
    made = await make_preorders(backers, staff=staff)
    campaign_id = made["campaign_id"]
    await fulfilment.bulk_in_production(staff, campaign_id)
    numbers = [o["number"] for o in made["orders"]]  # in the queue's order
    owner = {o["number"]: next(b for b in backers if b.id == o["member"]) for o in made["orders"]}

    await login(client, owner[numbers[2]].email)
    page = (await client.get(f"/orders/{numbers[2]}")).text
    assert 'data-testid="queue-place"' in page and "<strong>3</strong> of 3 waiting to ship" in page

    await login(client, staff.email)
    form = await client.get(f"/staff/orders?campaign={campaign_id}")
    token = csrf_from(form.text)
    empty = await client.post("/staff/orders/bulk", data={"campaign": str(campaign_id), "action": "wave",
                                                          "carrier": "postnord", "_csrf_token": token})
    assert empty.status_code == 400 and "List the orders of this wave" in empty.text
    binary = await client.post("/staff/orders/bulk", data={
        "campaign": str(campaign_id), "action": "wave", "carrier": "postnord", "_csrf_token": token},
        files={"tracking_file": ("wave.csv", b"\xff\xfe\x00garbage", "text/csv")})
    assert binary.status_code == 400 and "Upload a CSV file saved as UTF-8 text." in binary.text
    assert await Order.count().where(Order.status == "shipped") == 0

    # the backer report with a tracking number filled in for the first two backers only
    report = "order,backer,tracking_number\n" + f"{numbers[0]},A,00340434161000000011\n" \
             f"{numbers[1]},B,00340434161000000012\n{numbers[2]},C,\n"
    shipped = await client.post("/staff/orders/bulk", data={
        "campaign": str(campaign_id), "action": "wave", "carrier": "postnord", "_csrf_token": token},
        files={"tracking_file": ("wave-1.csv", report.encode(), "text/csv")})
    assert shipped.status_code == 303, shipped.text[:500]
    orders = {o["number"]: o for o in await Order.select().where(Order.campaign_id == campaign_id)}
    assert [orders[n]["status"] for n in numbers] == ["shipped", "shipped", "in_production"]
    assert orders[numbers[0]]["tracking_number"] == "00340434161000000011" and orders[numbers[0]]["wave"] == 1
    timeline = (await client.get(f"/ideas/{await _idea_of(campaign_id)}")).text
    assert "Shipping wave 1 sent: 2 pre-orders" in timeline

    await login(client, owner[numbers[0]].email)
    mine = (await client.get(f"/orders/{numbers[0]}")).text
    assert "Left in shipping wave 1." in mine and "00340434161000000011" in mine
    await login(client, owner[numbers[2]].email)
    page = (await client.get(f"/orders/{numbers[2]}")).text
    assert "<strong>1</strong> of 1 waiting to ship" in page
    shipped_mail = await EmailMessage.select().where(EmailMessage.kind == "order_shipped")
    assert {m["recipient"] for m in shipped_mail} == {owner[numbers[0]].email, owner[numbers[1]].email}
    await assert_audit_clean()


async def test_the_backer_report_lists_every_backer_for_the_warehouse_and_is_for_staff_only(client, stripe):
    sly = await make_member("=HYPERLINK(evil)")
    fan = await make_member("Report Fan")
    staff = await make_member("Report Staff", staff=True)
    made = await make_preorders([sly, fan], staff=staff)
    campaign_id = made["campaign_id"]
    fans_order = (await Order.select(Order.number).where(Order.member == fan.id).first())["number"]
    await Order.update({Order.ship_to: json.dumps(ADDRESS)}).where(Order.number == fans_order)

    await login(client, fan.email)
    assert (await client.get(f"/staff/campaigns/{campaign_id}/backers.csv")).status_code in (403, 404)
    await login(client, staff.email)
    assert (await client.get("/staff/campaigns/999999/backers.csv")).status_code == 404
    response = await client.get(f"/staff/campaigns/{campaign_id}/backers.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2
    by_email = {r["email"]: r for r in rows}
    assert by_email[sly.email]["backer"] == "'=HYPERLINK(evil)"  # never run as a formula
    row = by_email[fan.email]
    assert row["order"] == fans_order and row["order_status"] == "paid"
    assert row["pledge_status"] == "paid" and row["quantity"] == "1" and row["pledge_amount"] == "500.00"
    assert row["ship_line1"] == "Storgatan 1" and row["ship_country"] == "SE" and row["wave"] == ""


async def test_the_delivery_api_is_public_to_read_and_staff_only_to_write(client, stripe):
    backer = await make_member("Api Backer")
    staff = await make_member("Api Staff", staff=True)
    made = await make_preorders([backer], staff=staff)
    campaign_id = made["campaign_id"]
    await fulfilment.bulk_in_production(staff, campaign_id)
    member_auth, staff_auth = await _bearer(client, backer), await _bearer(client, staff)

    refused = await client.post(f"/api/v1/staff/campaigns/{campaign_id}/delivery/milestones",
                                json={"title": "Sample approved"}, headers=member_auth)
    assert refused.status_code == 403
    bad = await client.post(f"/api/v1/staff/campaigns/{campaign_id}/delivery/date",
                            json={"new_date": "2020-01-01", "reason": ""}, headers=staff_auth)
    assert bad.status_code == 400
    assert set(bad.json()["extra"]["errors"]) == {"new_date", "reason"}
    ok = await client.post(f"/api/v1/staff/campaigns/{campaign_id}/delivery/milestones",
                           json={"title": "In production", "body": "Knitting has started."}, headers=staff_auth)
    assert ok.status_code == 201, ok.text
    wave = await client.post(f"/api/v1/staff/campaigns/{campaign_id}/waves", headers=staff_auth, json={
        "carrier": "postnord", "tracking_lines": f"{made['orders'][0]['number']} 00340434161000000021"})
    assert wave.status_code == 201 and wave.json()["wave"] == 1 and wave.json()["shipped"] == [made["orders"][0]["number"]]
    public = await client.get(f"/api/v1/campaigns/{campaign_id}/delivery")
    assert public.status_code == 200
    posts = public.json()["posts"]
    assert [p["kind"] for p in posts] == ["wave", "milestone"]
    assert posts[0]["heading"] == "Shipping wave 1 sent: 1 pre-order" and posts[1]["title"] == "In production"
    order = await client.get(f"/api/v1/orders/{made['orders'][0]['number']}", headers=member_auth)
    assert order.json()["wave"] == 1 and order.json()["queue_place"] is None
    assert "/api/v1/campaigns/{campaign_id}/delivery" in (await client.get("/schema/openapi.json")).text
