"""A member's stored language, for what is written for them outside their own request
(emails, notifications, ledger notes): one lookup, by id or by email address."""

from __future__ import annotations

from app.accounts.tables import Member
from app.mail import service as mail


async def member_locale(member_id: int) -> str | None:
    row = await Member.select(Member.locale).where(Member.id == member_id).first()
    return row["locale"] if row else None


async def email_locale(address: str) -> str | None:
    row = await Member.select(Member.locale).where(Member.email == address.lower()).first()
    return row["locale"] if row else None


mail.provide_recipient_locale(email_locale)
