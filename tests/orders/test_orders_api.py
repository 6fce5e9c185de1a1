"""The orders JSON API (Bearer tokens only), and the refund job that finishes a pending refund."""

from __future__ import annotations

import asyncio

from app.accounts import service as accounts
from app.db import write_transaction
from app.jobs.tables import Job
from app.mail.tables import EmailMessage
from app.orders import fulfilment
from app.orders.tables import Order, Refund
from tests.factories import make_member
from tests.orders.helpers import make_preorders, make_shop_order, refunds_in_stripe


async def _auth(member) -> dict:
    return {"Authorization": f"Bearer {await accounts.create_api_token(member.id)}"}


async def test_owner_and_staff_read_an_order_others_get_404(client, stripe):
    buyer = await make_member("Api Buyer")
    staff = await make_member("Api Staff", staff=True)
    stranger = await make_member("Stranger")
    order = await make_shop_order(buyer, price=12_000, quantity=1, shipping=4_900)
    await fulfilment.set_status(staff, order["id"], "shipped", carrier="dhl", tracking_number="JD 0142/7")

    mine = await client.get(f"/api/v1/orders/{order['number']}", headers=await _auth(buyer))
    assert mine.status_code == 200
    body = mine.json()
    assert (body["status"], body["total"], body["shipping"], body["subtotal"]) == ("shipped", 16_900, 4_900, 12_000)
    assert body["tracking"] == {"carrier": "dhl", "carrier_name": "DHL", "number": "JD 0142/7",
                                "url": "https://www.dhl.com/se-en/home/tracking/tracking-parcel.html?submit=1"
                                       "&tracking-id=JD%200142%2F7"}
    assert [line["quantity"] for line in body["lines"]] == [1]
    assert [h["to_status"] for h in body["history"]] == ["placed", "paid", "shipped"]
    assert [s["state"] for s in body["timeline"]] == ["done", "done", "current", "upcoming"]
    assert body["ship_to"]["city"] == "Stockholm"

    assert (await client.get(f"/api/v1/orders/{order['number']}", headers=await _auth(staff))).status_code == 200
    assert (await client.get(f"/api/v1/orders/{order['number']}", headers=await _auth(stranger))).status_code == 404
    # cookies never authenticate the API
    assert (await client.get(f"/api/v1/orders/{order['number']}")).status_code == 401


async def test_my_orders_are_cursor_paginated(client, stripe):
    buyer = await make_member()
    orders = [await make_shop_order(buyer, quantity=1, stock=1) for _ in range(3)]
    await make_shop_order(await make_member(), quantity=1, stock=1)
    auth = await _auth(buyer)
    first = (await client.get("/api/v1/me/orders?limit=2", headers=auth)).json()
    assert [o["number"] for o in first["items"]] == [orders[2]["number"], orders[1]["number"]]
    second = (await client.get(f"/api/v1/me/orders?limit=2&cursor={first['next_cursor']}", headers=auth)).json()
    assert [o["number"] for o in second["items"]] == [orders[0]["number"]]
    assert second["next_cursor"] is None
    bad = await client.get("/api/v1/me/orders?cursor=abc", headers=auth)
    assert bad.status_code == 400 and "cursor" in bad.json()["detail"]
    assert (await client.get("/api/v1/me/orders?limit=500", headers=auth)).status_code == 400


async def test_staff_patch_moves_and_illegal_moves_are_409(client, stripe):
    backer = await make_member("Backer")
    staff = await make_member("Staff", staff=True)
    made = await make_preorders([backer], staff=staff)
    number = made["orders"][0]["number"]
    auth = await _auth(staff)
    url = f"/api/v1/staff/orders/{number}"

    illegal = await client.patch(url, json={"status": "delivered"}, headers=auth)
    assert illegal.status_code == 409
    assert illegal.json()["detail"] == "An order that is paid cannot become delivered."
    unknown = await client.patch(url, json={"status": "teleported"}, headers=auth)
    assert unknown.status_code == 400 and "status" in unknown.json()["detail"]
    assert (await client.patch(url, json={}, headers=auth)).status_code == 400

    production = await client.patch(url, json={"status": "in_production"}, headers=auth)
    assert production.status_code == 200 and production.json()["status"] == "in_production"
    no_tracking = await client.patch(url, json={"status": "shipped", "carrier": "ups"}, headers=auth)
    assert no_tracking.status_code == 400 and "tracking_number" in no_tracking.json()["extra"]["errors"]
    shipped = await client.patch(url, json={"status": "shipped", "carrier": "UPS", "tracking_number": "1Z999AA1"},
                                 headers=auth)
    assert shipped.status_code == 200
    assert shipped.json()["tracking"]["url"] == "https://www.ups.com/track?tracknum=1Z999AA1"
    corrected = await client.patch(url, json={"tracking_number": "1Z999AA2"}, headers=auth)
    assert corrected.json()["tracking"]["number"] == "1Z999AA2"
    assert corrected.json()["history"][-1]["message"] == "Tracking: UPS 1Z999AA2"
    assert await EmailMessage.count().where(EmailMessage.kind == "order_shipped") == 1
    missing = await client.patch("/api/v1/staff/orders/CM-NOTHERE", json={"status": "shipped"}, headers=auth)
    assert missing.status_code == 404


