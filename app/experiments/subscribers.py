"""Experiment goals reached elsewhere (app/events.py): inline, so a conversion is recorded with
the change that reached it and a rolled-back change converts nothing."""

from __future__ import annotations

from app.accounts.events import MemberSignedUp
from app.events import subscribe
from app.experiments import service as experiments


@subscribe(MemberSignedUp)
async def signup_goal(event: MemberSignedUp) -> None:
    await experiments.record_goal("signup", subject=event.ab_subject or f"m:{event.member_id}")
