"""Orders' part of a member's personal data (app/accounts/personal_data.py): their orders with
lines, history and refunds; an unpaid or undelivered order blocks a deletion; the orders stay
for accounting, without the delivery name and address."""

from __future__ import annotations

import json
from typing import Any

from app.accounts.personal_data import DELETED_NAME, Erasure, Part, parsed, register, without
from app.i18n import gettext
from app.orders.tables import Order, OrderEvent, OrderLine, Refund, Withdrawal


async def export(member_id: int, profile: dict[str, Any]) -> dict[str, Any]:
    orders = await Order.select(
        Order.id, Order.number, Order.kind, Order.status, Order.currency, Order.subtotal, Order.shipping,
        Order.discount, Order.total, Order.refunded, Order.voucher_code, Order.shipping_method, Order.ship_to,
        Order.carrier, Order.tracking_number, Order.created_at, Order.paid_at, Order.shipped_at,
        Order.delivered_at, Order.cancelled_at,
    ).where(Order.member == member_id).order_by(Order.id)
    order_ids = [o["id"] for o in orders] or [0]
    lines = await OrderLine.select(OrderLine.order, OrderLine.title, OrderLine.variant, OrderLine.quantity,
                                   OrderLine.unit_price, OrderLine.total).where(
        OrderLine.order.is_in(order_ids)).order_by(OrderLine.id)
    events = await OrderEvent.select(OrderEvent.order, OrderEvent.from_status, OrderEvent.to_status,
                                     OrderEvent.message, OrderEvent.created_at).where(
        OrderEvent.order.is_in(order_ids)).order_by(OrderEvent.id)
    refunds = await Refund.select(Refund.order, Refund.amount, Refund.status, Refund.reason, Refund.created_at).where(
        Refund.order.is_in(order_ids)).order_by(Refund.id)
    for order in orders:
        oid = order.pop("id")
        order["ship_to"] = parsed(order["ship_to"])
        order["lines"] = without([x for x in lines if x["order"] == oid], "order")
        order["history"] = without([x for x in events if x["order"] == oid], "order")
        order["refunds"] = without([x for x in refunds if x["order"] == oid], "order")
    return {"orders": orders}


async def blockers(member_id: int) -> list[str]:
    reasons: list[str] = []
    orders = await Order.select(Order.number, Order.status).where(
        (Order.member == member_id) & Order.status.is_in(["placed", "paid", "in_production"])
        & (Order.paid_at.is_not_null() | (Order.status == "placed"))).order_by(Order.id)
    for o in orders:
        if o["status"] == "placed":
            reasons.append(gettext("Order %(number)s is waiting for its payment. Pay or cancel it first "
                                   "(an unpaid checkout is released automatically after a while).", number=o["number"]))
        else:
            reasons.append(gettext("Order %(number)s has not shipped yet, and we need your name and address to "
                                   "deliver it. You can delete your account once it has shipped or been cancelled.",
                                   number=o["number"]))
    return reasons


async def erase(erasure: Erasure) -> None:
    await Withdrawal.update({Withdrawal.email: f"deleted-{erasure.member_id}@invalid"}).where(
        Withdrawal.member == erasure.member_id)
    for order in await Order.select(Order.id, Order.ship_to).where(Order.member == erasure.member_id):
        ship_to = parsed(order["ship_to"]) or {}
        if isinstance(ship_to, dict) and ship_to:
            kept = {"name": DELETED_NAME, "country": str(ship_to.get("country", ""))}
            await Order.update({Order.ship_to: json.dumps(kept)}).where(Order.id == order["id"])


register(Part("orders", order=50, export=export, blockers=blockers, erase=erase))
