"""Honest prices: every variant's price history, and the "lowest price in the 30 days before the
reduction" that any announced reduction must show (the EU Omnibus rule, Swedish prisinformationslagen
§ 7 a).

- The history is kept automatically: whenever a product or variant is created or edited, each
  variant whose effective price (its own, else the product's) differs from its last recorded
  one gets a `PriceChange` row, in the same transaction as the edit.
- A reduction is announced on the product page for REDUCTION_DAYS after the price was lowered,
  and only when the new price is below the LOWEST price of the 30 days before the change; the
  page shows that lowest price as the reference (never the highest, never one from before the
  30 days). A price that went up and then came back down is not a reduction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.db import as_aware, utcnow
from app.shop.tables import PriceChange, Product, ProductVariant

PRIOR_DAYS = 30  # the reference period before a reduction
REDUCTION_DAYS = 30  # how long a reduction is announced after it starts


@dataclass(frozen=True)
class Reduction:
    price: int  # the price now
    lowest_before: int  # the lowest price of the 30 days before the reduction: the reference
    since: dt.datetime  # when the price was lowered

    @property
    def percent(self) -> int:
        return (self.lowest_before - self.price) * 100 // self.lowest_before


def reduction(history: Iterable[tuple[dt.datetime, int]], now: dt.datetime) -> Reduction | None:
    """The reduction to announce at `now`, from one variant's (changed_at, price) rows, or None."""
    changes = sorted((as_aware(at), price) for at, price in history if as_aware(at) <= now)
    if len(changes) < 2:
        return None
    since, price = changes[-1]
    if now - since > dt.timedelta(days=REDUCTION_DAYS):
        return None
    start = since - dt.timedelta(days=PRIOR_DAYS)
    before = [p for at, p in changes[:-1] if at > start]  # set during the 30 days
    in_effect = [p for at, p in changes[:-1] if at <= start]
    if in_effect:
        before.append(in_effect[-1])  # the price that held when the 30 days began
    if not before:
        return None
    lowest = min(before)
    return Reduction(price, lowest, since) if price < lowest else None


async def record_prices(product_id: int, now: dt.datetime | None = None) -> int:
    """Write a PriceChange for each of the product's variants whose effective price differs from
    its last recorded one (in the caller's transaction). Returns how many were written."""
    now = now or utcnow()
    product = await Product.select(Product.price).where(Product.id == product_id).first()
    if product is None:
        return 0
    variants = await ProductVariant.select(ProductVariant.id, ProductVariant.price).where(
        ProductVariant.product == product_id)
    last = await _last_prices([v["id"] for v in variants])
    rows = []
    for variant in variants:
        effective = variant["price"] if variant["price"] is not None else product["price"]
        if last.get(variant["id"]) != effective:
            rows.append(PriceChange(variant=variant["id"], price=effective, changed_at=now))
    if rows:
        await PriceChange.insert(*rows)
    return len(rows)


async def restart_history(product_id: int) -> None:
    """The product's price history from now on only (it goes in the shop for the first time)."""
    variant_ids = [v["id"] for v in await ProductVariant.select(ProductVariant.id).where(
        ProductVariant.product == product_id)]
    if variant_ids:
        await PriceChange.delete().where(PriceChange.variant.is_in(variant_ids))
    await record_prices(product_id)


async def _last_prices(variant_ids: list[int]) -> dict[int, int]:
    if not variant_ids:
        return {}
    last: dict[int, int] = {}
    for row in await PriceChange.select(PriceChange.variant, PriceChange.price).where(
            PriceChange.variant.is_in(variant_ids)).order_by(PriceChange.changed_at).order_by(PriceChange.id):
        last[row["variant"]] = row["price"]
    return last


async def history(variant_ids: list[int]) -> dict[int, list[tuple[dt.datetime, int]]]:
    out: dict[int, list[tuple[dt.datetime, int]]] = {v: [] for v in variant_ids}
    if variant_ids:
        for row in await PriceChange.select(PriceChange.variant, PriceChange.price, PriceChange.changed_at).where(
                PriceChange.variant.is_in(variant_ids)).order_by(PriceChange.changed_at).order_by(PriceChange.id):
            out[row["variant"]].append((row["changed_at"], row["price"]))
    return out


async def decorate(product: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """Each variant's `reduction` (or None), and the product's `reduction` when every variant has
    the same one (the usual case: the product's price was lowered). One query."""
    now = now or utcnow()
    found = await history([v["id"] for v in product["variants"]])
    for variant in product["variants"]:
        variant["reduction"] = reduction(found.get(variant["id"], []), now)
    reductions = {v["reduction"] for v in product["variants"]}
    product["reduction"] = reductions.pop() if len(reductions) == 1 else None
    product["some_reduced"] = any(v["reduction"] for v in product["variants"])
    return product
