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
