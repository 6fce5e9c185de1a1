"""Moderation's part of a member's personal data (app/accounts/personal_data.py): the reports
they sent and the decisions about their content, with their appeals. On deletion their reports
lose their name (the trail keeps what was reported and why) and their appeal texts go when they
chose to remove their content."""

from __future__ import annotations

from typing import Any

from app.accounts.personal_data import Erasure, Part, register
from app.moderation.tables import Decision, Notice


async def export(member_id: int, profile: dict[str, Any]) -> dict[str, Any]:
    reports = await Notice.select(Notice.kind, Notice.target, Notice.category, Notice.reason, Notice.created_at,
                                  Notice.decision).where(Notice.reporter == member_id).order_by(Notice.id)
    decisions = await Decision.select(
        Decision.id, Decision.kind, Decision.target, Decision.title, Decision.action, Decision.ground,
        Decision.statement, Decision.created_at, Decision.appeal_text, Decision.appealed_at, Decision.appeal_outcome,
        Decision.appeal_answer, Decision.answered_at).where(Decision.author == member_id).order_by(Decision.id)
    return {"reports_sent": reports, "moderation_decisions": decisions}


async def erase(erasure: Erasure) -> None:
    await Notice.update({Notice.reporter: None, Notice.name: "", Notice.email: ""}).where(
        Notice.reporter == erasure.member_id)
    if erasure.remove_content:
        await Decision.update({Decision.appeal_text: ""}).where(Decision.author == erasure.member_id)


register(Part("moderation", order=92, export=export, erase=erase))
