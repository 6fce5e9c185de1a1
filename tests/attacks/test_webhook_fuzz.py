"""Webhooks in any order (issue 7): random sequences of replayed, duplicated and out-of-order
payment events for one checkout leave the order paid exactly once if and only if a success
arrived, and apply each event id once."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.audit import format_report, run_audit
from app.orders.tables import Order, OrderEvent
from app.payments.gateway import sign_webhook_payload
from app.payments.tables import StripeEvent
from app.shop import checkout
from app.shop.checkout import CheckoutInput
from tests.campaigns.helpers import CARD_AUTH_LATER, save_card
from tests.factories import make_member
from tests.shop.helpers import make_product

WEBHOOK_SECRET = "whsec_test_crowdmade"
ADDRESS = {"name": "Fuzz Buyer", "line1": "Storgatan 1", "postal_code": "111 22", "city": "Stockholm", "country": "SE"}
EVENTS = st.lists(st.tuples(st.sampled_from(["succeeded", "payment_failed", "requires_action"]),
                            st.integers(min_value=0, max_value=4)),  # event id: repeats are replays
                  min_size=1, max_size=8)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=EVENTS)
async def test_out_of_order_and_replayed_events(client, stripe, events):
    from tests.conftest import clean_database

    await clean_database()
    buyer = await make_member("Fuzz Buyer")
    product = await make_product("Fuzz lamp", price=30_000, variants={"One": 3})
    placed = await checkout.place_order(buyer, CheckoutInput(lines=[(product["variants"]["One"], 1)],
                                                             address=dict(ADDRESS), shipping="standard"))
    await save_card(placed.setup_intent_client_secret, CARD_AUTH_LATER)
    first = await checkout.pay_order(buyer, placed.number)
    assert first.status == "requires_action"
    intent_id = (await checkout.last_payment(placed.order_id))["payment_intent_id"]
    applied: dict[int, str] = {}
    for status, n in events:
        intent = {"id": intent_id, "object": "payment_intent", "amount": placed.total,
                  "status": {"payment_failed": "requires_payment_method"}.get(status, status),
                  "metadata": {"order_id": str(placed.order_id), "attempt": "1"},
                  "last_payment_error": {"message": "Your card was declined."} if status == "payment_failed" else None}
        payload = json.dumps({"id": f"evt_fuzz_{n}", "type": f"payment_intent.{status}", "data": {"object": intent}})
        response = await client.post("/webhooks/stripe", content=payload,
                                     headers={"stripe-signature": sign_webhook_payload(payload, WEBHOOK_SECRET)})
        assert response.status_code == 200
        applied.setdefault(n, status)  # a replayed id is ignored: only its first delivery counts
    order = await Order.select(Order.status).where(Order.id == placed.order_id).first()
    paid_moves = await OrderEvent.count().where((OrderEvent.order == placed.order_id) & (OrderEvent.to_status == "paid"))
    expect_paid = "succeeded" in applied.values()
    assert order["status"] == ("paid" if expect_paid else "placed")
    assert paid_moves == (1 if expect_paid else 0)
    assert await StripeEvent.count() == len(applied)
    report = await run_audit()
    assert report.ok, format_report(report)
