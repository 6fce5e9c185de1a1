"""Who applies a PaymentIntent's news (a webhook, the browser's return from authentication).

A charge carries in its metadata the key of what it pays for: a pledge's charge (`pledge_id`,
which campaigns' settlement registers here as the default, since it also knows its charges by
their PaymentIntent id) or a shop order's (`order_id`, which the shop's checkout registers), so
payments imports neither.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Applier = Callable[[dict[str, Any]], Awaitable[str]]
_APPLIERS: dict[str, Applier] = {}
_DEFAULT: list[Applier] = []


def apply_intents_with(metadata_key: str, applier: Applier, *, default: bool = False) -> None:
    _APPLIERS[metadata_key] = applier
    if default:
        _DEFAULT[:] = [applier]


async def _not_ours(payment_intent: dict[str, Any]) -> str:
    return "not ours"


def applier_for(metadata: dict[str, Any]) -> Applier:
    for key, applier in _APPLIERS.items():
        if metadata.get(key):
            return applier
    return _DEFAULT[0] if _DEFAULT else _not_ours
