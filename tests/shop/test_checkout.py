"""Checkout: stock taken atomically, paid exactly once (API answer, authentication or webhook),
declined and abandoned checkouts released, vouchers spent once, access control, JSON API."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re

import httpx
import pytest

from app.accounts.tables import Address
from app.db import utcnow
from app.errors import Conflict, FormError, NotFound
from app.mail.tables import EmailMessage
from app.notifications.tables import Notification
from app.orders.tables import Order, OrderEvent, OrderPayment
from app.payments.gateway import gateway, sign_webhook_payload
from app.points import service as points
from app.settings import get_settings
from app.shop import cart as carts
from app.shop import checkout
from app.shop.checkout import CheckoutInput
from app.shop.tables import BoughtTogether, Product, ProductVariant, Voucher
from tests.campaigns.helpers import CARD_AUTH_LATER, CARD_DECLINED_LATER, CARD_OK, save_card
from tests.factories import PASSWORD, csrf_from, login, make_member
from tests.shop.helpers import make_product

ADDRESS = {"name": "Ada Buyer", "line1": "Storgatan 1", "line2": "", "postal_code": "111 22", "city": "Stockholm",
           "country": "SE", "phone": "+46 70 123 45 67"}
WEBHOOK_SECRET = "whsec_test_crowdmade"


def _input(lines, **extra) -> CheckoutInput:
    return CheckoutInput(lines=lines, address=dict(ADDRESS), shipping=extra.pop("shipping", "standard"), **extra)


async def _variant(variant_id: int) -> dict:
    return await ProductVariant.select().where(ProductVariant.id == variant_id).first()


async def _status(number: str) -> str:
    return (await Order.select(Order.status).where(Order.number == number).first())["status"]


async def _paid_events(number: str) -> int:
    order = await Order.select(Order.id).where(Order.number == number).first()
    return await OrderEvent.count().where((OrderEvent.order == order["id"]) & (OrderEvent.to_status == "paid"))


async def _authenticate_in_browser(payment_intent_id: str, client_secret: str, success: bool = True) -> None:
    """What Stripe.js confirmCardPayment does with localstripe's 3-D Secure box."""
    settings = get_settings()
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{settings.stripe_api_base}/v1/payment_intents/{payment_intent_id}/_authenticate",
            params={"success": "true" if success else "false"},
            data={"key": settings.stripe_publishable_key, "client_secret": client_secret})
        assert response.status_code == 200, response.text


async def _voucher_for(member) -> str:  # noqa: ANN001
    import uuid

    await points.award(member.id, "adjustment", key=f"test-points:{uuid.uuid4().hex}", points=points.VOUCHER_POINTS,
                       note="test")
    return (await points.redeem_voucher(member.id))["code"]


async def test_thirty_concurrent_checkouts_for_ten_units_sell_exactly_ten(stripe):
    product = await make_product("Launch hoodie", price=59_900, variants={"M": 10})
    variant = product["variants"]["M"]
    buyers = [await make_member(f"Rush Buyer {i}") for i in range(30)]
    results = await asyncio.gather(*(checkout.place_order(b, _input([(variant, 1)])) for b in buyers),
                                   return_exceptions=True)
    placed = [(b, r) for b, r in zip(buyers, results, strict=True) if isinstance(r, checkout.PlacedOrder)]
    refused = [r for r in results if isinstance(r, FormError)]
    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, FormError)]
    assert len(placed) == 10 and len(refused) == 20
    assert all(r.errors == {f"line-{variant}": "None left of Launch hoodie: it sold out. Remove it to continue."}
               for r in refused)
    assert (await _variant(variant))["stock"] == 0
    assert await Order.count() == 10  # the refused checkouts left nothing behind

    async def pay(buyer, order):  # noqa: ANN001
        await save_card(order.setup_intent_client_secret, CARD_OK)
        return await checkout.pay_order(buyer, order.number)

    paid = await asyncio.gather(*(pay(b, o) for b, o in placed))
    assert [p.status for p in paid] == ["paid"] * 10
    row = await _variant(variant)
    assert row["stock"] == 0 and row["sold"] == 10
    assert (await Product.select(Product.sold_count).where(Product.id == product["id"]).first())["sold_count"] == 10
    assert await Order.count().where(Order.status == "paid") == 10
    assert await EmailMessage.count().where(EmailMessage.kind == "order_confirmation") == 10
    # one PaymentIntent per order, for the order's total (shipping included)
    intents = (await gateway().client.v1.payment_intents.list_async(params={"limit": 100})).data
    ours = [i for i in intents if i.status == "succeeded"]
    assert len(ours) == 10 and {i.amount for i in ours} == {59_900 + 4_900}


