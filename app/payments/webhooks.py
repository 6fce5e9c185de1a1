"""POST /webhooks/stripe: verify the signature, refuse a malformed event, apply it once
(service.py)."""

from __future__ import annotations

import logging

from litestar import Request, Response, post

from app.payments.gateway import GatewayError, WebhookRejected, gateway
from app.payments.service import handle_event, shape_problem

log = logging.getLogger("crowdmade.webhooks")


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
    problem = shape_problem(event)
    if problem is not None:
        log.warning("stripe webhook refused: %s", problem)
        return Response({"detail": problem}, status_code=400)
    outcome = await handle_event(event)
    return Response({"received": True, "outcome": outcome}, status_code=200)


ROUTES = [stripe_webhook]
