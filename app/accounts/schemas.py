from __future__ import annotations

import msgspec


class SignupIn(msgspec.Struct):
    email: str
    password: str
    display_name: str
    referral: str = ""  # the inviting member's handle


class SignupOut(msgspec.Struct):
    """The same answer for a new address and one that has an account (no enumeration)."""

    detail: str


class TokenIn(msgspec.Struct):
    email: str
    password: str
    name: str = "API token"


class TokenOut(msgspec.Struct):
    token: str


class VerifyIn(msgspec.Struct):
    token: str


class MemberOut(msgspec.Struct):
    id: int
    email: str
    display_name: str
    handle: str
    email_verified: bool
    is_staff: bool
    points_balance: int
    points_lifetime: int
    level: str
    next_level: str | None
    points_to_next_level: int
    badges: list[str] = msgspec.field(default_factory=list)