async def test_a_refused_line_says_how_many_are_left_and_nothing_is_half_written(stripe):
    buyer = await make_member("Greedy Buyer")
    product = await make_product("Enamel pin", price=9_900, variants={"Gold": 3})
    other = await make_product("Sticker pack", price=4_900, variants={"One": 50})
    with pytest.raises(FormError) as error:
        await checkout.place_order(buyer, _input([(other["variants"]["One"], 2), (product["variants"]["Gold"], 5)]))
    assert error.value.errors == {f"line-{product['variants']['Gold']}": "Only 3 left of Enamel pin."}
    assert await Order.count() == 0 and (await _variant(other["variants"]["One"]))["stock"] == 50
    with pytest.raises(FormError) as error:
        await checkout.place_order(buyer, CheckoutInput(lines=[(other["variants"]["One"], 1)],
                                                        address={"name": "", "country": "XX", "postal_code": "!"},
                                                        shipping="teleport"))
    assert {"line1", "city", "name", "country", "postal_code"} <= set(error.value.errors)
    with pytest.raises(FormError) as error:
        await checkout.place_order(buyer, _input([(other["variants"]["One"], 1)], shipping="teleport"))
    assert error.value.errors == {"shipping": "Choose a delivery option."}
    assert await Order.count() == 0


async def test_authentication_required_pays_once_with_api_answer_and_webhook(client, stripe):
    buyer = await make_member("Three D Buyer")
    product = await make_product("Leather wallet", price=45_000, variants={"Brown": 2})
    order = await checkout.place_order(buyer, _input([(product["variants"]["Brown"], 1)], save_address=True))
    await save_card(order.setup_intent_client_secret, CARD_AUTH_LATER)
    first = await checkout.pay_order(buyer, order.number)
    assert first.status == "requires_action" and first.client_secret
    payment = await checkout.last_payment(order.order_id)
    assert payment["status"] == "needs_authentication" and payment["payment_intent_id"]
    # paying again without a new card only asks Stripe (no second charge)
    again = await checkout.pay_order(buyer, order.number)
    assert again.status == "requires_action" and await OrderPayment.count() == 1
    await _authenticate_in_browser(payment["payment_intent_id"], first.client_secret)
    # the browser's /complete and Stripe's webhook arrive at the same time
    intent = {"id": payment["payment_intent_id"], "object": "payment_intent", "status": "succeeded", "amount": order.total,
              "metadata": {"order_id": str(order.order_id), "attempt": "1", "order_number": order.number}}
    payload = json.dumps({"id": "evt_order_paid", "type": "payment_intent.succeeded", "data": {"object": intent}})
    signature = sign_webhook_payload(payload, WEBHOOK_SECRET)
    results = await asyncio.gather(
        checkout.complete_authentication(buyer, order.number),
        *(client.post("/webhooks/stripe", content=payload, headers={"stripe-signature": signature}) for _ in range(3)),
    )
    assert results[0].status == "paid"
    assert all(r.status_code == 200 for r in results[1:])
    assert await _status(order.number) == "paid" and await _paid_events(order.number) == 1
    assert (await _variant(product["variants"]["Brown"]))["sold"] == 1
    assert await EmailMessage.count().where(EmailMessage.kind == "order_confirmation") == 1
    assert await Notification.count().where(Notification.member == buyer.id) == 1
    assert await Address.count().where(Address.member == buyer.id) == 1
    # a late second webhook (another event id) changes nothing
    late = json.dumps({"id": "evt_order_paid_2", "type": "payment_intent.succeeded", "data": {"object": intent}})
    response = await client.post("/webhooks/stripe", content=late,
                                 headers={"stripe-signature": sign_webhook_payload(late, WEBHOOK_SECRET)})
    assert response.json()["outcome"] == "duplicate" and await _paid_events(order.number) == 1


