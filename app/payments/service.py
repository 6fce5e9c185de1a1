"""Stripe's events: which are ours, whether a signed one is well formed, and each applied once
(the route is webhooks.py)."""

from __future__ import annotations

import logging

from app.db import write_transaction
from app.payments import intents
from app.payments.tables import StripeEvent

log = logging.getLogger("crowdmade.webhooks")
HANDLED = {"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.requires_action"}
MAX_ID_LENGTH = 80  # StripeEvent.event_id and the attempts' payment_intent_id columns
MAX_SECRET_LENGTH = 200  # the attempts' client_secret column
MAX_METADATA_VALUE = 500  # Stripe's own limit on a metadata value


def shape_problem(event: object) -> str | None:
    """Why a signed event cannot be an event Stripe sends, or None when its shape is sound.

    The signature proves who sent the bytes, not that they are well formed (a test key, a
    replayed fixture, a Stripe API change): a malformed event is refused with 400 and nothing
    is recorded, so it cannot take an event id nor reach the payment code with a wrong type.
    """
    if not isinstance(event, dict):
        return "the event is not an object"
    event_id, kind = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > MAX_ID_LENGTH:
        return "the event has no id"
    if not isinstance(kind, str) or not kind:
        return "the event has no type"
    if kind not in HANDLED:
        return None
    data = event.get("data")
    intent = data.get("object") if isinstance(data, dict) else None
    if not isinstance(intent, dict):
        return "the event has no data.object"
    intent_id = intent.get("id")
    if not isinstance(intent_id, str) or not intent_id or len(intent_id) > MAX_ID_LENGTH:
        return "the payment intent has no id"
    metadata = intent.get("metadata")
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(value, str) and len(value) <= MAX_METADATA_VALUE for value in metadata.values())):
        return "the payment intent's metadata is not a map of strings"
    for key in ("status", "client_secret"):
        if not isinstance(intent.get(key), str | None) or len(intent.get(key) or "") > MAX_SECRET_LENGTH:
            return f"the payment intent's {key} is not a string"
    amount = intent.get("amount", 0)
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= 2**31 - 1:
        return "the payment intent's amount is not a whole number of cents"
    error = intent.get("last_payment_error")
    if error is not None and not (isinstance(error, dict) and all(
            isinstance(error.get(key), str | None) for key in ("code", "decline_code", "message"))):
        return "the payment intent's last_payment_error is not an object of strings"
    return None


async def handle_event(event: dict) -> str:
    """Apply one well-formed event (`shape_problem` is None) exactly once."""
    event_id, kind = event["id"], event["type"]
    # Recording the id and applying the event share one transaction: applied exactly once,
    # and a failure leaves no record, so Stripe's retry is applied then.
    async with write_transaction():
        inserted = await StripeEvent.insert(StripeEvent(event_id=event_id, type=kind[:80])).on_conflict(
            target=StripeEvent.event_id, action="DO NOTHING").returning(StripeEvent.id)
        if not inserted:
            return "duplicate"
        if kind in HANDLED:
            intent = (event.get("data") or {}).get("object") or {}
            outcome = await intents.applier_for(intent.get("metadata") or {})(intent)
        else:
            log.info("stripe event %s of type %s acknowledged, not handled", event_id, kind)
            outcome = "ignored"
        await StripeEvent.update({StripeEvent.outcome: outcome[:40]}).where(StripeEvent.id == inserted[0]["id"])
    return outcome
