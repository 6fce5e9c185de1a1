"""JSON API for comments, follows and the leaderboard (DESIGN section 9)."""

from __future__ import annotations

import datetime as dt

import msgspec
from litestar import Request, delete, get, post, put

from app.community import service
from app.points import badges
from app.web.guards import requires_member
from app.web.responses import current_member


class CommentIn(msgspec.Struct):
    body: str
    parent: int | None = None


class CommentOut(msgspec.Struct):
    id: int
    parent: int | None
    author_handle: str
    author_name: str
    body: str
    state: str  # visible | deleted | hidden
    created_at: dt.datetime
    edited_at: dt.datetime | None


class FollowOut(msgspec.Struct):
    kind: str
    target: int
    following: bool


class LeaderRow(msgspec.Struct):
    rank: int
    handle: str
    name: str
    points: int


def comment_out(row: dict) -> CommentOut:
    state = "hidden" if row["hidden_at"] else "deleted" if row["deleted_at"] else "visible"
    return CommentOut(id=row["id"], parent=row["parent"], author_handle=row["author.handle"],
                      author_name=row["author.display_name"], body=row["body"] if state == "visible" else "",
                      state=state, created_at=row["created_at"], edited_at=row["edited_at"])


@get("/ideas/{idea_id:int}/comments", summary="Comments on an idea, replies after their parent")
async def api_comments(request: Request, idea_id: int) -> list[CommentOut]:
    await service._public_idea(idea_id)
    out = []
    for top in await service.thread(idea_id, current_member(request)):
        out.append(comment_out(top))
        out.extend(comment_out(reply) for reply in top["replies"])
    return out


@post("/ideas/{idea_id:int}/comments", guards=[requires_member], summary="Add a comment (or a reply with parent)")
async def api_add_comment(request: Request, idea_id: int, data: CommentIn) -> CommentOut:
    comment_id = await service.add_comment(current_member(request), idea_id, data.body, data.parent)
    rows = [c for top in await service.thread(idea_id, None) for c in (top, *top["replies"]) if c["id"] == comment_id]
    return comment_out(rows[0])


@put("/ideas/{idea_id:int}/follow", guards=[requires_member], summary="Follow an idea (idempotent)")
async def api_follow(request: Request, idea_id: int) -> FollowOut:
    await service.follow(current_member(request), "idea", idea_id)
    return FollowOut(kind="idea", target=idea_id, following=True)


@delete("/ideas/{idea_id:int}/follow", status_code=200, guards=[requires_member], summary="Unfollow an idea")
async def api_unfollow(request: Request, idea_id: int) -> FollowOut:
    await service.unfollow(current_member(request), "idea", idea_id)
    return FollowOut(kind="idea", target=idea_id, following=False)


@get("/leaderboard", summary="Points leaderboard: period=week (since Monday UTC) or all")
async def api_leaderboard(period: str = "week") -> list[LeaderRow]:
    rows = await badges.leaderboard(period, 50)
    return [LeaderRow(rank=i + 1, handle=r["handle"], name=r["name"], points=r["points"]) for i, r in enumerate(rows)]


ROUTES = [api_comments, api_add_comment, api_follow, api_unfollow, api_leaderboard]