async def test_webhook_first_then_the_browser(client, stripe):
    buyer = await make_member("Webhook First")
    product = await make_product("Canvas cap", price=19_900, variants={"One": 4})
    order = await checkout.place_order(buyer, _input([(product["variants"]["One"], 2)]))
    await save_card(order.setup_intent_client_secret, CARD_AUTH_LATER)
    first = await checkout.pay_order(buyer, order.number)
    payment = await checkout.last_payment(order.order_id)
    await _authenticate_in_browser(payment["payment_intent_id"], first.client_secret)
    intent = (await gateway().client.v1.payment_intents.retrieve_async(payment["payment_intent_id"])).to_dict()
    payload = json.dumps({"id": "evt_first", "type": "payment_intent.succeeded", "data": {"object": intent}})
    response = await client.post("/webhooks/stripe", content=payload,
                                 headers={"stripe-signature": sign_webhook_payload(payload, WEBHOOK_SECRET)})
    assert response.json()["outcome"] == "paid"
    assert (await checkout.complete_authentication(buyer, order.number)).status == "paid"
    assert (await checkout.pay_order(buyer, order.number)).status == "paid"
    assert await _paid_events(order.number) == 1 and (await _variant(product["variants"]["One"]))["sold"] == 2


async def test_declined_card_keeps_the_hold_then_the_job_cancels_and_gives_everything_back(stripe):
    buyer = await make_member("Declined Buyer")
    code = await _voucher_for(buyer)
    product = await make_product("Weekend bag", price=120_000, variants={"Olive": 3})
    variant = product["variants"]["Olive"]
    order = await checkout.place_order(buyer, _input([(variant, 2)], voucher=code))
    assert order.discount == points.VOUCHER_AMOUNT and order.total == 240_000 + 4_900 - points.VOUCHER_AMOUNT
    await save_card(order.setup_intent_client_secret, CARD_DECLINED_LATER)
    result = await checkout.pay_order(buyer, order.number)
    assert result.status == "declined" and "declined" in result.message.lower()
    assert result.setup_intent_client_secret  # a fresh card form to try another card
    assert await _status(order.number) == "placed" and (await _variant(variant))["stock"] == 1
    assert await Order.count().where(Order.status == "paid") == 0
    # the job before the hold ends changes nothing
    assert await checkout.expire_checkouts(now=utcnow()) == 0
    later = utcnow() + dt.timedelta(minutes=get_settings().checkout_hold_minutes + 1)
    assert await asyncio.gather(checkout.expire_checkouts(now=later), checkout.expire_checkouts(now=later)) in ([1, 0], [0, 1])
    assert await _status(order.number) == "cancelled"
    assert (await _variant(variant))["stock"] == 3 and (await _variant(variant))["sold"] == 0
    voucher = await Voucher.select().where(Voucher.code == code).first()
    assert voucher["status"] == "cancelled"
    from app.accounts.tables import Member

    balance = await Member.select(Member.points_balance).where(Member.id == buyer.id).first()
    assert balance["points_balance"] == points.VOUCHER_POINTS  # the voucher's points came back
    # paying a cancelled order is refused with a clear message, nothing charged
    with pytest.raises(Conflict) as error:
        await checkout.pay_order(buyer, order.number)
    assert "cancelled" in error.value.message


async def test_the_expiry_job_never_cancels_an_order_whose_payment_succeeded(stripe):
    buyer = await make_member("Slow Authenticator")
    product = await make_product("Scarf", price=30_000, variants={"Red": 1})
    order = await checkout.place_order(buyer, _input([(product["variants"]["Red"], 1)]))
    await save_card(order.setup_intent_client_secret, CARD_AUTH_LATER)
    first = await checkout.pay_order(buyer, order.number)
    payment = await checkout.last_payment(order.order_id)
    await _authenticate_in_browser(payment["payment_intent_id"], first.client_secret)  # succeeded at Stripe only
    later = utcnow() + dt.timedelta(hours=2)
    assert await checkout.expire_checkouts(now=later) == 0
    assert await _status(order.number) == "paid" and (await _variant(product["variants"]["Red"]))["sold"] == 1


