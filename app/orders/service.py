"""Orders: the state machine shared by pre-orders (from paid pledges) and shop orders.

placed -> paid -> (in_production) -> shipped -> delivered, plus cancelled and refunded
(DESIGN section 2). Every move is one conditional update on the current status plus an
`OrderEvent` row in the same transaction, so two workers, a webhook and an API response can
all report the same move and it happens once.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from app.db import utcnow, write_transaction
from app.errors import Conflict, NotFound
from app.i18n import N_, gettext
from app.orders.tables import Order, OrderEvent, OrderLine, WithdrawalLine
from app.orders.vat import record_vat


class OrderStatus(StrEnum):
    PLACED = "placed"
    PAID = "paid"
    IN_PRODUCTION = "in_production"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"  # fully refunded; partial refunds keep the order's status


S = OrderStatus
ORDER_MOVES: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PLACED: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.IN_PRODUCTION, S.SHIPPED, S.CANCELLED, S.REFUNDED}),
    S.IN_PRODUCTION: frozenset({S.SHIPPED, S.CANCELLED, S.REFUNDED}),
    S.SHIPPED: frozenset({S.DELIVERED, S.REFUNDED}),
    S.DELIVERED: frozenset({S.REFUNDED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}
# Shown to members and staff, translated and capitalised by label(). Lower case: the capitalised
# words ("Paid", "Shipped") mean other things elsewhere on the site (and translate differently).
ORDER_LABELS = {
    S.PLACED: N_("placed"), S.PAID: N_("paid"), S.IN_PRODUCTION: N_("in production"), S.SHIPPED: N_("shipped"),
    S.DELIVERED: N_("delivered"), S.CANCELLED: N_("cancelled"), S.REFUNDED: N_("refunded"),
}
# The timeline a member sees on the order page, in order (pre-orders add in_production).
TIMELINE = (S.PLACED, S.PAID, S.IN_PRODUCTION, S.SHIPPED, S.DELIVERED)
# When the move happens, stamp this column.
STAMPS = {S.PAID: Order.paid_at, S.SHIPPED: Order.shipped_at, S.DELIVERED: Order.delivered_at,
          S.CANCELLED: Order.cancelled_at}


class IllegalOrderMove(Conflict):
    pass


def label(status: str) -> str:
    """The status in the current language ("Shipped" / "Skickad")."""
    try:
        return gettext(ORDER_LABELS[OrderStatus(status)]).capitalize()
    except ValueError:
        return status


def new_order_number() -> str:
    """Human-friendly and unguessable enough to read aloud: CM-7F3A9C1E."""
    return f"CM-{secrets.token_hex(4).upper()}"


async def move_order(order_id: int, to: OrderStatus, *, expect: tuple[OrderStatus, ...] | None = None,
                     message: str = "", actor_id: int | None = None, extra: dict | None = None,
                     strict: bool = False) -> OrderStatus | None:
    """One order move as a conditional update; returns the old status, or None when the order
    was not in a state that may move to `to` (someone else moved it first). With strict=True
    an impossible move raises IllegalOrderMove with a message for the person who asked."""
    allowed_from = [s.value for s, targets in ORDER_MOVES.items() if to in targets and (not expect or s in expect)]
    async with write_transaction():
        row = await Order.select(Order.status).where(Order.id == order_id).first()
        if row is None:
            raise NotFound(gettext("Order not found"))
        if row["status"] not in allowed_from:
            if strict:
                raise IllegalOrderMove(gettext("An order that is %(current)s cannot become %(target)s.",
                                               current=label(row["status"]).lower(), target=label(to).lower()))
            return None
        now = utcnow()
        values: dict[Any, Any] = {Order.status: to.value, Order.updated_at: now, **(extra or {})}
        if to in STAMPS:
            values[STAMPS[to]] = now
        moved = await Order.update(values).where(
            (Order.id == order_id) & (Order.status == row["status"])).returning(Order.id)
        if not moved:
            if strict:
                raise IllegalOrderMove(gettext("The order changed at the same time; reload and try again."))
            return None
        await OrderEvent.insert(OrderEvent(order=order_id, from_status=row["status"], to_status=to.value,
                                           message=message, actor=actor_id))
        if to is S.PAID:  # the VAT is recorded with the payment, once (app/orders/vat.py)
            await record_vat(order_id)
        return OrderStatus(row["status"])


# Who takes an order's units back, per order kind: the shop registers its variants' stock
# (`return_stock_with`), so orders does not import the shop. (the order's lines with a variant,
# whether they had been sold) -> None, in the caller's transaction.
StockReturn = Callable[[list[dict[str, Any]], bool], Awaitable[None]]
_stock_returns: dict[str, StockReturn] = {}


def return_stock_with(kind: str, give_back: StockReturn) -> None:
    _stock_returns[kind] = give_back


async def give_back_lines(kind: str, lines: list[dict[str, Any]], sold: bool) -> None:
    """Some of an order's units back in stock (a withdrawal's lines), in the caller's transaction;
    the caller makes it happen once. Kinds that hold no units (pre-orders) give nothing back."""
    if kind in _stock_returns and lines:
        await _stock_returns[kind](lines, sold)


async def release_stock(order_id: int) -> bool:
    """Give an order's units back, once (payment failed, checkout abandoned or order cancelled).
    A paid order's units also leave the sold counters. Returns False when they were already given
    back (or its kind holds no units). Runs in the caller's transaction when there is one."""
    if not _stock_returns:
        return False
    async with write_transaction():
        rows = await Order.update({Order.stock_released: True, Order.updated_at: utcnow()}).where(
            (Order.id == order_id) & (Order.stock_released.eq(False)) & Order.kind.is_in(list(_stock_returns))
        ).returning(Order.paid_at, Order.kind)
        if not rows:
            return False
        # Lines a withdrawal already put back in stock are not given back twice.
        restocked = [r["order_line"] for r in await WithdrawalLine.select(WithdrawalLine.order_line).where(
            (WithdrawalLine.withdrawal.order == order_id) & WithdrawalLine.restocked.eq(True))]
        lines = await OrderLine.select(OrderLine.variant_id, OrderLine.product_id, OrderLine.quantity).where(
            (OrderLine.order == order_id) & OrderLine.variant_id.is_not_null() & OrderLine.id.not_in(restocked or [0]))
        await _stock_returns[rows[0]["kind"]](lines, rows[0]["paid_at"] is not None)
        return True
