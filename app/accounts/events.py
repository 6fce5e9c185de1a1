"""What happens to a member's account that other parts of the site react to (app/events.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MemberSignedUp:
    """A new account was created (not yet verified). `ab_subject`: the visitor's A/B subject."""

    member_id: int
    ab_subject: str = ""


@dataclass(frozen=True)
class EmailVerified:
    member_id: int


@dataclass(frozen=True)
class ProfileCompleted:
    """A verified member saved a profile with a bio and a location."""

    member_id: int
