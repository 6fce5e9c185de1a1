"""Signed webhook events of the wrong shape (issue 18): refused with 400 and a reason, nothing
recorded (the event id stays free for a well-formed delivery), never a 500; a well-formed event of
a type we do not handle, or a payment intent that is not ours, is still acknowledged with 200."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.payments.gateway import sign_webhook_payload
from app.payments.tables import StripeEvent

WEBHOOK_SECRET = "whsec_test_crowdmade"
INTENT = {"id": "pi_shape", "object": "payment_intent", "amount": 1000, "status": "succeeded", "metadata": {}}


def event(**changes) -> dict:
    return {"id": "evt_shape", "type": "payment_intent.succeeded", "data": {"object": dict(INTENT)}, **changes}


def with_intent(**changes) -> dict:
    return event(data={"object": {**INTENT, **changes}})


async def deliver(client, body) -> object:
    payload = body if isinstance(body, str) else json.dumps(body)
    return await client.post("/webhooks/stripe", content=payload,
                             headers={"stripe-signature": sign_webhook_payload(payload, WEBHOOK_SECRET)})


BAD_SHAPES = {
    "a list": [event()],
    "a string": "evt_shape",
    "null": None,
    "no id": {k: v for k, v in event().items() if k != "id"},
    "an empty id": event(id=""),
    "a numeric id": event(id=12),
    "an id longer than the column": event(id="evt_" + "x" * 100),
    "no type": {k: v for k, v in event().items() if k != "type"},
    "a numeric type": event(type=7),
    "no data": {k: v for k, v in event().items() if k != "data"},
    "data as a list": event(data=[INTENT]),
    "data.object as a string": event(data={"object": "pi_shape"}),
    "an intent without an id": event(data={"object": {k: v for k, v in INTENT.items() if k != "id"}}),
    "a numeric intent id": with_intent(id=5),
    "metadata as a list": with_intent(metadata=["order_id", "1"]),
    "metadata with a number": with_intent(metadata={"order_id": 1, "attempt": "1"}),
    "a status that is a map": with_intent(status={"x": 1}),
    "a text amount": with_intent(amount="1000"),
    "a boolean amount": with_intent(amount=True),
    "a negative amount": with_intent(amount=-1),
    "an amount beyond any column": with_intent(amount=2**40),
    "a payment error that is a string": with_intent(status="requires_payment_method", last_payment_error="declined"),
    "a payment error with a numeric code": with_intent(status="requires_payment_method",
                                                      last_payment_error={"code": 402}),
}


@pytest.mark.parametrize("name", BAD_SHAPES)
async def test_a_malformed_event_is_refused_and_not_recorded(client, stripe, name):
    response = await deliver(client, BAD_SHAPES[name])
    assert response.status_code == 400, response.text
    assert response.json()["detail"]
    assert await StripeEvent.count() == 0
    # The id is not taken: the well-formed delivery of the same event is still applied.
    good = await deliver(client, event())
    assert good.status_code == 200 and good.json()["outcome"] == "not ours"
    assert await StripeEvent.count() == 1


async def test_well_formed_events_we_do_not_own_are_acknowledged(client, stripe):
    # A type we do not handle needs only an id and a type.
    ignored = await deliver(client, {"id": "evt_other", "type": "customer.created", "data": "anything"})
    assert ignored.status_code == 200 and ignored.json()["outcome"] == "ignored"
    # Metadata naming rows in a form our charges never write: another integration's intent.
    for n, metadata in enumerate([{"order_id": "9" * 30, "attempt": "1"}, {"pledge_id": "١٢", "attempt": "1"},
                                  {"order_id": "-1", "attempt": "1"}, None]):
        response = await deliver(client, with_intent(metadata=metadata) | {"id": f"evt_foreign_{n}"})
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "not ours"
    assert await StripeEvent.count() == 5


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12)
FIELDS = st.sampled_from(["id", "type", "data", "object", "metadata", "status", "amount", "last_payment_error",
                          "client_secret"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(replacements=st.lists(st.tuples(FIELDS, JSON_VALUES), min_size=1, max_size=4))
async def test_random_shapes_never_fail_the_server(client, stripe, replacements):
    """Any field of a payment event replaced by any JSON value: a 200 or a 400, and a 400 records
    nothing."""
    body = event(id="evt_random")
    body["data"]["object"] = dict(INTENT, id="pi_random")
    for field, value in replacements:
        if field in ("id", "type", "data"):
            body[field] = value
        elif field == "object" and isinstance(body.get("data"), dict):
            body["data"]["object"] = value
        elif isinstance(body.get("data"), dict) and isinstance(body["data"].get("object"), dict):
            body["data"]["object"][field] = value
    before = await StripeEvent.count()
    response = await deliver(client, body)
    assert response.status_code in (200, 400), (response.status_code, response.text[:300], body)
    after = await StripeEvent.count()
    if response.status_code == 400:
        assert after == before
    else:
        assert after <= before + 1
