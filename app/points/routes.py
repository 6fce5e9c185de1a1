from __future__ import annotations

from litestar import Request, Response, get

from app.accounts import service as accounts
from app.points import service
from app.web.guards import requires_member
from app.web.responses import current_member, render


@get("/points", guards=[requires_member])
async def points_page(request: Request) -> Response:
    member = await accounts.get_member(current_member(request).id)
    entries = await service.history(member.id, limit=100)
    return render(
        request,
        "points/history.html",
        {"entries": entries, "level": member.level, "rules": service.RULES, "levels": service.LEVELS,
         "label": service.rule_label, "me": member},
    )


ROUTES = [points_page]