async def test_the_expiry_job_cancels_a_payment_still_waiting_for_authentication(stripe):
    buyer = await make_member("Gone Away")
    product = await make_product("Belt", price=30_000, variants={"One": 1})
    order = await checkout.place_order(buyer, _input([(product["variants"]["One"], 1)]))
    await save_card(order.setup_intent_client_secret, CARD_AUTH_LATER)
    first = await checkout.pay_order(buyer, order.number)
    payment = await checkout.last_payment(order.order_id)
    assert await checkout.expire_checkouts(now=utcnow() + dt.timedelta(hours=2)) == 1
    assert await _status(order.number) == "cancelled" and (await _variant(product["variants"]["One"]))["stock"] == 1
    intent = await gateway().client.v1.payment_intents.retrieve_async(payment["payment_intent_id"])
    assert intent.status == "canceled"  # it can never succeed later
    async with httpx.AsyncClient() as http:  # the browser's authentication now fails
        response = await http.post(
            f"{get_settings().stripe_api_base}/v1/payment_intents/{payment['payment_intent_id']}/_authenticate",
            params={"success": "true"},
            data={"key": get_settings().stripe_publishable_key, "client_secret": first.client_secret})
        assert response.status_code == 400


async def test_voucher_discount_and_one_voucher_in_two_concurrent_checkouts_is_spent_once(stripe):
    buyer = await make_member("Voucher Buyer")
    code = await _voucher_for(buyer)
    product = await make_product("Desk lamp", price=80_000, variants={"White": 10})
    variant = product["variants"]["White"]
    results = await asyncio.gather(checkout.place_order(buyer, _input([(variant, 1)], voucher=code.lower())),
                                   checkout.place_order(buyer, _input([(variant, 1)], voucher=code)),
                                   return_exceptions=True)
    placed = [r for r in results if isinstance(r, checkout.PlacedOrder)]
    assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, FormError)]
    for error in (r for r in results if isinstance(r, FormError)):
        assert error.errors == {"voucher": "This voucher code is not valid for your account or was already used."}
    live = await Order.select().where(Order.status == "placed")
    assert len(live) == 1 and live[0]["discount"] == points.VOUCHER_AMOUNT  # a replaced checkout is cancelled
    assert live[0]["total"] == 80_000 + 4_900 - points.VOUCHER_AMOUNT
    assert await Voucher.count().where((Voucher.status == "spent") & (Voucher.order_id == live[0]["id"])) == 1
    assert placed and (await _variant(variant))["stock"] == 9
    mine = next(p for p in placed if p.number == live[0]["number"])
    await save_card(mine.setup_intent_client_secret, CARD_OK)
    assert (await checkout.pay_order(buyer, live[0]["number"])).status == "paid"
    intent = await gateway().client.v1.payment_intents.retrieve_async(
        (await Order.select(Order.payment_intent_id).where(Order.id == live[0]["id"]).first())["payment_intent_id"])
    assert intent.amount == 80_000 + 4_900 - points.VOUCHER_AMOUNT
    # the spent voucher cannot be used again: a clear message next to the field
    with pytest.raises(FormError) as error:
        await checkout.place_order(buyer, _input([(variant, 1)], voucher=code))
    assert "voucher" in error.value.errors
    # someone else's code is refused the same way
    other = await make_member("Other Voucher")
    with pytest.raises(FormError) as error:
        await checkout.place_order(other, _input([(variant, 1)], voucher=await _voucher_for(buyer)))
    assert "voucher" in error.value.errors and await Order.count().where(Order.member == other.id) == 0


