"""VAT (moms): prices include it; an order's VAT per rate is recorded once, when it is paid.

Each order line carries its product's (or campaign's) rate. Delivery and a voucher discount
have no rate of their own: they are shared over the rates by the value of the goods at each rate
(the Swedish rule for a delivery of goods at mixed rates), in whole öre by the largest remainder,
so the rates' gross amounts always add up to what was charged. The VAT inside a gross amount is
gross × rate / (100 + rate), rounded half up; net is gross − VAT.

`record_vat` runs in the transaction of the order's move to paid (`move_order`; a pre-order's
move happens when its charge is collected), which happens once; a unique (order, rate) index is
the backstop. Receipts and the VAT report read those rows, never today's product rates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.orders.tables import Order, OrderLine, OrderVat, Refund, WithdrawalLine
from app.settings import get_settings


@dataclass(frozen=True)
class VatRow:
    rate: int
    gross: int  # including VAT
    vat: int

    @property
    def net(self) -> int:
        return self.gross - self.vat


def vat_in(gross: int, rate: int) -> int:
    """The VAT inside a gross amount, rounded half up (away from zero for a negative amount)."""
    sign = -1 if gross < 0 else 1
    return sign * ((abs(gross) * rate * 2 + 100 + rate) // (2 * (100 + rate)))


def share(amount: int, weights: dict[int, int]) -> dict[int, int]:
    """`amount` split over the keys in proportion to their weights, in whole units that add up
    exactly (largest remainder; ties to the higher key)."""
    total = sum(weights.values())
    if not weights:
        return {}
    if total <= 0:
        first = max(weights)
        return {key: (amount if key == first else 0) for key in weights}
    sign = -1 if amount < 0 else 1
    whole = {key: abs(amount) * weight // total for key, weight in weights.items()}
    left = abs(amount) - sum(whole.values())
    order = sorted(weights, key=lambda key: (-(abs(amount) * weights[key] % total), -key))
    for key in order[:left]:
        whole[key] += 1
    return {key: sign * value for key, value in whole.items()}


def breakdown(lines: Iterable[dict[str, Any]], *, shipping: int = 0, discount: int = 0,
              default_rate: int | None = None) -> list[VatRow]:
    """VAT per rate for these lines (each with `total` and `vat_rate`), delivery and discount,
    highest rate first. The gross amounts add up to sum(totals) + shipping − discount."""
    goods: dict[int, int] = {}
    for line in lines:
        goods[line["vat_rate"]] = goods.get(line["vat_rate"], 0) + line["total"]
    if not goods:
        goods = {default_rate if default_rate is not None else get_settings().vat_rate_choices()[0]: 0}
    extra = share(shipping - discount, goods)
    return [VatRow(rate, goods[rate] + extra[rate], vat_in(goods[rate] + extra[rate], rate))
            for rate in sorted(goods, reverse=True)]


async def record_vat(order_id: int) -> list[VatRow]:
    """Write the paid order's VAT rows (in the caller's transaction; once per order)."""
    order = await Order.select(Order.shipping, Order.discount).where(Order.id == order_id).first()
    lines = await OrderLine.select(OrderLine.total, OrderLine.vat_rate).where(OrderLine.order == order_id)
    rows = breakdown(lines, shipping=order["shipping"], discount=order["discount"])
    if await OrderVat.count().where(OrderVat.order == order_id):
        return rows
    await OrderVat.insert(*[OrderVat(order=order_id, rate=r.rate, gross=r.gross, vat=r.vat) for r in rows])
    return rows


async def recorded(order_id: int) -> list[VatRow]:
    return [VatRow(r["rate"], r["gross"], r["vat"]) for r in await OrderVat.select().where(
        OrderVat.order == order_id).order_by(OrderVat.rate, ascending=False)]


# ---- the VAT report -----------------------------------------------------------------------------


@dataclass
class ReportRow:
    day: dt.date
    kind: str  # sale | refund
    number: str
    rate: int
    gross: int
    vat: int

    @property
    def net(self) -> int:
        return self.gross - self.vat


async def report(start: dt.datetime, end: dt.datetime) -> list[ReportRow]:
    """Sales paid in [start, end) per order and rate, and refunds that succeeded in it, each
    refund shared over its order's rates like the order's gross (so its VAT comes back too)."""
    rows: list[ReportRow] = []
    orders = {o["id"]: o for o in await Order.select(Order.id, Order.number, Order.paid_at).where(
        (Order.paid_at >= start) & (Order.paid_at < end))}
    vat_rows: dict[int, list[dict[str, Any]]] = {}
    refunds = await Refund.select(Refund.id, Refund.order, Refund.amount, Refund.created_at, Refund.order.number).where(
        (Refund.status == "succeeded") & (Refund.created_at >= start) & (Refund.created_at < end))
    ids = list(orders) + [r["order"] for r in refunds]
    for row in await OrderVat.select().where(OrderVat.order.is_in(ids or [0])).order_by(OrderVat.rate, ascending=False):
        vat_rows.setdefault(row["order"], []).append(row)
    for order_id, order in sorted(orders.items(), key=lambda item: item[1]["paid_at"]):
        for row in vat_rows.get(order_id, []):
            rows.append(ReportRow(order["paid_at"].date(), "sale", order["number"], row["rate"], row["gross"], row["vat"]))
    withdrawn = await _withdrawn_rates([r["id"] for r in refunds])
    for refund in sorted(refunds, key=lambda r: r["created_at"]):
        # A withdrawal's refund is the VAT of the lines withdrawn from; any other refund is
        # shared like its order's gross.
        weights = withdrawn.get(refund["id"]) or {r["rate"]: r["gross"] for r in vat_rows.get(refund["order"], [])}
        split = share(-refund["amount"], weights)
        for rate, gross in sorted(split.items(), reverse=True):
            rows.append(ReportRow(refund["created_at"].date(), "refund", refund["order.number"], rate, gross,
                                  vat_in(gross, rate)))
    return rows


async def _withdrawn_rates(refund_ids: list[int]) -> dict[int, dict[int, int]]:
    """{refund id: {rate: amount}} for refunds of withdrawals, from the withdrawn lines."""
    out: dict[int, dict[int, int]] = {}
    if not refund_ids:
        return out
    rows = await WithdrawalLine.select(WithdrawalLine.amount, WithdrawalLine.withdrawal.refund_id,
                                       WithdrawalLine.order_line).where(
        WithdrawalLine.withdrawal.refund_id.is_in(refund_ids))
    rates = {r["id"]: r["vat_rate"] for r in await OrderLine.select(OrderLine.id, OrderLine.vat_rate).where(
        OrderLine.id.is_in([r["order_line"] for r in rows] or [0]))}
    for row in rows:
        by_rate = out.setdefault(row["withdrawal.refund_id"], {})
        rate = rates.get(row["order_line"], 25)
        by_rate[rate] = by_rate.get(rate, 0) + row["amount"]
    return out


def totals(rows: list[ReportRow]) -> list[dict[str, int]]:
    by_rate: dict[int, dict[str, int]] = {}
    for row in rows:
        found = by_rate.setdefault(row.rate, {"rate": row.rate, "gross": 0, "vat": 0, "net": 0})
        found["gross"] += row.gross
        found["vat"] += row.vat
        found["net"] += row.net
    return [by_rate[rate] for rate in sorted(by_rate, reverse=True)]
