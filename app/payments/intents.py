"""Who applies a PaymentIntent's news (a webhook, the browser's return from authentication).

A charge carries in its metadata the key of what it pays for: a pledge's charge
(`pledge_id`, applied by payments' settlement) or a shop order's (`order_id`, which the shop's
checkout registers here, so payments does not import the shop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from app.payments import settlement

Applier = Callable[[dict[str, Any]], Awaitable[str]]
_APPLIERS: dict[str, Applier] = {}


def apply_intents_with(metadata_key: str, applier: Applier) -> None:
    _APPLIERS[metadata_key] = applier


def applier_for(metadata: dict[str, Any]) -> Applier:
    for key, applier in _APPLIERS.items():
        if metadata.get(key):
            return applier
    return settlement.apply_payment_intent
