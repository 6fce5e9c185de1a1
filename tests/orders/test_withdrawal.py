"""The right of withdrawal (ångerrätt): members and guests withdraw from orders' lines and from
pledges in two steps, get a receipt email at once, and are refunded exactly once in Stripe;
units go back to stock once (app/orders/withdrawal.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re

import pytest

from app.accounts import service as accounts
from app.accounts.personal_data import Erasure
from app.accounts.tables import Member
from app.audit import run_audit
from app.campaigns.tables import Campaign, Pledge, PledgeEvent
from app.db import utcnow, write_transaction
from app.errors import Conflict, NotFound
from app.mail.tables import EmailMessage
from app.orders import fulfilment, withdrawal
from app.orders import personal_data as orders_personal_data
from app.orders.service import OrderStatus, move_order, new_order_number
from app.orders.tables import Order, OrderEvent, OrderLine, OrderPayment, Refund, Withdrawal, WithdrawalLine
from app.payments.gateway import PaymentOutcome, gateway
from app.points import service as points
from app.settings import get_settings
from app.shop import checkout
from app.shop.checkout import CheckoutInput
from app.shop.tables import ProductVariant
from tests.campaigns.helpers import make_campaign, pledge_with_card, save_card
from tests.factories import csrf_from, login, make_member
from tests.orders.helpers import (
    ADDRESS,
    customer_with_card,
    make_preorders,
    make_shop_order,
    refunds_in_stripe,
)
from tests.shop.helpers import SAFETY, make_product


async def _stock(variant_id: int) -> tuple[int, int]:
    row = await ProductVariant.select(ProductVariant.stock, ProductVariant.sold).where(ProductVariant.id == variant_id).first()
    return row["stock"], row["sold"]


async def _two_line_order(member, *, discount: int = 0, made_to_order: bool = False) -> dict:
    """A paid shop order of 1 × M (200 kr) and 1 × L (300 kr) with 49 kr delivery; `discount` is
    taken off as a voucher would; the L line is made to order when asked."""
    product = await make_product(price=20_000, variants={"M": 5, "L": 5})
    m, large = product["variants"]["M"], product["variants"]["L"]
    await ProductVariant.update({ProductVariant.price: 30_000}).where(ProductVariant.id == large)
    subtotal, shipping = 50_000, 4_900
    total = subtotal + shipping - discount
    async with write_transaction():
        rows = await Order.insert(Order(
            number=new_order_number(), member=member.id, status="placed", kind="shop", currency="SEK",
            subtotal=subtotal, shipping=shipping, discount=discount, total=total, ship_to=json.dumps(ADDRESS),
        )).returning(Order.id, Order.number)
        order_id = rows[0]["id"]
        await OrderLine.insert(
            OrderLine(order=order_id, title=product["name"], variant="M", product_id=product["id"], variant_id=m,
                      quantity=1, unit_price=20_000, total=20_000),
            OrderLine(order=order_id, title=product["name"], variant="L", product_id=product["id"], variant_id=large,
                      quantity=1, unit_price=30_000, total=30_000, made_to_order=made_to_order))
        for variant in (m, large):
            await ProductVariant.update({ProductVariant.stock: ProductVariant.stock - 1}).where(ProductVariant.id == variant)
    customer, method = await customer_with_card(member)
    result = await gateway().charge(customer=customer, payment_method=method, amount=total, currency="SEK",
                                    idempotency_key=f"test-order-{order_id}", metadata={"order_id": str(order_id)},
                                    off_session=False)
    assert result.outcome is PaymentOutcome.PAID
    async with write_transaction():
        await OrderPayment.insert(OrderPayment(order=order_id, attempt=1, idempotency_key=f"test-order-{order_id}",
                                               amount=total, status="paid", payment_intent_id=result.payment_intent_id))
        await move_order(order_id, OrderStatus.PAID, expect=(OrderStatus.PLACED,), message="Payment received",
                         extra={Order.payment_intent_id: result.payment_intent_id})
        await ProductVariant.update({ProductVariant.sold: ProductVariant.sold + 1}).where(
            ProductVariant.id.is_in([m, large]))
    lines = await OrderLine.select(OrderLine.id, OrderLine.variant).where(OrderLine.order == order_id).order_by(OrderLine.id)
    return {"id": order_id, "number": rows[0]["number"], "total": total, "m": m, "l": large,
            "lines": {row["variant"]: str(row["id"]) for row in lines}, "payment_intent": result.payment_intent_id}


async def _post(client, page, action: str, data: dict):
    return await client.post(action, data={**data, "_csrf_token": csrf_from(page.text)})


async def test_buyer_withdraws_a_whole_order_before_it_ships_in_two_steps(client, stripe):
    buyer = await make_member("Changed Mind")
    order = await make_shop_order(buyer, price=25_000, quantity=2, stock=5, shipping=4_900)
    assert await _stock(order["variant_id"]) == (3, 2)
    await login(client, buyer.email)

    start = await client.get("/withdraw")
    assert start.status_code == 200 and "Withdraw from contract here" in start.text
    assert f"Withdraw from {order['number']}" in start.text
    page = await client.get(f"/withdraw/orders/{order['number']}")
    assert page.status_code == 200 and "Step 1 of 2" in page.text
    line_id = re.search(r'name="line" value="(\d+)" checked', page.text).group(1)

    review = await _post(client, page, f"/withdraw/orders/{order['number']}/review", {"line": line_id})
    assert review.status_code == 200 and "Step 2 of 2" in review.text
    assert "549,00" in review.text  # the whole order: the goods and the delivery come back
    assert await Withdrawal.count() == 0  # nothing happens before the confirmation

    done = await _post(client, review, f"/withdraw/orders/{order['number']}", {"line": line_id})
    assert done.status_code == 200 and "Withdrawal received" in done.text
    row = await Withdrawal.select().first()
    assert row["reference"] in done.text and "549,00" in done.text and "refunded to your card" in done.text
    assert (row["amount"], row["email"]) == (order["total"], buyer.email)
    assert [r["amount"] for r in await refunds_in_stripe(order["payment_intent"])] == [order["total"]]
    current = await Order.select(Order.status, Order.refunded).where(Order.id == order["id"]).first()
    assert (current["status"], current["refunded"]) == ("refunded", order["total"])
    assert await _stock(order["variant_id"]) == (5, 0)  # back once, though the refund also released the order

    receipts = await EmailMessage.select().where(EmailMessage.kind == "withdrawal_receipt")
    assert len(receipts) == 1 and receipts[0]["recipient"] == buyer.email
    assert row["reference"] in receipts[0]["subject"] and order["number"] in receipts[0]["text_body"]
    assert "549,00" in receipts[0]["text_body"]
    events = [e["message"] for e in await OrderEvent.select().where(OrderEvent.order == order["id"])]
    assert any(m.startswith(f"Withdrawal {row['reference']}") for m in events)

    page = await client.get(f"/orders/{order['number']}")
    assert row["reference"] in page.text and "Withdraw from this order" not in page.text
    again = await _post(client, review, f"/withdraw/orders/{order['number']}", {"line": line_id})
    assert again.status_code == 409 and "already refunded in full" in again.text
    assert await Refund.count() == 1 and await _stock(order["variant_id"]) == (5, 0)


async def test_guest_withdraws_from_a_delivered_order_and_staff_restock_on_return(client, stripe):
    buyer = await make_member("Guest Buyer")
    staff = await make_member("Staff", staff=True)
    order = await make_shop_order(buyer, price=25_000, quantity=1, stock=3, shipping=4_900)
    await fulfilment.set_status(staff, order["id"], "shipped", carrier="dhl", tracking_number="JD0001")
    await fulfilment.set_status(staff, order["id"], "delivered")

    start = await client.get("/withdraw")
    assert "Find your order" in start.text
    wrong = await _post(client, start, "/withdraw/find", {"number": order["number"], "email": "someone@else.test"})
    assert wrong.status_code == 400 and "We found no order with that number and email address" in wrong.text
    empty = await _post(client, start, "/withdraw/find", {"number": "", "email": ""})
    assert empty.status_code == 400 and "Enter the order number" in empty.text and "Enter the email address" in empty.text

    found = await _post(client, start, "/withdraw/find", {"number": order["number"].lower(), "email": buyer.email.upper()})
    assert found.status_code == 200 and "Your withdrawal period ends on" in found.text
    line_id = re.search(r'name="line" value="(\d+)" checked', found.text).group(1)
    review = await _post(client, found, f"/withdraw/orders/{order['number']}/review", {"line": line_id, "email": buyer.email})
    assert review.status_code == 200 and "Please send the items back within 14 days" in review.text
    # Another guest guessing the number with the wrong email gets nothing.
    stolen = await _post(client, found, f"/withdraw/orders/{order['number']}", {"line": line_id, "email": "x@y.test"})
    assert stolen.status_code == 404 and await Withdrawal.count() == 0
    done = await _post(client, review, f"/withdraw/orders/{order['number']}", {"line": line_id, "email": buyer.email})
    assert done.status_code == 200 and "Withdrawal received" in done.text
    assert [r["amount"] for r in await refunds_in_stripe(order["payment_intent"])] == [order["total"]]
    assert await _stock(order["variant_id"]) == (2, 1)  # the parcel is on its way back, not on the shelf yet
    receipt = (await EmailMessage.select().where(EmailMessage.kind == "withdrawal_receipt"))[0]
    assert "Lagervägen 4" in receipt["text_body"]

    await login(client, staff.email)
    staff_page = await client.get(f"/staff/orders/{order['number']}")
    assert "goods not back yet" in staff_page.text
    wid = (await Withdrawal.select(Withdrawal.id).first())["id"]
    back = await _post(client, staff_page, f"/staff/orders/{order['number']}/withdrawals/{wid}/returned", {})
    assert back.status_code == 303
    assert await _stock(order["variant_id"]) == (3, 0)
    assert await withdrawal.goods_returned(staff, wid) == 0  # a second click puts nothing back twice
    assert await _stock(order["variant_id"]) == (3, 0)
    staff_page = await client.get(f"/staff/orders/{order['number']}")
    assert "goods returned" in staff_page.text


async def test_partial_withdrawals_refund_each_lines_share_then_the_rest(client, stripe):
    buyer = await make_member("Half Keeper")
    order = await _two_line_order(buyer, discount=5_000)  # paid 500 - 50 + 49 = 499 kr
    first = await withdrawal.withdraw_from_order(order["number"], [order["lines"]["M"]], member=buyer)
    # The M line is 200 of 500 kr of goods; the voucher's 50 kr is shared: 200 × 450 / 500 = 180 kr.
    assert first["amount"] == 18_000 and first["refund"]["status"] == "succeeded"
    assert await _stock(order["m"]) == (5, 0) and await _stock(order["l"]) == (4, 1)
    status = (await Order.select(Order.status).where(Order.id == order["id"]).first())["status"]
    assert status == "paid"  # the rest of the order goes on

    second = await withdrawal.withdraw_from_order(order["number"], [order["lines"]["L"]], member=buyer)
    assert second["amount"] == order["total"] - 18_000  # the rest, delivery included: the whole contract is withdrawn
    assert sorted(r["amount"] for r in await refunds_in_stripe(order["payment_intent"])) == sorted(
        [18_000, order["total"] - 18_000])
    current = await Order.select(Order.status, Order.refunded).where(Order.id == order["id"]).first()
    assert (current["status"], current["refunded"]) == ("refunded", order["total"])
    assert await _stock(order["m"]) == (5, 0) and await _stock(order["l"]) == (5, 0)  # each line back once
    lines = await WithdrawalLine.select(WithdrawalLine.amount)
    assert sum(line["amount"] for line in lines) == order["total"]
    assert (await run_audit()).ok  # sold units, refunds and withdrawals all agree

    # The audit names a withdrawal whose refund Stripe refused (staff must pay it another way).
    await Refund.update({Refund.status: "failed"}).where(Refund.id == second["refund_id"])
    await Order.update({Order.refunded: 18_000}).where(Order.id == order["id"])
    broken = {(v.check, v.subject) for v in (await run_audit()).violations}
    assert ("withdrawals", f"withdrawal {second['reference']}") in broken


async def test_made_to_order_lines_are_exempt_and_the_page_says_so(client, stripe):
    buyer = await make_member("Custom Buyer")
    order = await _two_line_order(buyer, made_to_order=True)
    await login(client, buyer.email)
    page = await client.get(f"/withdraw/orders/{order['number']}")
    assert "Made to your specification: no right of withdrawal" in page.text
    assert f'value="{order["lines"]["L"]}" disabled' in page.text
    refused = await _post(client, page, f"/withdraw/orders/{order['number']}/review", {"line": order["lines"]["L"]})
    assert refused.status_code == 400 and "Tick at least one item" in refused.text
    done = await withdrawal.withdraw_from_order(order["number"], [order["lines"]["M"], order["lines"]["L"]], member=buyer)
    assert [line["order_line"] for line in await WithdrawalLine.select()] == [int(order["lines"]["M"])]
    assert done["amount"] == 20_000  # the M line's share only: the contract is not withdrawn as a whole


async def test_after_the_14_days_withdrawal_is_refused_and_nothing_is_written(client, stripe):
    buyer = await make_member("Too Late")
    order = await make_shop_order(buyer, quantity=1)
    await Order.update({Order.status: "delivered", Order.delivered_at: utcnow() - dt.timedelta(days=15)}).where(
        Order.id == order["id"])
    await login(client, buyer.email)
    start = await client.get("/withdraw")
    assert f"Withdraw from {order['number']}" not in start.text
    page = await client.get(f"/withdraw/orders/{order['number']}")
    assert "The 14-day withdrawal period for this order ended on" in page.text
    line_id = str((await OrderLine.select(OrderLine.id).where(OrderLine.order == order["id"]).first())["id"])
    refused = await _post(client, page, f"/withdraw/orders/{order['number']}", {"line": line_id})
    assert refused.status_code == 409
    assert await Withdrawal.count() == 0 and await Refund.count() == 0
    assert await EmailMessage.count().where(EmailMessage.kind == "withdrawal_receipt") == 0


async def test_two_withdrawals_at_once_refund_once_and_restock_once(stripe):
    buyer = await make_member("Double Clicker")
    order = await make_shop_order(buyer, price=10_000, quantity=2, stock=4, shipping=0)
    line_id = str((await OrderLine.select(OrderLine.id).where(OrderLine.order == order["id"]).first())["id"])
    results = await asyncio.gather(*(withdrawal.withdraw_from_order(order["number"], [line_id], member=buyer)
                                     for _ in range(3)), return_exceptions=True)
    done = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(done) == 1 and len(refused) == 2 and all(isinstance(r, Conflict) for r in refused), results
    assert await Withdrawal.count() == 1 and await Refund.count() == 1
    assert [r["amount"] for r in await refunds_in_stripe(order["payment_intent"])] == [order["total"]]
    assert await _stock(order["variant_id"]) == (4, 0)
    assert await EmailMessage.count().where(EmailMessage.kind == "withdrawal_receipt") == 1
    assert (await run_audit()).ok


async def test_someone_elses_order_is_not_found(client, stripe):
    buyer = await make_member("Owner")
    other = await make_member("Other")
    order = await make_shop_order(buyer, quantity=1)
    await login(client, other.email)
    assert (await client.get(f"/withdraw/orders/{order['number']}")).status_code == 404
    start = await client.get("/withdraw")
    line_id = str((await OrderLine.select(OrderLine.id).where(OrderLine.order == order["id"]).first())["id"])
    assert (await _post(client, start, f"/withdraw/orders/{order['number']}", {"line": line_id})).status_code == 404
    assert await Withdrawal.count() == 0


async def test_guest_lookups_are_throttled(client, stripe):
    buyer = await make_member("Throttled")
    order = await make_shop_order(buyer, quantity=1)
    start = await client.get("/withdraw")
    codes = [(await _post(client, start, "/withdraw/find", {"number": order["number"], "email": f"guess{n}@x.test"})).status_code
             for n in range(11)]
    assert codes[:10] == [400] * 10 and codes[10] == 429
    right = await _post(client, start, "/withdraw/find", {"number": order["number"], "email": buyer.email})
    assert right.status_code == 429  # the right answer waits too, or guessing would go on


async def test_backer_withdraws_from_an_active_pledge(client, stripe):
    backer = await make_member("Backer Withdraws")
    campaign_id, campaign = await make_campaign(goal=5)
    pledge_id = await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"])
    before = await Campaign.select(Campaign.backers).where(Campaign.id == campaign_id).first()
    await login(client, backer.email)
    start = await client.get("/withdraw")
    assert f'href="/withdraw/pledges/{pledge_id}"' in start.text
    page = await client.get(f"/withdraw/pledges/{pledge_id}")
    assert page.status_code == 200 and "never charged" in page.text
    done = await _post(client, page, f"/withdraw/pledges/{pledge_id}", {})
    assert done.status_code == 200 and "Withdrawal received" in done.text
    assert "Nothing was charged" in done.text
    assert (await Pledge.select(Pledge.status).where(Pledge.id == pledge_id).first())["status"] == "cancelled"
    reference = (await Withdrawal.select(Withdrawal.reference).first())["reference"]
    assert (await PledgeEvent.select(PledgeEvent.message).where(PledgeEvent.pledge == pledge_id).order_by(
        PledgeEvent.id, ascending=False).first())["message"] == f"Withdrawal {reference}"
    after = await Campaign.select(Campaign.backers).where(Campaign.id == campaign_id).first()
    assert after["backers"] == before["backers"] - 1
    receipts = await EmailMessage.select().where(EmailMessage.kind == "withdrawal_receipt")
    assert len(receipts) == 1 and "will not be charged" in receipts[0]["text_body"]
    assert await EmailMessage.count().where(EmailMessage.kind == "pledge_cancelled") == 0  # the receipt says it
    again = await _post(client, page, f"/withdraw/pledges/{pledge_id}", {})
    assert again.status_code == 200 and (await Withdrawal.select().first())["reference"] in again.text
    assert await Withdrawal.count() == 1


async def test_two_pledge_withdrawals_at_once_cancel_once(stripe):
    backer = await make_member("Pledge Double")
    campaign_id, campaign = await make_campaign(goal=5)
    pledge_id = await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"], quantity=2)
    before = await Campaign.select(Campaign.backers, Campaign.pledged_units).where(Campaign.id == campaign_id).first()
    results = await asyncio.gather(*(withdrawal.withdraw_from_pledge(backer, pledge_id) for _ in range(3)))
    assert len({r["reference"] for r in results}) == 1
    after = await Campaign.select(Campaign.backers, Campaign.pledged_units).where(Campaign.id == campaign_id).first()
    assert (after["backers"], after["pledged_units"]) == (before["backers"] - 1, before["pledged_units"] - 2)
    assert await Withdrawal.count() == 1
    assert await EmailMessage.count().where(EmailMessage.kind == "withdrawal_receipt") == 1


async def test_staff_mark_a_variant_made_to_order_and_its_buyers_see_it_exempt(client, stripe):
    staff = await make_member("Catalog Staff", staff=True)
    buyer = await make_member("Name Printed")
    product = await make_product("Name mug", price=15_000, variants={"Plain": 5, "With your name": 5})
    named = product["variants"]["With your name"]
    await login(client, staff.email)
    edit = await client.get(f"/staff/products/{product['id']}/edit")
    assert "made to the buyer&#39;s specification" in edit.text or "made to the buyer's specification" in edit.text
    form = {"name": "Name mug", "summary": "", "description": "A mug.", "details": "", "category": "", "price": "150",
            "ships_in_days": "2", "status": "active", **SAFETY}
    for index, (name, variant_id) in enumerate(product["variants"].items()):
        form.update({f"variant_id_{index}": str(variant_id), f"variant_name_{index}": name})
    form["variant_made_1"] = "1"
    saved = await _post(client, edit, f"/staff/products/{product['id']}/edit", form)
    assert saved.status_code == 303, saved.text[:400]
    flags = {r["name"]: r["made_to_order"] for r in await ProductVariant.select().where(ProductVariant.product == product["id"])}
    assert flags == {"Plain": False, "With your name": True}
    page = await client.get(f"/shop/{product['slug']}")
    assert "Options made to your specification (With your name) have no right of withdrawal" in page.text

    order = await checkout.place_order(buyer, CheckoutInput(lines=[(named, 1)], address={
        k: v for k, v in ADDRESS.items() if k != "shipping_label"}, shipping="standard"))
    await save_card(order.setup_intent_client_secret)
    assert (await checkout.pay_order(buyer, order.number)).status == "paid"
    line = await OrderLine.select().where(OrderLine.order.number == order.number).first()
    assert line["made_to_order"] is True
    await login(client, buyer.email)
    withdraw = await client.get(f"/withdraw/orders/{order.number}")
    assert "Made to your specification: no right of withdrawal" in withdraw.text
    assert "Nothing is left to withdraw from in this order" in withdraw.text


async def test_withdrawal_over_the_json_api(client, stripe):
    buyer = await make_member("Api Buyer")
    backer = await make_member("Api Backer")
    order = await _two_line_order(buyer, made_to_order=True)
    auth = {"Authorization": f"Bearer {await accounts.create_api_token(buyer.id)}"}
    shown = (await client.get(f"/api/v1/orders/{order['number']}", headers=auth)).json()
    assert [(line["variant"], line["made_to_order"]) for line in shown["lines"]] == [("M", False), ("L", True)]
    exempt = await client.post(f"/api/v1/orders/{order['number']}/withdrawals", headers=auth,
                               json={"lines": [int(order["lines"]["L"])]})
    assert exempt.status_code == 400 and "Tick at least one item" in exempt.text
    done = await client.post(f"/api/v1/orders/{order['number']}/withdrawals", headers=auth, json={})
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["amount"] == 20_000 and body["refund_status"] == "succeeded" and body["receipt_sent_to"] == buyer.email
    assert [line["order_line"] for line in body["lines"]] == [int(order["lines"]["M"])]
    again = await client.post(f"/api/v1/orders/{order['number']}/withdrawals", headers=auth, json={})
    assert again.status_code == 409 and "Nothing is left to withdraw from" in again.json()["detail"]
    stranger = {"Authorization": f"Bearer {await accounts.create_api_token(backer.id)}"}
    assert (await client.post(f"/api/v1/orders/{order['number']}/withdrawals", headers=stranger, json={})).status_code == 404

    campaign_id, campaign = await make_campaign(goal=5)
    pledge_id = await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"])
    pledged = await client.post(f"/api/v1/pledges/{pledge_id}/withdrawal", headers=stranger)
    assert pledged.status_code == 201 and pledged.json()["pledge_id"] == pledge_id and pledged.json()["amount"] == 0
    assert (await Pledge.select(Pledge.status).where(Pledge.id == pledge_id).first())["status"] == "cancelled"
    assert (await client.post(f"/api/v1/pledges/{pledge_id}/withdrawal", headers=auth)).status_code == 404


async def test_backer_withdraws_from_a_paid_preorder_and_is_refunded(client, stripe):
    backer = await make_member("Preorder Regret")
    other = await make_member("Keeps Theirs")
    made = await make_preorders([backer, other], price="500")
    order = next(o for o in made["orders"] if o["member"] == backer.id)
    await login(client, backer.email)
    page = await client.get(f"/orders/{order['number']}")
    assert "Withdraw from this order" in page.text
    lines = await client.get(f"/withdraw/orders/{order['number']}")
    line_id = re.search(r'name="line" value="(\d+)" checked', lines.text).group(1)
    done = await _post(client, lines, f"/withdraw/orders/{order['number']}", {"line": line_id})
    assert done.status_code == 200 and "50 000" not in done.text and "500,00" in done.text
    assert [r["amount"] for r in await refunds_in_stripe(order["payment_intent_id"])] == [order["total"]]
    assert (await Order.select(Order.status).where(Order.id == order["id"]).first())["status"] == "refunded"
    assert (await run_audit()).ok


async def test_a_voucher_paid_order_withdrawn_whole_is_cancelled_and_the_voucher_returns(stripe, monkeypatch):
    monkeypatch.setattr(get_settings(), "free_shipping_over", 1)
    buyer = await make_member("Voucher Withdraws")
    await points.award(buyer.id, "adjustment", key=f"w-voucher:{buyer.id}", points=points.VOUCHER_POINTS)
    code = (await points.redeem_voucher(buyer.id))["code"]
    product = await make_product("Sticker pack", price=points.VOUCHER_AMOUNT, variants={"One": 4})
    placed = await checkout.place_order(buyer, CheckoutInput(lines=[(product["variants"]["One"], 1)], address={
        k: v for k, v in ADDRESS.items() if k != "shipping_label"}, shipping="standard", voucher=code))
    assert placed.status == "paid"  # the voucher paid it all
    balance = (await accounts.get_member(buyer.id)).points_balance
    line = str((await OrderLine.select(OrderLine.id).where(OrderLine.order == placed.order_id).first())["id"])
    done = await withdrawal.withdraw_from_order(placed.number, [line], member=buyer)
    assert done["amount"] == 0 and await Refund.count() == 0
    order = await Order.select(Order.status, Order.stock_released).where(Order.id == placed.order_id).first()
    assert (order["status"], order["stock_released"]) == ("cancelled", True)
    assert await _stock(product["variants"]["One"]) == (4, 0)  # back once
    assert (await accounts.get_member(buyer.id)).points_balance == balance + points.VOUCHER_POINTS
    assert (await run_audit()).ok


async def test_guest_guesses_at_the_last_step_are_throttled_too(client, stripe):
    buyer = await make_member("Guessed")
    order = await make_shop_order(buyer, quantity=1)
    line_id = str((await OrderLine.select(OrderLine.id).where(OrderLine.order == order["id"]).first())["id"])
    start = await client.get("/withdraw")
    codes = [(await _post(client, start, f"/withdraw/orders/{order['number']}",
                          {"line": line_id, "email": f"guess{n}@x.test"})).status_code for n in range(11)]
    assert codes[:10] == [404] * 10 and codes[10] == 429
    assert await Withdrawal.count() == 0


async def test_staff_clicking_goods_returned_twice_at_once_notes_it_once(stripe):
    buyer = await make_member("Returned Twice")
    staff = await make_member("Staff", staff=True)
    order = await make_shop_order(buyer, quantity=2, stock=4)
    await fulfilment.set_status(staff, order["id"], "shipped", carrier="dhl", tracking_number="JD9")
    line_id = str((await OrderLine.select(OrderLine.id).where(OrderLine.order == order["id"]).first())["id"])
    done = await withdrawal.withdraw_from_order(order["number"], [line_id], member=buyer)
    units = await asyncio.gather(*(withdrawal.goods_returned(staff, done["id"]) for _ in range(3)))
    assert sorted(units) == [0, 0, 2] and await _stock(order["variant_id"]) == (4, 0)
    notes = await OrderEvent.count().where((OrderEvent.order == order["id"])
                                            & OrderEvent.message.like("Goods returned%"))
    assert notes == 1


async def test_an_erased_members_address_finds_nothing_and_the_receipt_address_goes(client, stripe):
    buyer = await make_member("Erased Later")
    order = await make_shop_order(buyer, quantity=1)
    line_id = str((await OrderLine.select(OrderLine.id).where(OrderLine.order == order["id"]).first())["id"])
    await withdrawal.withdraw_from_order(order["number"], [line_id], member=buyer)
    await Member.update({Member.email: f"deleted-{buyer.id}@invalid"}).where(Member.id == buyer.id)
    with pytest.raises(NotFound):
        await withdrawal.find_order(order["number"], email=f"deleted-{buyer.id}@invalid")
    await orders_personal_data.erase(Erasure(member_id=buyer.id, email=buyer.email, display_name=buyer.display_name,
                                             handle=buyer.handle, stripe_customer_id="", remove_content=False))
    assert (await Withdrawal.select(Withdrawal.email).first())["email"] == f"deleted-{buyer.id}@invalid"


async def test_staff_retry_a_refused_withdrawal_refund_once(client, stripe):
    buyer = await make_member("Refused Refund")
    staff = await make_member("Staff", staff=True)
    order = await make_shop_order(buyer, price=10_000, quantity=1, shipping=0)
    await Order.update({Order.payment_intent_id: "pi_doesnotexist"}).where(Order.id == order["id"])
    line_id = str((await OrderLine.select(OrderLine.id).where(OrderLine.order == order["id"]).first())["id"])
    done = await withdrawal.withdraw_from_order(order["number"], [line_id], member=buyer)
    assert done["refund"]["status"] == "failed" and "refused the refund" in withdrawal.refund_text(done)
    assert (await Order.select(Order.refunded).where(Order.id == order["id"]).first())["refunded"] == 0
    assert ("withdrawals", f"withdrawal {done['reference']}") in {(v.check, v.subject) for v in (await run_audit()).violations}

    await Order.update({Order.payment_intent_id: order["payment_intent"]}).where(Order.id == order["id"])
    await login(client, staff.email)
    page = await client.get(f"/staff/orders/{order['number']}")
    assert "Stripe refused this refund" in page.text
    results = await asyncio.gather(*(withdrawal.retry_refund(staff, done["id"]) for _ in range(2)), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "dict"]
    assert [r["amount"] for r in await refunds_in_stripe(order["payment_intent"])] == [order["total"]]
    assert (await Order.select(Order.status).where(Order.id == order["id"]).first())["status"] == "refunded"
    assert (await run_audit()).ok
    again = await _post(client, page, f"/staff/orders/{order['number']}/withdrawals/{done['id']}/refund", {})
    assert again.status_code == 303 and "nothing to retry" in (await client.get(again.headers["location"])).text


async def test_a_refund_may_wait_for_the_goods_and_is_sent_once_when_they_are_back(client, stripe, monkeypatch):
    monkeypatch.setattr(get_settings(), "withdrawal_refund_after_return", True)
    buyer = await make_member("Parcel Returner")
    staff = await make_member("Returns Desk", staff=True)
    order = await make_shop_order(buyer, price=25_000, quantity=1, stock=3, shipping=4_900)
    await fulfilment.set_status(staff, order["id"], "shipped", carrier="dhl", tracking_number="JD0002")
    line_id = str((await OrderLine.select(OrderLine.id).where(OrderLine.order == order["id"]).first())["id"])
    await login(client, buyer.email)
    found = await client.get(f"/withdraw/orders/{order['number']}")
    review = await _post(client, found, f"/withdraw/orders/{order['number']}/review", {"line": line_id})
    assert "as soon as the items are back with us" in review.text
    done = await withdrawal.withdraw_from_order(order["number"], [line_id], member=buyer)
    assert done["refund_waits"] and done.get("refund_id") is None
    assert await refunds_in_stripe(order["payment_intent"]) == []  # nothing refunded before the parcel is back
    receipt = (await EmailMessage.select(EmailMessage.text_body).where(EmailMessage.kind == "withdrawal_receipt"))[0]
    assert "as soon as the items are back with us" in receipt["text_body"]
    assert (await run_audit()).ok  # waiting for the goods is not a missing refund
    client.cookies.clear()
    await login(client, staff.email)
    staff_page = await client.get(f"/staff/orders/{order['number']}")
    assert "to refund when the goods are back" in staff_page.text and "put back in stock and refund" in staff_page.text
    await asyncio.gather(*(withdrawal.goods_returned(staff, done["id"]) for _ in range(3)))
    assert [r["amount"] for r in await refunds_in_stripe(order["payment_intent"])] == [order["total"]]
    assert await Refund.count().where(Refund.order == order["id"]) == 1
    assert await _stock(order["variant_id"]) == (3, 0)
    assert (await run_audit()).ok
