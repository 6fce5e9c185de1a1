"""What happens to orders that other parts of the site react to (app/events.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OrderNotice:
    """A buyer is told of a move of their order (shipped, delivered, refunded...); the bell shows
    it. `title` is already in the buyer's language; `key` makes it once."""

    member_id: int
    order_id: int
    key: str
    title: str
    link: str


@dataclass(frozen=True)
class OrderReleased:
    """An order was cancelled, or refunded in full, before anything shipped: what it held comes
    back (its units are given back by `release_stock`; points gives a spent voucher's points
    back, inline, in the same transaction)."""

    order_id: int
