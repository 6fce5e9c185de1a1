"""The community's part of a member's personal data (app/accounts/personal_data.py): comments,
creator updates and follows; follows go with the account (theirs and others' follows of
them), @mentions of the old handle point at the deleted member, comments go with the removed
content."""

from __future__ import annotations

import re
from typing import Any

from app.accounts.personal_data import Erasure, Part, register
from app.accounts.tables import Member
from app.community.tables import CampaignUpdate, Comment, Follow
from app.db import raw, utcnow
from app.ideas.tables import Category, Idea


async def export(member_id: int, profile: dict[str, Any]) -> dict[str, Any]:
    comments = await Comment.select(
        Comment.id, Comment.idea, Comment.idea.title, Comment.parent, Comment.body, Comment.created_at,
        Comment.edited_at, Comment.deleted_at, Comment.hidden_at, Comment.hidden_reason,
    ).where(Comment.author == member_id).order_by(Comment.id)
    updates = await CampaignUpdate.select(CampaignUpdate.campaign, CampaignUpdate.title, CampaignUpdate.body,
                                          CampaignUpdate.visibility, CampaignUpdate.created_at).where(
        CampaignUpdate.author == member_id).order_by(CampaignUpdate.id)
    follows = await Follow.select(Follow.kind, Follow.target, Follow.created_at).where(
        Follow.member == member_id).order_by(Follow.id)
    names: dict[str, dict[int, str]] = {"idea": {}, "member": {}, "category": {}}
    for kind, table, column in (("idea", Idea, Idea.title), ("member", Member, Member.display_name),
                                ("category", Category, Category.name)):
        targets = [f["target"] for f in follows if f["kind"] == kind]
        if targets:
            where = table.id.is_in(targets)
            if kind == "idea":
                where = where & Idea.status.is_in(["voting", "greenlit", "campaign", "archived"])
            names[kind] = {r["id"]: r[column._meta.name] for r in await table.select(table.id, column).where(where)}
    for f in follows:
        f["name"] = names.get(f["kind"], {}).get(f["target"], "")
    return {"comments": comments, "campaign_updates": updates, "follows": follows}


async def erase(erasure: Erasure) -> None:
    """Runs after ideas' part (order), so the follows of an idea it removed go too."""
    member_id = erasure.member_id
    await Follow.delete().where((Follow.member == member_id) | ((Follow.kind == "member") & (Follow.target == member_id)))
    await _scrub_mentions(erasure.handle, f"deleted-{member_id}")
    if erasure.remove_content:
        await Comment.update({Comment.deleted_at: utcnow()}).where(
            (Comment.author == member_id) & Comment.deleted_at.is_null())
        await Comment.update({Comment.body: ""}).where(Comment.author == member_id)
    if erasure.removed_ideas:
        await raw("DELETE FROM follow WHERE kind = 'idea' AND NOT EXISTS (SELECT 1 FROM idea WHERE idea.id = follow.target)")


async def _scrub_mentions(handle: str, replacement: str) -> None:
    """@mentions of the old handle (which someone else may take later) point at the deleted member."""
    pattern = re.compile(rf"(?<![\w@])@{re.escape(handle)}(?![a-z0-9_-])", re.IGNORECASE)
    rows = await raw("SELECT id, body FROM comment WHERE lower(body) LIKE {}", f"%@{handle.lower()}%")
    for row in rows:
        body = pattern.sub(f"@{replacement}", row["body"])
        if body != row["body"]:
            await Comment.update({Comment.body: body}).where(Comment.id == row["id"])


async def claims_idea(idea_id: int, member_id: int) -> bool:
    return await Comment.exists().where((Comment.idea == idea_id) & (Comment.author != member_id))


register(Part("community", order=90, export=export, erase=erase, claims_idea=claims_idea))