async def test_paid_order_counts_bought_together_empties_cart_and_rewards_referrer(stripe):
    referrer = await make_member("Referrer")
    buyer = await make_member("Referred Buyer")
    from app.accounts.tables import Member

    await Member.update({Member.referred_by: referrer.id}).where(Member.id == buyer.id)
    a = await make_product("Tent", price=200_000, variants={"2p": 5})
    b = await make_product("Sleeping mat", price=50_000, variants={"One": 5})
    owner = carts.member_owner(buyer.id)
    await carts.add_to_cart(owner, a["variants"]["2p"], 1, member_id=buyer.id)
    await carts.add_to_cart(owner, b["variants"]["One"], 2, member_id=buyer.id)
    lines = [(line["variant_id"], line["quantity"]) for line in await carts.cart_lines(owner)]
    order = await checkout.place_order(buyer, _input(lines, shipping="express"))
    assert order.shipping == 9_900 and order.total == 300_000 + 9_900
    await save_card(order.setup_intent_client_secret)
    assert (await checkout.pay_order(buyer, order.number)).status == "paid"
    pairs = {(r["product"], r["other"]): r["orders"] for r in await BoughtTogether.select()}
    assert pairs == {(a["id"], b["id"]): 1, (b["id"], a["id"]): 1}
    assert await carts.cart_count(owner) == 0
    row = await Member.select(Member.points_lifetime).where(Member.id == referrer.id).first()
    assert row["points_lifetime"] == points.RULES["referral"].points


async def test_free_shipping_over_the_threshold(stripe, monkeypatch):
    monkeypatch.setattr(get_settings(), "free_shipping_over", 100_000)
    buyer = await make_member("Big Spender")
    product = await make_product("Chair", price=150_000, variants={"Oak": 2})
    order = await checkout.place_order(buyer, _input([(product["variants"]["Oak"], 1)], shipping="express"))
    assert order.shipping == 0 and order.total == 150_000


async def test_checkout_over_http_without_and_with_javascript(client, stripe):
    buyer = await make_member("Web Buyer")
    product = await make_product("Trail shoes", price=129_900, variants={"42": 2, "43": 1})
    visitor_page = await client.get("/checkout")
    assert visitor_page.status_code == 303 and visitor_page.headers["location"] == "/login?next=/checkout"
    token = csrf_from((await client.get("/cart")).text)
    await client.post("/cart/lines", data={"variant_id": product["variants"]["42"], "quantity": "1", "_csrf_token": token})
    await login(client, buyer.email)
    page = await client.get("/checkout")
    assert page.status_code == 200 and "Trail shoes" in page.text and "Shipping address" in page.text
    assert "Paying by card needs JavaScript" in page.text
    token = csrf_from(page.text)
    # no JavaScript: errors next to the fields, nothing written
    bad = await client.post("/checkout", data={"_csrf_token": token, "address_id": "new", "name": "",
                                               "line1": "", "postal_code": "", "city": "", "country": "SE",
                                               "shipping": "standard"})
    assert bad.status_code == 400 and 'id="err-name"' in bad.text and "Enter your full name." in bad.text
    assert "Enter your street address." in bad.text and await Order.count() == 0
    # with JavaScript (checkout.js posts the same form asking for JSON)
    form = {"_csrf_token": token, "address_id": "new", **ADDRESS, "shipping": "standard", "save_address": "yes"}
    json_bad = await client.post("/checkout", data={**form, "city": ""}, headers={"Accept": "application/json"})
    assert json_bad.status_code == 400 and json_bad.json()["errors"] == {"city": "Enter your city."}
    placed = await client.post("/checkout", data=form, headers={"Accept": "application/json"})
    assert placed.status_code == 201, placed.text
    body = placed.json()
    number = body["number"]
    assert body["status"] == "placed" and body["total"] == 129_900 + 4_900 and body["setup_intent_client_secret"]
    setup_id = await save_card(body["setup_intent_client_secret"], CARD_OK)
    paid = await client.post(body["pay_url"], data={"setup_intent": setup_id},
                             headers={"Accept": "application/json", "x-csrftoken": token})
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    done = await client.get(paid.json()["redirect"])
    assert done.status_code == 200 and number in done.text and "Thank you" in done.text
    assert 'data-testid="cart-count"' not in done.text  # the cart is empty now
    email = await EmailMessage.select().where(EmailMessage.kind == "order_confirmation").first()
    assert email["recipient"] == buyer.email.lower() and number in email["subject"] and "Trail shoes" in email["text_body"]
    # the summary fragment follows the delivery option
    await client.post("/cart/lines", data={"variant_id": product["variants"]["43"], "quantity": "1", "_csrf_token": token})
    summary = await client.get("/checkout/summary", params={"shipping": "express"}, headers={"HX-Request": "true"})
    assert "99,00" in summary.text and 'id="pay-total"' in summary.text


