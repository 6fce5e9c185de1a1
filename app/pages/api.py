"""API answers that several domains fill: GET /api/v1/me (the member, their level and badges)."""

from __future__ import annotations

from litestar import Request, get

from app.accounts.api import member_out
from app.accounts.schemas import MemberOut
from app.points.badges import badges_of
from app.web.guards import requires_member
from app.web.responses import current_member


@get("/me", guards=[requires_member], summary="The member behind the token: points, level, badges")
async def api_me(request: Request) -> MemberOut:
    out = member_out(current_member(request))
    out.badges = [b["code"] for b in await badges_of(out.id)]
    return out


ROUTES = [api_me]
