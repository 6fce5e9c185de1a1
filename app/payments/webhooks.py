"""POST /webhooks/stripe: verify, record each event id once, dispatch, log the rest."""

from __future__ import annotations

import logging

from litestar import Request, Response, post

from app.db import write_transaction
from app.payments import settlement
from app.payments.gateway import GatewayError, WebhookRejected, gateway
from app.payments.tables import StripeEvent

log = logging.getLogger("crowdmade.webhooks")
HANDLED = {"payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.requires_action"}


async def handle_event(event: dict) -> str:
    event_id, kind = event.get("id") or "", event.get("type") or ""
    if not event_id:
        return "no id"
    # Recording the id and applying the event share one transaction: applied exactly once,
    # and a failure leaves no record, so Stripe's retry is applied then.
    async with write_transaction():
        inserted = await StripeEvent.insert(StripeEvent(event_id=event_id, type=kind[:80])).on_conflict(
            target=StripeEvent.event_id, action="DO NOTHING").returning(StripeEvent.id)
        if not inserted:
            return "duplicate"
        if kind in HANDLED:
            intent = (event.get("data") or {}).get("object") or {}
            if (intent.get("metadata") or {}).get("order_id"):  # a shop checkout's payment
                from app.shop import checkout

                outcome = await checkout.apply_payment_intent(intent)
            else:
                outcome = await settlement.apply_payment_intent(intent)
        else:
            log.info("stripe event %s of type %s acknowledged, not handled", event_id, kind)
            outcome = "ignored"
        await StripeEvent.update({StripeEvent.outcome: outcome[:40]}).where(StripeEvent.id == inserted[0]["id"])
    return outcome


@post("/webhooks/stripe", include_in_schema=False, status_code=200)
async def stripe_webhook(request: Request) -> Response:
    payload = await request.body()
    try:
        event = gateway().verify_webhook(payload, request.headers.get("stripe-signature", ""))
    except WebhookRejected as error:
        log.warning("stripe webhook refused: %s", error)
        return Response({"detail": "invalid signature"}, status_code=400)
    except GatewayError:
        return Response({"detail": "payments are not configured"}, status_code=503)
    outcome = await handle_event(event)
    return Response({"received": True, "outcome": outcome}, status_code=200)


ROUTES = [stripe_webhook]