async def test_no_javascript_flow_continues_on_the_pay_page(client, stripe):
    buyer = await make_member("Plain Form Buyer")
    product = await make_product("Notebook", price=14_900, variants={"A5": 5})
    await carts.add_to_cart(carts.member_owner(buyer.id), product["variants"]["A5"], 1, member_id=buyer.id)
    await login(client, buyer.email)
    token = csrf_from((await client.get("/checkout")).text)
    placed = await client.post("/checkout", data={"_csrf_token": token, "address_id": "new", **ADDRESS,
                                                  "shipping": "standard"})
    assert placed.status_code == 303 and re.fullmatch(r"/checkout/CM-[0-9A-F]{8}/pay", placed.headers["location"])
    pay_page = await client.get(placed.headers["location"])
    assert pay_page.status_code == 200 and "data-client-secret=" in pay_page.text
    secret = re.search(r'data-mode="setup"\s+data-publishable-key="[^"]*" data-client-secret="([^"]+)"', pay_page.text).group(1)
    setup_id = await save_card(secret, CARD_AUTH_LATER)
    answer = await client.post(placed.headers["location"], data={"_csrf_token": token, "setup_intent": setup_id})
    assert answer.status_code == 303 and answer.headers["location"] == placed.headers["location"]
    page = await client.get(placed.headers["location"])
    assert "Your bank asks you to confirm the payment" in page.text
    number = placed.headers["location"].split("/")[2]
    payment = await checkout.last_payment((await Order.select(Order.id).where(Order.number == number).first())["id"])
    await _authenticate_in_browser(payment["payment_intent_id"], payment["client_secret"])
    complete = await client.post(f"/checkout/{number}/complete", data={"_csrf_token": token})
    assert complete.status_code == 303 and complete.headers["location"] == f"/checkout/{number}/done"
    assert await _status(number) == "paid"


async def test_another_member_cannot_see_or_pay_your_order(client, stripe):
    owner, other = await make_member("Order Owner"), await make_member("Nosy Member")
    product = await make_product("Poster", price=9_900, variants={"A2": 3})
    order = await checkout.place_order(owner, _input([(product["variants"]["A2"], 1)]))
    with pytest.raises(NotFound):
        await checkout.pay_order(other, order.number)
    await login(client, other.email)
    token = csrf_from((await client.get("/cart")).text)
    for path in (f"/checkout/{order.number}/pay", f"/checkout/{order.number}/done"):
        assert (await client.get(path)).status_code == 404
    for path in (f"/checkout/{order.number}/pay", f"/checkout/{order.number}/complete", f"/checkout/{order.number}/card"):
        response = await client.post(path, data={"_csrf_token": token})
        assert response.status_code == 404, path
    token_other = (await client.post("/api/v1/auth/tokens", json={"email": other.email, "password": PASSWORD})).json()["token"]
    api = await client.post(f"/api/v1/orders/{order.number}/pay", json={}, headers={"Authorization": f"Bearer {token_other}"})
    assert api.status_code == 404
    assert await OrderPayment.count() == 0 and await _status(order.number) == "placed"