async def test_staff_refunds_by_api_in_minor_units(client, stripe):
    buyer = await make_member()
    staff = await make_member("Staff", staff=True)
    order = await make_shop_order(buyer, price=10_000, quantity=1, shipping=0)
    auth = await _auth(staff)
    url = f"/api/v1/staff/orders/{order['number']}/refunds"
    too_much = await client.post(url, json={"amount": 10_001}, headers=auth)
    assert too_much.status_code == 400 and "At most" in too_much.json()["detail"]
    assert (await client.post(url, json={"amount": -5}, headers=auth)).status_code == 400
    assert (await client.post(url, json={"amount": "12.50"}, headers=auth)).status_code == 400

    first = await client.post(url, json={"amount": 2_500, "reason": "Late", "idempotency_key": "ticket-77"},
                              headers=auth)
    assert first.status_code == 201
    assert first.json()["status"] == "succeeded" and first.json()["stripe_refund_id"].startswith("re_")
    repeat = await client.post(url, json={"amount": 2_500, "idempotency_key": "ticket-77"}, headers=auth)
    assert repeat.json()["id"] == first.json()["id"]
    assert len(await refunds_in_stripe(order["payment_intent"])) == 1

    body = (await client.get(f"/api/v1/orders/{order['number']}", headers=await _auth(buyer))).json()
    assert body["refunded"] == 2_500 and [r["amount"] for r in body["refunds"]] == [2_500]


async def test_concurrent_api_refunds_never_exceed_the_charge(client, stripe):
    buyer = await make_member()
    staff = await make_member("Staff", staff=True)
    order = await make_shop_order(buyer, price=10_000, quantity=1, shipping=0)
    auth = await _auth(staff)
    url = f"/api/v1/staff/orders/{order['number']}/refunds"
    responses = await asyncio.gather(*(client.post(url, json={"amount": 3_000}, headers=auth) for _ in range(5)))
    assert sorted(r.status_code for r in responses) == [201, 201, 201, 400, 400]
    assert (await Order.select(Order.refunded).where(Order.id == order["id"]).first())["refunded"] == 9_000
    assert sum(r["amount"] for r in await refunds_in_stripe(order["payment_intent"])) == 9_000


async def test_a_pending_refund_is_finished_by_its_job(stripe):
    """A crash after the refund was reserved (or Stripe unreachable): the job completes it."""
    buyer = await make_member()
    staff = await make_member("Staff", staff=True)
    order = await make_shop_order(buyer, price=10_000, quantity=1, shipping=0)
    async with write_transaction():
        refund, created = await fulfilment.reserve_refund(order["id"], 4_000, reason="", staff_id=staff.id, key="crash")
    assert created and refund["status"] == "pending"
    job = await Job.select(Job.kind, Job.payload).where(Job.unique_key == f"finish_refund:{refund['id']}").first()
    assert job is not None
    await fulfilment.finish_refund_job({"refund_id": refund["id"]})
    await fulfilment.finish_refund_job({"refund_id": refund["id"]})  # a retried job: nothing more
    assert (await Refund.select(Refund.status).where(Refund.id == refund["id"]).first())["status"] == "succeeded"
    assert await EmailMessage.count().where(EmailMessage.kind == "order_refunded") == 1
    assert (await Order.select(Order.refunded).where(Order.id == order["id"]).first())["refunded"] == 4_000
    assert [r["amount"] for r in await refunds_in_stripe(order["payment_intent"])] == [4_000]
