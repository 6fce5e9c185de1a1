"""Vouchers: money off a shop order, bought with points (points' `redeem_voucher` writes them),
spent by the checkout exactly once, reissued when a checkout is replaced; a cancelled order's
voucher goes back to the points wallet through the orders' `OrderReleased` event."""

from __future__ import annotations

import re
from typing import Any

from app.db import utcnow
from app.shop.tables import Voucher


def voucher_code(text: Any) -> str:
    return re.sub(r"\s+", "", str(text or "")).upper()[:20]


async def spend_voucher(member_id: int, code: str, order_id: int) -> dict | None:
    """Mark a voucher spent on an order, exactly once (checkout, in the order's transaction)."""
    rows = await Voucher.update({Voucher.status: "spent", Voucher.order_id: order_id, Voucher.spent_at: utcnow()}).where(
        (Voucher.code == (code or "").strip().upper()) & (Voucher.member == member_id) & (Voucher.status == "issued")
    ).returning(Voucher.id, Voucher.amount)
    return rows[0] if rows else None


async def reissue_voucher(order_id: int) -> None:
    """The voucher of a replaced checkout is unspent again (a conditional update: once)."""
    await Voucher.update({Voucher.status: "issued", Voucher.order_id: None, Voucher.spent_at: None}).where(
        (Voucher.order_id == order_id) & (Voucher.status == "spent"))


async def open_vouchers(member_id: int) -> list[dict[str, Any]]:
    return await Voucher.select(Voucher.code, Voucher.amount, Voucher.currency).where(
        (Voucher.member == member_id) & (Voucher.status == "issued")).order_by(Voucher.id)


async def voucher_amount(member_id: int, code: str) -> int | None:
    """The discount a still-unspent voucher of this member gives (a preview; spending is atomic)."""
    code = voucher_code(code)
    if not code:
        return None
    row = await Voucher.select(Voucher.amount).where(
        (Voucher.code == code) & (Voucher.member == member_id) & (Voucher.status == "issued")).first()
    return row["amount"] if row else None
