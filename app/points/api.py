from __future__ import annotations

from litestar import Request, get
from litestar.params import Parameter

from app.accounts import service as accounts
from app.errors import FormError
from app.i18n import gettext
from app.points import service
from app.points.schemas import PointsEntryOut, PointsPage
from app.web.guards import requires_member
from app.web.responses import current_member


@get("/me/points", guards=[requires_member], summary="The member's points ledger, newest first")
async def api_my_points(
    request: Request, cursor: str | None = None, limit: int = Parameter(default=50, ge=1, le=100)
) -> PointsPage:
    member = await accounts.get_member(current_member(request).id)
    before = None
    if cursor:
        if not cursor.isdecimal():
            raise FormError({"cursor": gettext("Invalid cursor; use next_cursor from the previous page.")})
        before = int(cursor)
    rows = await service.history(member.id, limit=limit + 1, before_id=before)
    more = len(rows) > limit
    rows = rows[:limit]
    return PointsPage(
        balance=member.points_balance,
        lifetime=member.points_lifetime,
        items=[
            PointsEntryOut(
                id=r["id"], points=r["points"], reason=r["reason"], label=service.rule_label(r["reason"]),
                reference=r["reference"], note=r["note"], created_at=r["created_at"],
            )
            for r in rows
        ],
        next_cursor=str(rows[-1]["id"]) if more and rows else None,
    )


ROUTES = [api_my_points]
