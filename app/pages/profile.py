"""A member's public profile: their level, ideas and badges, and whether the viewer follows them."""

from __future__ import annotations

from litestar import Request, Response, get

from app.accounts import service
from app.accounts.levels import level_for
from app.community.service import is_following
from app.ideas import service as ideas
from app.points.badges import badges_of
from app.web.responses import current_member, render


@get("/members/{handle:str}")
async def profile_page(request: Request, handle: str) -> Response:
    profile = await service.get_profile(handle)
    viewer = current_member(request)
    own = viewer is not None and viewer.id == profile["id"]
    return render(
        request,
        "accounts/profile.html",
        {
            "profile": profile,
            "level": level_for(profile["points_lifetime"]),
            "ideas": await ideas.ideas_by_author(profile["id"]),
            "own": own,
            "status_label": ideas.status_label,
            "badges": await badges_of(profile["id"]),
            "follow_kind": "member", "follow_target": profile["id"], "next": f"/members/{profile['handle']}",
            "following": await is_following(viewer, "member", profile["id"]),
        },
    )


ROUTES = [profile_page]
