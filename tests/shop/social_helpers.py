"""Paid and delivered orders inserted directly (no Stripe needed for reviews), and small HTTP helpers."""

from __future__ import annotations

import datetime as dt
import itertools

from app.db import utcnow
from app.orders.tables import Order, OrderLine
from tests.factories import csrf_from

_numbers = itertools.count(1)


async def make_order(member, products: list[dict], *, status: str = "delivered", quantity: int = 1,
                     delivered_days_ago: float | None = 10) -> int:
    """An order of `products` (dicts from make_product) in `status`; returns the order id."""
    now = utcnow()
    subtotal = sum(p.get("price", 29_900) * quantity for p in products)
    delivered_at = now - dt.timedelta(days=delivered_days_ago) if status == "delivered" and delivered_days_ago is not None else None
    rows = await Order.insert(Order(
        number=f"CM-T{next(_numbers):07d}", member=member.id, status=status, kind="shop", subtotal=subtotal,
        total=subtotal, paid_at=now if status != "placed" else None, delivered_at=delivered_at,
    )).returning(Order.id)
    order_id = rows[0]["id"]
    for product in products:
        variant_id = next(iter(product["variants"].values()))
        await OrderLine.insert(OrderLine(order=order_id, title=product["name"], variant="One size",
                                         product_id=product["id"], variant_id=variant_id, quantity=quantity,
                                         unit_price=product.get("price", 29_900),
                                         total=product.get("price", 29_900) * quantity))
    return order_id


async def token_of(client, path: str = "/") -> str:
    return csrf_from((await client.get(path)).text)


def htmx(headers: dict | None = None) -> dict:
    return {"HX-Request": "true", **(headers or {})}
