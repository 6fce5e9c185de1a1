"""Conversation: comments (threaded one level, edit within 15 minutes, delete, report, staff
moderation, @mentions), follows, and creator updates on campaigns."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from app.accounts.service import CurrentMember
from app.accounts.tables import Member
from app.campaigns.tables import Campaign, Pledge
from app.community.tables import CampaignUpdate, Comment, Follow
from app.db import as_aware, dict_rows, select_head, utcnow, write_transaction
from app.errors import Conflict, Forbidden, FormError, NotFound
from app.i18n import N_, gettext
from app.ideas.service import PUBLIC_STATUSES
from app.ideas.tables import Category, Idea
from app.notifications.service import notify
from app.points import badges
from app.points import service as points

EDIT_MINUTES = 15
MAX_COMMENT = 2000
MENTION_RE = re.compile(r"(?<![\w@])@([a-z0-9][a-z0-9_-]{1,28}[a-z0-9])", re.IGNORECASE)
FOLLOW_KINDS = {"idea", "member", "category"}


async def _public_idea(idea_id: int) -> dict[str, Any]:
    idea = await Idea.select(Idea.id, Idea.title, Idea.author, Idea.status).where(Idea.id == idea_id).first()
    if idea is None or idea["status"] not in PUBLIC_STATUSES:
        raise NotFound(gettext("Idea not found"))
    return idea


def _clean_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise FormError({"body": gettext("Write something first.")})
    if len(body) > MAX_COMMENT:
        raise FormError({"body": gettext("Keep comments under 2,000 characters.")})
    return body


async def add_comment(member: CurrentMember, idea_id: int, body: str, parent_id: int | None = None) -> int:
    if not member.verified:
        raise Forbidden(gettext("Verify your email address to comment."))
    idea = await _public_idea(idea_id)
    body = _clean_body(body)
    parent = None
    if parent_id:
        parent = await Comment.select(Comment.id, Comment.author, Comment.parent, Comment.idea).where(
            Comment.id == parent_id).first()
        if parent is None or parent["idea"] != idea_id:
            raise FormError({"parent": gettext("You can only reply to a comment on this idea.")})
        if parent["parent"]:
            parent_id = parent["parent"]  # one level of threading: replies to replies join the thread
    link = f"/ideas/{idea_id}#comment-"
    async with write_transaction():
        rows = await Comment.insert(Comment(idea=idea_id, author=member.id, parent=parent_id, body=body)).returning(Comment.id)
        comment_id = rows[0]["id"]
        await points.award(member.id, "comment", key=f"comment:{comment_id}", reference=f"comment:{comment_id}",
                           cap_reasons=("comment", "comment_removed"))
        await badges.award_badge(member.id, "first_comment")
        notified = {member.id}
        if parent and parent["author"] not in notified:
            await notify(parent["author"], "reply", key=f"reply:{comment_id}:{parent['author']}",
                         title=N_("%(name)s replied to your comment on %(title)s"),
                         title_args={"name": member.display_name, "title": idea["title"]},
                         body=body[:280], link=f"{link}{comment_id}")
            notified.add(parent["author"])
        handles = {h.lower() for h in MENTION_RE.findall(body)}
        if handles:
            for mentioned in await Member.select(Member.id).where(Member.handle.is_in(list(handles))):
                if mentioned["id"] not in notified:
                    await notify(mentioned["id"], "mention", key=f"mention:{comment_id}:{mentioned['id']}",
                                 title=N_("%(name)s mentioned you on %(title)s"),
                                 title_args={"name": member.display_name, "title": idea["title"]},
                                 body=body[:280], link=f"{link}{comment_id}")
                    notified.add(mentioned["id"])
        if idea["author"] not in notified:
            await notify(idea["author"], "reply", key=f"comment:{comment_id}:{idea['author']}",
                         title=N_("%(name)s commented on your idea %(title)s"),
                         title_args={"name": member.display_name, "title": idea["title"]},
                         body=body[:280], link=f"{link}{comment_id}")
    return comment_id


async def _own_comment(member: CurrentMember, comment_id: int) -> dict[str, Any]:
    row = await Comment.select().where(Comment.id == comment_id).first()
    if row is None or row["author"] != member.id:
        raise NotFound(gettext("Comment not found"))
    if row["deleted_at"] or row["hidden_at"]:
        raise Conflict(gettext("This comment can no longer be changed."))
    return row


async def edit_comment(member: CurrentMember, comment_id: int, body: str, *, now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    row = await _own_comment(member, comment_id)
    if now - as_aware(row["created_at"]) > dt.timedelta(minutes=EDIT_MINUTES):
        raise Conflict(gettext("Comments can be edited for %(minutes)s minutes after posting.", minutes=EDIT_MINUTES))
    await Comment.update({Comment.body: _clean_body(body), Comment.edited_at: now}).where(Comment.id == comment_id)


async def delete_comment(member: CurrentMember, comment_id: int) -> None:
    await _own_comment(member, comment_id)
    async with write_transaction():
        deleted = await Comment.update({Comment.deleted_at: utcnow()}).where(
            (Comment.id == comment_id) & Comment.deleted_at.is_null()).returning(Comment.id)
        if deleted:  # points for a deleted comment go back, so posting and deleting earns nothing
            await points.reverse(member.id, original_key=f"comment:{comment_id}", reason="comment_removed")


async def hide_comment(staff: CurrentMember, comment_id: int, reason: str) -> bool:
    """Staff hide a comment (moderation decides, app/moderation): once, with the reason shown in
    its place. Returns whether this call hid it."""
    if not staff.is_staff:
        raise Forbidden(gettext("Staff only."))
    reason = (reason or "").strip()
    if len(reason) < 3:
        raise FormError({"reason": gettext("Give a reason; the author sees it.")})
    async with write_transaction():
        hidden = await Comment.update({Comment.hidden_at: utcnow(), Comment.hidden_reason: reason[:500],
                                       Comment.hidden_by: staff.id}).where(
            (Comment.id == comment_id) & Comment.hidden_at.is_null()).returning(Comment.author)
        if not hidden:
            return False
        # A removed comment earns nothing: its points go back, once.
        await points.reverse(hidden[0]["author"], original_key=f"comment:{comment_id}", reason="comment_removed")
        return True


async def restore_comment(staff: CurrentMember, comment_id: int) -> bool:
    """Show a hidden comment again (a removal reversed), once. Its points stay reversed, as a
    review's do: hiding and showing again can never pay twice."""
    if not staff.is_staff:
        raise Forbidden(gettext("Staff only."))
    async with write_transaction():
        shown = await Comment.update({Comment.hidden_at: None, Comment.hidden_reason: "", Comment.hidden_by: None}).where(
            (Comment.id == comment_id) & Comment.hidden_at.is_not_null()).returning(Comment.id)
        return bool(shown)


