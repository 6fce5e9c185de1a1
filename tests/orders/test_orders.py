"""Orders over HTTP: the member's history and status page, access rules, staff fulfilment
(ship with tracking, bulk moves for a campaign), refunds, cancellation, CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
import re

from app.accounts import service as accounts
from app.campaigns.tables import Campaign
from app.mail.tables import EmailMessage
from app.notifications.tables import Notification
from app.orders import fulfilment
from app.orders.tables import Order, OrderEvent, Refund
from app.shop.tables import ProductVariant, Voucher
from tests.factories import csrf_from, login, make_member
from tests.orders.helpers import make_preorders, make_shop_order, refunds_in_stripe


async def _form(client, page_url: str, action: str, data: dict):
    page = await client.get(page_url)
    assert page.status_code == 200, page.text[:300]
    return await client.post(action, data={**data, "_csrf_token": csrf_from(page.text)})


async def test_member_sees_where_their_order_is(client, stripe):
    buyer = await make_member("Anna Buyer")
    order = await make_shop_order(buyer, price=25_000, quantity=2, shipping=4_900)
    await login(client, buyer.email)

    history = await client.get("/orders")
    assert history.status_code == 200
    assert order["number"] in history.text and "Paid" in history.text
    assert "2 x " in history.text and "549,00" in history.text  # 2 x 250 + 49 shipping

    page = await client.get(f"/orders/{order['number']}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    text = page.text
    assert "Paid: we&#39;re getting it ready" in text or "Paid: we're getting it ready" in text
    assert 'class="step step-done"' in text and 'aria-current="step"' in text
    assert "In production" not in text  # shop orders go paid -> shipped
    assert "Storgatan 1" in text and "Stockholm" in text and "Sweden" in text
    assert "500,00" in text and "49,00" in text and "549,00" in text
    assert "Cancel order" in text


async def test_another_member_gets_404_for_order_and_address_html_and_api(client, stripe):
    owner = await make_member("Owner")
    other = await make_member("Nosy Neighbour")
    order = await make_shop_order(owner)
    await login(client, other.email)
    for url in (f"/orders/{order['number']}", f"/orders/{order['number']}/cancel", "/orders/CM-NOPE"):
        response = await client.get(url)
        assert response.status_code == 404, url
        assert "Storgatan" not in response.text
    page = await client.get("/orders")
    cancel = await client.post(f"/orders/{order['number']}/cancel", data={"_csrf_token": csrf_from(page.text)})
    assert cancel.status_code == 404
    assert (await Order.select(Order.status).where(Order.id == order["id"]).first())["status"] == "paid"
    assert order["number"] not in page.text

    token = await accounts.create_api_token(other.id)
    api = await client.get(f"/api/v1/orders/{order['number']}", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 404
    assert "Storgatan" not in api.text
    mine = await client.get("/api/v1/me/orders", headers={"Authorization": f"Bearer {token}"})
    assert mine.json()["items"] == []


async def test_staff_routes_need_staff(client, stripe):
    member = await make_member("Just A Member")
    order = await make_shop_order(member)
    await login(client, member.email)
    page = await client.get("/orders")
    token = csrf_from(page.text)
    for url in ("/staff/orders", f"/staff/orders/{order['number']}", "/staff/orders.csv"):
        assert (await client.get(url)).status_code == 403, url
    for url, data in ((f"/staff/orders/{order['number']}/status", {"status": "shipped", "carrier": "dhl",
                                                                     "tracking_number": "123"}),
                      (f"/staff/orders/{order['number']}/refunds", {"amount": "10"}),
                      (f"/staff/orders/{order['number']}/tracking", {"carrier": "dhl", "tracking_number": "1"}),
                      ("/staff/orders/bulk", {"campaign": "1", "action": "in_production"})):
        assert (await client.post(url, data={**data, "_csrf_token": token})).status_code == 403, url
    api_token = await accounts.create_api_token(member.id)
    auth = {"Authorization": f"Bearer {api_token}"}
    assert (await client.patch(f"/api/v1/staff/orders/{order['number']}", json={"status": "shipped"},
                               headers=auth)).status_code == 403
    assert (await client.post(f"/api/v1/staff/orders/{order['number']}/refunds", json={"amount": 100},
                              headers=auth)).status_code == 403
    assert (await Order.select(Order.status).where(Order.id == order["id"]).first())["status"] == "paid"
    assert await Refund.count() == 0


async def test_staff_ships_with_tracking_member_sees_link_and_gets_one_email(client, stripe):
    buyer = await make_member("Parcel Waiter")
    staff = await make_member("Warehouse Staff", staff=True)
    order = await make_shop_order(buyer)
    number = order["number"]
    await login(client, staff.email)

    missing = await _form(client, f"/staff/orders/{number}", f"/staff/orders/{number}/status", {"status": "shipped"})
    assert missing.status_code == 400
    assert "Choose the carrier." in missing.text and "Enter the tracking number." in missing.text
    bad = await _form(client, f"/staff/orders/{number}", f"/staff/orders/{number}/status",
                      {"status": "shipped", "carrier": "postnord", "tracking_number": "<script>"})
    assert bad.status_code == 400 and "letters, digits" in bad.text

    shipped = await _form(client, f"/staff/orders/{number}", f"/staff/orders/{number}/status",
                          {"status": "shipped", "carrier": "postnord", "tracking_number": "00340434 161/2"})
    assert shipped.status_code == 303
    again = await _form(client, f"/staff/orders/{number}", f"/staff/orders/{number}/status",
                        {"status": "shipped", "carrier": "dhl", "tracking_number": "999"})
    assert again.status_code == 409
    assert "An order that is shipped cannot become shipped." in again.text

    row = await Order.select().where(Order.id == order["id"]).first()
    assert (row["status"], row["carrier"], row["tracking_number"]) == ("shipped", "postnord", "00340434 161/2")
    emails = await EmailMessage.select().where(EmailMessage.kind == "order_shipped")
    assert len(emails) == 1 and emails[0]["recipient"] == buyer.email.lower()
    assert "https://tracking.postnord.com/se/?id=00340434%20161%2F2" in emails[0]["text_body"]
    assert await Notification.count().where((Notification.member == buyer.id) & (Notification.kind == "order")) == 1

    await client.post("/logout", data={"_csrf_token": csrf_from((await client.get("/")).text)})
    await login(client, buyer.email)
    page = await client.get(f"/orders/{number}")
    assert "On its way" in page.text
    assert 'href="https://tracking.postnord.com/se/?id=00340434%20161%2F2"' in page.text
    assert "Track with PostNord" in page.text


async def test_two_staff_shipping_at_once_move_the_order_once(stripe):
    buyer = await make_member()
    staff = [await make_member(f"Staff {n}", staff=True) for n in range(2)]
    order = await make_shop_order(buyer)
    results = await asyncio.gather(*(fulfilment.set_status(staff[n % 2], order["id"], "shipped", carrier="ups",
                                                           tracking_number=f"1Z{n}") for n in range(6)),
                                   return_exceptions=True)
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1
    assert all(isinstance(r, fulfilment.Conflict) for r in results if isinstance(r, Exception))
    assert await OrderEvent.count().where((OrderEvent.order == order["id"]) & (OrderEvent.to_status == "shipped")) == 1
    assert await EmailMessage.count().where(EmailMessage.kind == "order_shipped") == 1


async def test_illegal_moves_have_clear_messages(client, stripe):
    buyer = await make_member()
    staff = await make_member("Staff", staff=True)
    order = await make_shop_order(buyer)
    await login(client, staff.email)
    delivered = await _form(client, f"/staff/orders/{order['number']}", f"/staff/orders/{order['number']}/status",
                            {"status": "delivered"})
    assert delivered.status_code == 409 and "An order that is paid cannot become delivered." in delivered.text
    production = await _form(client, f"/staff/orders/{order['number']}", f"/staff/orders/{order['number']}/status",
                             {"status": "in_production"})
    assert production.status_code == 409 and "only pre-orders are made to order" in production.text
    nonsense = await _form(client, f"/staff/orders/{order['number']}", f"/staff/orders/{order['number']}/status",
                           {"status": "refunded"})
    assert nonsense.status_code == 400 and "Choose in production, shipped, delivered or cancelled." in nonsense.text
    unconfirmed = await _form(client, f"/staff/orders/{order['number']}", f"/staff/orders/{order['number']}/status",
                              {"status": "cancelled"})
    assert unconfirmed.status_code == 400 and "Tick the box" in unconfirmed.text
    assert (await Order.select(Order.status).where(Order.id == order["id"]).first())["status"] == "paid"


async def test_bulk_moves_a_campaigns_preorders_and_follows_the_campaign(client, stripe):
    backers = [await make_member(f"Backer {n}") for n in range(3)]
    staff = await make_member("Fulfilment Staff", staff=True)
    made = await make_preorders(backers, staff=staff)
    campaign_id = made["campaign_id"]
    numbers = [o["number"] for o in made["orders"]]
    await login(client, staff.email)

    page = await client.get(f"/staff/orders?campaign={campaign_id}")
    assert page.status_code == 200 and all(n in page.text for n in numbers)
    moved = await client.post("/staff/orders/bulk", data={"campaign": str(campaign_id), "action": "in_production",
                                                          "_csrf_token": csrf_from(page.text)})
    assert moved.status_code == 303
    assert {r["status"] for r in await Order.select(Order.status)} == {"in_production"}
    assert (await Campaign.select(Campaign.status).where(Campaign.id == campaign_id).first())["status"] == "in_production"
    backer_page = await fulfilment.order_id_for(numbers[0])
    assert backer_page

    bad = await _form(client, "/staff/orders", "/staff/orders/bulk", {
        "campaign": str(campaign_id), "action": "shipped", "carrier": "bring",
        "tracking_lines": f"{numbers[0]} 70701\nCM-00000000 123"})
    assert bad.status_code == 400 and "Not in production in this campaign: CM-00000000" in bad.text
    assert {r["status"] for r in await Order.select(Order.status)} == {"in_production"}

    lines = f"{numbers[0]} 70701\n\n{numbers[1].lower()}   70702  "
    shipped = await _form(client, "/staff/orders", "/staff/orders/bulk", {
        "campaign": str(campaign_id), "action": "shipped", "carrier": "bring", "tracking_lines": lines})
    assert shipped.status_code == 303
    rows = {r["number"]: r for r in await Order.select()}
    assert {r["status"] for r in rows.values()} == {"shipped"}
    assert {r["carrier"] for r in rows.values()} == {"bring"}
    assert [rows[n]["tracking_number"] for n in numbers] == ["70701", "70702", ""]
    assert await EmailMessage.count().where(EmailMessage.kind == "order_shipped") == 3

    # delivered one by one; the campaign becomes delivered with its last order
    for number in numbers:
        response = await _form(client, f"/staff/orders/{number}", f"/staff/orders/{number}/status",
                               {"status": "delivered"})
        assert response.status_code == 303
    assert await EmailMessage.count().where(EmailMessage.kind == "order_delivered") == 3
    assert (await Campaign.select(Campaign.status).where(Campaign.id == campaign_id).first())["status"] == "delivered"


async def test_bulk_runs_at_the_same_time_move_each_order_once(stripe):
    backers = [await make_member(f"Backer {n}") for n in range(4)]
    staff = await make_member("Staff", staff=True)
    made = await make_preorders(backers, staff=staff)
    results = await asyncio.gather(*(fulfilment.bulk_in_production(staff, made["campaign_id"]) for _ in range(3)))
    assert sum(len(r.moved) for r in results) == 4
    assert await OrderEvent.count().where(OrderEvent.to_status == "in_production") == 4
    assert await Notification.count().where(Notification.title.like("%in production%")) == 4


async def test_preorder_page_shows_production_step_and_estimated_delivery(client, stripe):
    backer = await make_member("Early Fan")
    made = await make_preorders([backer])
    order = made["orders"][0]
    estimated = (await Campaign.select(Campaign.estimated_delivery).where(
        Campaign.id == made["campaign_id"]).first())["estimated_delivery"]
    await login(client, backer.email)
    page = await client.get(f"/orders/{order['number']}")
    assert page.status_code == 200
    assert "In production" in page.text and "Estimated delivery" in page.text
    assert estimated.strftime("%B %Y") in page.text
    assert "Cancel order" not in page.text  # pre-orders are cancelled by staff only


async def test_partial_refunds_never_exceed_the_charge(client, stripe):
    buyer = await make_member("Refund Me")
    staff = await make_member("Refund Staff", staff=True)
    order = await make_shop_order(buyer, price=10_000, quantity=1, shipping=0)  # 100.00 SEK
    number = order["number"]
    await login(client, staff.email)
    first = await _form(client, f"/staff/orders/{number}", f"/staff/orders/{number}/refunds",
                        {"amount": "60", "reason": "Scratched"})
    assert first.status_code == 303
    second = await _form(client, f"/staff/orders/{number}", f"/staff/orders/{number}/refunds", {"amount": "60,00"})
    assert second.status_code == 400
    assert "At most" in second.text and "40,00" in second.text
    garbage = await _form(client, f"/staff/orders/{number}", f"/staff/orders/{number}/refunds", {"amount": "lots"})
    assert garbage.status_code == 400 and "Enter an amount like 120 or 120.50." in garbage.text

    row = await Order.select(Order.refunded, Order.status).where(Order.id == order["id"]).first()
    assert row == {"refunded": 6_000, "status": "paid"}
    in_stripe = await refunds_in_stripe(order["payment_intent"])
    assert [r["amount"] for r in in_stripe] == [6_000]
    assert await EmailMessage.count().where(EmailMessage.kind == "order_refunded") == 1

    rest = await _form(client, f"/staff/orders/{number}", f"/staff/orders/{number}/refunds", {"amount": "40"})
    assert rest.status_code == 303
    row = await Order.select(Order.refunded, Order.status).where(Order.id == order["id"]).first()
    assert row == {"refunded": 10_000, "status": "refunded"}
    assert sorted(r["amount"] for r in await refunds_in_stripe(order["payment_intent"])) == [4_000, 6_000]
    assert await EmailMessage.count().where(EmailMessage.kind == "order_refunded") == 2

    await client.post("/logout", data={"_csrf_token": csrf_from((await client.get("/")).text)})
    await login(client, buyer.email)
    page = await client.get(f"/orders/{number}")
    assert "Refunds" in page.text and "60,00" in page.text and "Scratched" in page.text
    assert "Refunded" in page.text


async def test_concurrent_partial_refunds_exceeding_the_charge_refuse_one(stripe):
    buyer = await make_member()
    staff = await make_member("Staff", staff=True)
    order = await make_shop_order(buyer, price=10_000, quantity=1, shipping=0)
    results = await asyncio.gather(*(fulfilment.refund_order(staff, order["id"], "70") for _ in range(2)),
                                   return_exceptions=True)
    ok = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(ok) == 1 and ok[0]["status"] == "succeeded"
    assert len(refused) == 1 and isinstance(refused[0], fulfilment.FormError)
    assert "At most" in refused[0].errors["amount"]
    assert (await Order.select(Order.refunded).where(Order.id == order["id"]).first())["refunded"] == 7_000
    assert await Refund.count() == 1
    assert [r["amount"] for r in await refunds_in_stripe(order["payment_intent"])] == [7_000]


async def test_double_submitted_refund_form_refunds_once(client, stripe):
    buyer = await make_member()
    staff = await make_member("Staff", staff=True)
    order = await make_shop_order(buyer, price=10_000, quantity=1, shipping=0)
    await login(client, staff.email)
    page = await client.get(f"/staff/orders/{order['number']}")
    key = re.search(r'name="refund_key" value="([^"]+)"', page.text).group(1)
    data = {"amount": "25", "refund_key": key, "_csrf_token": csrf_from(page.text)}
    responses = await asyncio.gather(*(client.post(f"/staff/orders/{order['number']}/refunds", data=data)
                                       for _ in range(3)))
    assert {r.status_code for r in responses} == {303}
    assert await Refund.count() == 1
    assert len(await refunds_in_stripe(order["payment_intent"])) == 1


async def test_refund_refused_by_stripe_is_rolled_back(client, stripe):
    buyer = await make_member()
    staff = await make_member("Staff", staff=True)
    order = await make_shop_order(buyer, price=10_000, quantity=1, shipping=0)
    await Order.update({Order.payment_intent_id: "pi_doesnotexist"}).where(Order.id == order["id"])
    await login(client, staff.email)
    response = await _form(client, f"/staff/orders/{order['number']}", f"/staff/orders/{order['number']}/refunds",
                           {"amount": "30"})
    assert response.status_code == 409
    assert "Stripe refused the refund" in response.text and "Nothing was refunded" in response.text
    assert (await Order.select(Order.refunded).where(Order.id == order["id"]).first())["refunded"] == 0
    assert [r["status"] for r in await Refund.select(Refund.status)] == ["failed"]
    assert await EmailMessage.count().where(EmailMessage.kind == "order_refunded") == 0


async def test_staff_cancel_restocks_returns_voucher_and_refunds(client, stripe):
    buyer = await make_member("Voucher Buyer")
    staff = await make_member("Staff", staff=True)
    order = await make_shop_order(buyer, price=25_000, quantity=2, stock=5, voucher=True)
    variant = await ProductVariant.select().where(ProductVariant.id == order["variant_id"]).first()
    assert (variant["stock"], variant["sold"]) == (3, 2)
    balance_before = (await accounts.get_member(buyer.id)).points_balance
    await login(client, staff.email)
    response = await _form(client, f"/staff/orders/{order['number']}", f"/staff/orders/{order['number']}/status",
                           {"status": "cancelled", "confirm": "yes", "message": "Out of fabric"})
    assert response.status_code == 303
    row = await Order.select().where(Order.id == order["id"]).first()
    assert (row["status"], row["refunded"], row["stock_released"]) == ("cancelled", order["total"], True)
    variant = await ProductVariant.select().where(ProductVariant.id == order["variant_id"]).first()
    assert (variant["stock"], variant["sold"]) == (5, 0)
    assert (await Voucher.select(Voucher.status).where(Voucher.code == order["voucher"]).first())["status"] == "cancelled"
    assert (await accounts.get_member(buyer.id)).points_balance == balance_before + 1_000
    assert [r["amount"] for r in await refunds_in_stripe(order["payment_intent"])] == [order["total"]]
    cancelled = await EmailMessage.select().where(EmailMessage.kind == "order_cancelled")
    assert len(cancelled) == 1 and "Out of fabric" in cancelled[0]["text_body"]
    assert await EmailMessage.count().where(EmailMessage.kind == "order_refunded") == 0  # told in the cancel email

    again = await _form(client, f"/staff/orders/{order['number']}", f"/staff/orders/{order['number']}/status",
                        {"status": "cancelled", "confirm": "yes"})
    assert again.status_code == 409
    variant = await ProductVariant.select().where(ProductVariant.id == order["variant_id"]).first()
    assert variant["stock"] == 5


async def test_member_cancels_own_paid_shop_order_but_not_after_shipping(client, stripe):
    buyer = await make_member("Changed Mind")
    staff = await make_member("Staff", staff=True)
    keep = await make_shop_order(buyer, quantity=1, stock=3)
    cancel = await make_shop_order(buyer, quantity=1, stock=3)
    await fulfilment.set_status(staff, keep["id"], "shipped", carrier="dhl", tracking_number="JD0001")
    await login(client, buyer.email)
    confirm = await client.get(f"/orders/{cancel['number']}/cancel")
    assert confirm.status_code == 200 and "Yes, cancel my order" in confirm.text
    done = await client.post(f"/orders/{cancel['number']}/cancel", data={"_csrf_token": csrf_from(confirm.text)})
    assert done.status_code == 303
    assert (await Order.select(Order.status).where(Order.id == cancel["id"]).first())["status"] == "cancelled"
    assert (await ProductVariant.select(ProductVariant.stock).where(
        ProductVariant.id == cancel["variant_id"]).first())["stock"] == 3
    assert [r["amount"] for r in await refunds_in_stripe(cancel["payment_intent"])] == [cancel["total"]]

    late = await client.post(f"/orders/{keep['number']}/cancel", data={"_csrf_token": csrf_from(confirm.text)})
    assert late.status_code == 303
    assert (await Order.select(Order.status).where(Order.id == keep["id"]).first())["status"] == "shipped"
    page = await client.get(f"/orders/{keep['number']}")
    assert "can no longer be cancelled" in page.text


async def test_csv_export_has_the_rows_and_respects_filters(client, stripe):
    buyer = await make_member("Csv Customer")
    staff = await make_member("Staff", staff=True)
    shop = await make_shop_order(buyer, quantity=3, address={"name": "=HYPERLINK(\"x\")", "line1": "Kungsgatan 5",
                                                             "postal_code": "411 19", "city": "Göteborg",
                                                             "country": "SE"})
    made = await make_preorders([buyer])
    await fulfilment.set_status(staff, shop["id"], "shipped", carrier="bring", tracking_number="BR123")
    await login(client, staff.email)

    everything = await client.get("/staff/orders.csv")
    assert everything.status_code == 200
    assert everything.headers["content-type"].startswith("text/csv")
    assert everything.headers["content-disposition"].startswith("attachment; filename=")
    rows = list(csv.DictReader(io.StringIO(everything.text)))
    assert {r["number"] for r in rows} == {shop["number"], made["orders"][0]["number"]}
    shop_row = next(r for r in rows if r["number"] == shop["number"])
    assert shop_row["lines"] == f"3 x {shop['product']['name']} (M)"
    assert (shop_row["ship_city"], shop_row["carrier"], shop_row["tracking_number"]) == ("Göteborg", "Bring", "BR123")
    assert shop_row["email"] == buyer.email and shop_row["status"] == "shipped"
    assert shop_row["ship_name"].startswith("'=")  # no formula runs in the warehouse's spreadsheet

    only_preorders = await client.get("/staff/orders.csv?kind=preorder")
    numbers = [r["number"] for r in csv.DictReader(io.StringIO(only_preorders.text))]
    assert numbers == [made["orders"][0]["number"]]
    shipped = await client.get("/staff/orders.csv?status=shipped&q=csv.customer")
    assert [r["number"] for r in csv.DictReader(io.StringIO(shipped.text))] == [shop["number"]]
    none = await client.get("/staff/orders.csv?date_from=2001-01-01&date_to=2001-12-31")
    assert list(csv.DictReader(io.StringIO(none.text))) == []


async def test_staff_list_filters_and_explains_bad_filters(client, stripe):
    first = await make_member("Alice Filter")
    second = await make_member("Bob Filter")
    staff = await make_member("Staff", staff=True)
    a = await make_shop_order(first)
    b = await make_shop_order(second)
    await fulfilment.set_status(staff, b["id"], "shipped", carrier="ups", tracking_number="1Z999")
    await login(client, staff.email)
    page = await client.get("/staff/orders")
    assert a["number"] in page.text and b["number"] in page.text and "2 orders" in page.text
    shipped = await client.get("/staff/orders?status=shipped")
    assert b["number"] in shipped.text and a["number"] not in shipped.text
    by_name = await client.get("/staff/orders", params={"q": "alice"})
    assert a["number"] in by_name.text and b["number"] not in by_name.text
    by_number = await client.get("/staff/orders", params={"q": b["number"].lower()})
    assert b["number"] in by_number.text and a["number"] not in by_number.text
    fragment = await client.get("/staff/orders?status=shipped", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text and b["number"] in fragment.text
    bad = await client.get("/staff/orders?date_from=yesterday&status=lost")
    assert bad.status_code == 200
    assert "Use a date like 2026-11-30." in bad.text and "Unknown status." in bad.text
    assert a["number"] in bad.text  # the bad filters are ignored, not a 500


async def test_backer_gives_a_delivery_address_for_a_preorder_until_it_ships(client, stripe):
    backer = await make_member("Address Backer")
    other = await make_member("Other Backer")
    staff = await make_member("Staff", staff=True)
    made = await make_preorders([backer, other], staff=staff)
    mine = next(o for o in made["orders"] if o["member"] == backer.id)
    number = mine["number"]
    await login(client, backer.email)
    page = await client.get(f"/orders/{number}")
    assert "Where should we send it?" in page.text
    token = csrf_from(page.text)
    address = {"name": "Bo Backer", "line1": "Drottninggatan 3", "postal_code": "111 51", "city": "Stockholm",
               "country": "SE", "_csrf_token": token}
    bad = await client.post(f"/orders/{number}/address", data={**address, "postal_code": "!!", "city": ""})
    assert bad.status_code == 400
    assert "Enter a valid postal code." in bad.text and "Enter your city." in bad.text
    saved = await client.post(f"/orders/{number}/address", data=address)
    assert saved.status_code == 303
    page = await client.get(f"/orders/{number}")
    assert "Drottninggatan 3" in page.text and "Change the delivery address" in page.text
    theirs = next(o for o in made["orders"] if o["member"] == other.id)
    assert (await client.post(f"/orders/{theirs['number']}/address", data=address)).status_code == 404

    await fulfilment.set_status(staff, mine["id"], "in_production")
    await fulfilment.set_status(staff, mine["id"], "shipped", carrier="budbee", tracking_number="BB-1")
    late = await client.post(f"/orders/{number}/address", data={**address, "line1": "Elsewhere 1"})
    assert late.status_code == 303
    row = await Order.select(Order.ship_to).where(Order.id == mine["id"]).first()
    assert "Drottninggatan 3" in str(row["ship_to"]) and "Elsewhere" not in str(row["ship_to"])


async def test_full_refund_before_shipping_restocks_and_returns_the_voucher(stripe):
    buyer = await make_member("Refund Buyer")
    staff = await make_member("Refund Staff", staff=True)
    order = await make_shop_order(buyer, price=25_000, quantity=2, stock=5, voucher=True)
    balance_before = (await accounts.get_member(buyer.id)).points_balance
    await fulfilment.refund_order(staff, order["id"], order["total"], reason="Changed my mind", minor_units=True)
    row = await Order.select().where(Order.id == order["id"]).first()
    assert (row["status"], row["refunded"], row["stock_released"]) == ("refunded", order["total"], True)
    variant = await ProductVariant.select().where(ProductVariant.id == order["variant_id"]).first()
    assert (variant["stock"], variant["sold"]) == (5, 0)
    assert (await accounts.get_member(buyer.id)).points_balance == balance_before + 1_000
    assert [r["amount"] for r in await refunds_in_stripe(order["payment_intent"])] == [order["total"]]
