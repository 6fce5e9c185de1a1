"""What happens to payments that other parts of the site react to (app/events.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PledgePaid:
    """A funded campaign's charge for this pledge succeeded (its order is written with it)."""

    pledge_id: int
    member_id: int
    quantity: int