async def thread(idea_id: int, viewer: CurrentMember | None, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Top-level comments, oldest first, each with its replies."""
    now = now or utcnow()
    # On every idea page: the select's head is compiled once (building it cost more than running it).
    head = select_head("community.thread", lambda: Comment.select(
        *Comment.all_columns(), Comment.author.display_name, Comment.author.handle))
    rows = await dict_rows(f'{head} WHERE "comment"."idea" = {{}} ORDER BY "comment"."id"', idea_id)
    top: list[dict[str, Any]] = []
    by_id: dict[int, dict[str, Any]] = {}
    for row in rows:
        row["replies"] = []
        row["own"] = viewer is not None and viewer.id == row["author"]
        row["editable"] = (row["own"] and not row["deleted_at"] and not row["hidden_at"]
                           and now - as_aware(row["created_at"]) <= dt.timedelta(minutes=EDIT_MINUTES))
        by_id[row["id"]] = row
        if row["parent"] and row["parent"] in by_id:
            by_id[row["parent"]]["replies"].append(row)
        else:
            top.append(row)
    return top


def visible_count(comments: list[dict[str, Any]]) -> int:
    """Comments in a thread that are neither deleted nor hidden, replies included (the thread
    holds every comment, so counting them needs no query of its own)."""
    return sum((not c["deleted_at"] and not c["hidden_at"]) + visible_count(c["replies"]) for c in comments)


# ---- follows ---------------------------------------------------------------------------------


async def _check_target(kind: str, target: int) -> None:
    if kind not in FOLLOW_KINDS:
        raise FormError({"kind": gettext("Follow an idea, a member or a category.")})
    if kind == "idea":
        await _public_idea(target)
    elif kind == "member":
        if not await Member.exists().where((Member.id == target) & Member.deleted_at.is_null()):
            raise NotFound(gettext("Member not found"))
    elif not await Category.exists().where(Category.id == target):
        raise NotFound(gettext("Category not found"))


async def follow(member: CurrentMember, kind: str, target: int) -> bool:
    await _check_target(kind, target)
    if kind == "member" and target == member.id:
        raise Conflict(gettext("You can't follow yourself."))
    rows = await Follow.insert(Follow(member=member.id, kind=kind, target=target)).on_conflict(
        target=(Follow.member, Follow.kind, Follow.target), action="DO NOTHING").returning(Follow.id)
    return bool(rows)


async def unfollow(member: CurrentMember, kind: str, target: int) -> None:
    await Follow.delete().where((Follow.member == member.id) & (Follow.kind == kind) & (Follow.target == target))


async def is_following(member: CurrentMember | None, kind: str, target: int) -> bool:
    if member is None:
        return False
    return await Follow.exists().where((Follow.member == member.id) & (Follow.kind == kind) & (Follow.target == target))


async def followers(kind: str, target: int) -> list[int]:
    return [r["member"] for r in await Follow.select(Follow.member).where((Follow.kind == kind) & (Follow.target == target))]


async def notify_idea_followers(idea_id: int, *, key: str, title: str, link: str, exclude: set[int] = frozenset(),
                                title_args: dict[str, Any] | None = None) -> None:
    """Status changes and updates reach everyone following the idea, its author or its category
    (`title` with `title_args`: an N_ message, written in each follower's language)."""
    idea = await Idea.select(Idea.author, Idea.category).where(Idea.id == idea_id).first()
    if idea is None:
        return
    audience = set(await followers("idea", idea_id)) | set(await followers("member", idea["author"]))
    if idea["category"]:
        audience |= set(await followers("category", idea["category"]))
    for member_id in audience - set(exclude):
        await notify(member_id, "idea_status", key=f"{key}:{member_id}", title=title, title_args=title_args, link=link)


# ---- creator updates ---------------------------------------------------------------------------


async def post_update(member: CurrentMember, campaign_id: int, *, title: str, body: str, visibility: str) -> int:
    campaign = await Campaign.select(Campaign.id, Campaign.idea, Campaign.idea.author, Campaign.idea.title).where(
        Campaign.id == campaign_id).first()
    if campaign is None:
        raise NotFound(gettext("Campaign not found"))
    if not (member.is_staff or member.id == campaign["idea.author"]):
        raise Forbidden(gettext("Only the creator and staff can post updates."))
    title, body = (title or "").strip(), (body or "").strip()
    errors = {}
    if not 3 <= len(title) <= 160:
        errors["title"] = gettext("Give the update a title (3-160 characters).")
    if not 10 <= len(body) <= 10_000:
        errors["body"] = gettext("Write at least 10 characters.")
    if visibility not in ("public", "backers"):
        errors["visibility"] = gettext("Choose public or backers only.")
    if errors:
        raise FormError(errors)
    async with write_transaction():
        rows = await CampaignUpdate.insert(CampaignUpdate(campaign=campaign_id, author=member.id, title=title, body=body,
                                                          visibility=visibility)).returning(CampaignUpdate.id)
        update_id = rows[0]["id"]
        backers = {r["member"] for r in await Pledge.select(Pledge.member).where(
            (Pledge.campaign == campaign_id) & Pledge.status.is_in(["active", "charging", "paid", "payment_failed"]))}
        audience = set(backers)
        if visibility == "public":
            audience |= set(await followers("idea", campaign["idea"]))
        link = f"/ideas/{campaign['idea']}#update-{update_id}"
        for member_id in audience - {member.id}:
            await notify(member_id, "update", key=f"update:{update_id}:{member_id}",
                         title=N_("Update on %(idea)s: %(title)s"), title_args={"idea": campaign["idea.title"], "title": title},
                         body=body[:500], link=link)
    return update_id


async def updates_for(campaign_id: int, viewer: CurrentMember | None) -> list[dict[str, Any]]:
    rows = await CampaignUpdate.select(*CampaignUpdate.all_columns(), CampaignUpdate.author.display_name).where(
        CampaignUpdate.campaign == campaign_id).order_by(CampaignUpdate.id, ascending=False)
    can_see_backers = False
    if viewer is not None:
        campaign = await Campaign.select(Campaign.idea.author).where(Campaign.id == campaign_id).first()
        can_see_backers = viewer.is_staff or (campaign and campaign["idea.author"] == viewer.id) or await Pledge.exists().where(
            (Pledge.campaign == campaign_id) & (Pledge.member == viewer.id)
            & Pledge.status.is_in(["active", "charging", "paid", "payment_failed"]))
    for row in rows:
        row["locked"] = row["visibility"] == "backers" and not can_see_backers
        if row["locked"]:
            row["body"] = ""
    return rows