async def test_api_checkout_and_pay_with_a_bearer_token(client, stripe):
    buyer = await make_member("API Buyer")
    product = await make_product("Water bottle", price=24_900, variants={"Blue": 5})
    token = (await client.post("/api/v1/auth/tokens", json={"email": buyer.email, "password": PASSWORD})).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    no_auth = await client.post("/api/v1/checkout", json={"lines": [], "shipping": "standard"})
    assert no_auth.status_code == 401
    bad = await client.post("/api/v1/checkout", headers=auth, json={
        "lines": [{"variant_id": product["variants"]["Blue"], "quantity": 9}], "shipping": "standard",
        "address": ADDRESS})
    assert bad.status_code == 400 and "Only 5 left of Water bottle." in bad.json()["detail"]
    response = await client.post("/api/v1/checkout", headers=auth, json={
        "lines": [{"variant_id": product["variants"]["Blue"], "quantity": 2, "unit_price": 1}],
        "shipping": "standard", "address": ADDRESS, "total": 1, "status": "paid"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "placed" and body["total"] == 2 * 24_900 + 4_900  # client-sent prices ignored
    assert body["publishable_key"] == get_settings().stripe_publishable_key
    await save_card(body["setup_intent_client_secret"], CARD_DECLINED_LATER)
    declined = await client.post(f"/api/v1/orders/{body['number']}/pay", headers=auth)
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    setup_id = await save_card(declined.json()["setup_intent_client_secret"], CARD_OK)
    paid = await client.post(f"/api/v1/orders/{body['number']}/pay", headers=auth, json={"setup_intent": setup_id})
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    assert await _status(body["number"]) == "paid" and await _paid_events(body["number"]) == 1
    # cookies are not accepted on the API
    await login(client, buyer.email)
    cookie_only = await client.post(f"/api/v1/orders/{body['number']}/pay")
    assert cookie_only.status_code == 401


async def test_a_charge_with_an_unknown_outcome_is_never_charged_twice(stripe, monkeypatch):
    """Stripe charged the card but the answer was lost (a timeout): the member is not told
    'nothing was charged', and the next try finds that payment instead of charging again."""
    from app.payments.gateway import Gateway, GatewayError

    buyer = await make_member("Timeout Buyer")
    product = await make_product("Rain cape", price=39_900, variants={"One": 3})
    order = await checkout.place_order(buyer, _input([(product["variants"]["One"], 1)]))
    await save_card(order.setup_intent_client_secret, CARD_OK)
    real_charge = Gateway.charge

    async def charged_then_lost(self, **kwargs):
        await real_charge(self, **kwargs)
        raise GatewayError("read timeout")

    monkeypatch.setattr(Gateway, "charge", charged_then_lost)
    with pytest.raises(Conflict) as error:
        await checkout.pay_order(buyer, order.number)
    assert "never charged twice" in error.value.message and "nothing was charged" not in error.value.message
    monkeypatch.setattr(Gateway, "charge", real_charge)
    assert (await checkout.pay_order(buyer, order.number)).status == "paid"
    customer = (await Order.select(Order.member.stripe_customer_id).where(Order.id == order.order_id).first())[
        "member.stripe_customer_id"]
    intents = await gateway().find_payments(customer=customer, metadata={"order_id": str(order.order_id)})
    assert len(intents) == 1 and await OrderPayment.count() == 1
    assert await _status(order.number) == "paid" and await _paid_events(order.number) == 1


async def test_api_checkout_with_stripe_down_is_a_clear_409_and_releases_the_units(client, stripe, monkeypatch):
    from app.payments import cards
    from app.payments.gateway import GatewayError

    buyer = await make_member("Down Buyer")
    product = await make_product("Sun hat", price=19_900, variants={"One": 4})
    token = (await client.post("/api/v1/auth/tokens", json={"email": buyer.email, "password": PASSWORD})).json()["token"]

    async def down(*args, **kwargs):
        raise GatewayError("connection refused")

    monkeypatch.setattr(cards, "start_card_setup", down)
    response = await client.post("/api/v1/checkout", headers={"Authorization": f"Bearer {token}"}, json={
        "lines": [{"variant_id": product["variants"]["One"], "quantity": 2}], "shipping": "standard", "address": ADDRESS})
    assert response.status_code == 409 and "nothing was charged" in response.json()["detail"].lower()
    assert (await _variant(product["variants"]["One"]))["stock"] == 4
    assert await Order.count().where(Order.status == "placed") == 0
