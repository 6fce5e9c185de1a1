from __future__ import annotations

from litestar import Request, Response, get, post

from app.accounts import service as accounts
from app.errors import FormError
from app.i18n import gettext
from app.points import service
from app.settings import get_settings
from app.web.guards import requires_member
from app.web.responses import current_member, redirect, render


@get("/points", guards=[requires_member])
async def points_page(request: Request) -> Response:
    member = await accounts.get_member(current_member(request).id)
    entries = await service.history(member.id, limit=100)
    return render(
        request,
        "points/history.html",
        {"entries": entries, "level": member.level, "rules": service.RULES, "levels": service.LEVELS,
         "label": service.rule_label, "me": member, "vouchers": await service.vouchers_of(member.id),
         "voucher_points": service.VOUCHER_POINTS, "voucher_amount": service.VOUCHER_AMOUNT,
         "invite_link": f"{get_settings().base_url}/signup?ref={member.handle}"},
    )


@post("/points/redeem", guards=[requires_member])
async def points_redeem(request: Request) -> Response:
    try:
        voucher = await service.redeem_voucher(current_member(request).id)
    except FormError as error:
        return redirect("/points", flash=("error", " ".join(error.errors.values())))
    return redirect("/points", flash=("success", gettext("Your voucher %(code)s is ready to use at checkout.", code=voucher["code"])))


ROUTES = [points_page, points_redeem]
