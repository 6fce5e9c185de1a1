"""Points and badges earned for what happens elsewhere: inline subscribers (app/events.py), so
each award commits or rolls back with the change that earned it."""

from __future__ import annotations

from app.accounts.events import EmailVerified, ProfileCompleted
from app.events import subscribe
from app.points import badges
from app.points import service as points


@subscribe(EmailVerified)
async def award_signup_verified(event: EmailVerified) -> None:
    await points.award(event.member_id, "signup_verified", key=f"signup_verified:{event.member_id}")


@subscribe(ProfileCompleted)
async def award_profile_complete(event: ProfileCompleted) -> None:
    await points.award(event.member_id, "profile_complete", key=f"profile_complete:{event.member_id}")
    await badges.award_badge(event.member_id, "profile_complete")
