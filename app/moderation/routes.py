"""Notice and action pages: the report form for anyone, the author's decisions and appeal, and
the staff queue with each content's trail (app/moderation/service.py)."""

from __future__ import annotations

from litestar import Request, Response, get, post

from app.errors import Conflict, FormError, TooManyRequests
from app.i18n import gettext
from app.moderation import service
from app.moderation.service import NoticeInput
from app.throttle import counters
from app.web.guards import requires_member, requires_staff
from app.web.responses import current_member, form_text, redirect, render

REPORT_WINDOW = 60 * 60
REPORT_MAX = 20  # reports an address may send in an hour, members and visitors alike


def _context(**extra: object) -> dict:
    return {"kind_label": service.kind_label, "category_label": service.category_label,
            "action_label": service.action_label, "outcome_label": service.outcome_label,
            "categories": service.CATEGORIES, **extra}


@get("/report/{kind:str}/{target:int}")
async def report_form(request: Request, kind: str, target: int) -> Response:
    content = await service.locate(kind, target)
    if not content.visible:
        return render(request, "moderation/report_gone.html", _context(content=content), status_code=404)
    return render(request, "moderation/report.html", _context(content=content, values={}, errors={}))


@post("/report/{kind:str}/{target:int}")
async def report_submit(request: Request, kind: str, target: int) -> Response:
    form = await form_text(request)
    ip = request.scope.get("state", {}).get("client_ip", "")
    count, _ = await counters().hit(f"report:{ip}", REPORT_WINDOW)
    if count > REPORT_MAX:
        raise TooManyRequests(gettext("You have sent many reports in a short time. Wait a while and try again."),
                              REPORT_WINDOW)
    data = NoticeInput(category=form.get("category", ""), reason=form.get("reason", ""), name=form.get("name", ""),
                       email=form.get("email", ""), good_faith=form.get("good_faith") == "yes")
    member = current_member(request)
    try:
        notice, new = await service.report(member, kind, target, data, client_ip=ip)  # type: ignore[arg-type]
    except FormError as error:
        content = await service.locate(kind, target)
        return render(request, "moderation/report.html", _context(content=content, values=form, errors=error.errors),
                      status_code=400)
    except Conflict as error:
        content = await service.locate(kind, target)
        return render(request, "moderation/report.html",
                      _context(content=content, values=form, errors={"form": error.message}), status_code=409)
    return render(request, "moderation/report_done.html", _context(notice=notice, content=notice["content"], new=new,
                                                                     email=getattr(member, "email", "") or data.email))


@get("/moderation/decisions", guards=[requires_member])
async def my_decisions(request: Request) -> Response:
    member = current_member(request)
    return render(request, "moderation/mine.html",
                  _context(decisions=await service.decisions_about(member)))  # type: ignore[arg-type]


@get("/moderation/decisions/{decision_id:int}", guards=[requires_member])
async def decision_page(request: Request, decision_id: int) -> Response:
    decision = await service.get_decision(decision_id, current_member(request))  # type: ignore[arg-type]
    return render(request, "moderation/decision.html", _context(d=decision, values={}, errors={}))


@post("/moderation/decisions/{decision_id:int}/appeal", guards=[requires_member])
async def appeal_submit(request: Request, decision_id: int) -> Response:
    form = await form_text(request)
    member = current_member(request)
    try:
        await service.appeal(member, decision_id, form.get("appeal", ""))  # type: ignore[arg-type]
    except (FormError, Conflict) as error:
        decision = await service.get_decision(decision_id, member)  # type: ignore[arg-type]
        errors = error.errors if isinstance(error, FormError) else {"form": error.message}
        return render(request, "moderation/decision.html", _context(d=decision, values=form, errors=errors),
                      status_code=400 if isinstance(error, FormError) else 409)
    return redirect(f"/moderation/decisions/{decision_id}", flash=(
        "success", gettext("Your appeal is sent. A person on our team reviews the decision and emails you the answer.")))


@get("/staff/moderation", guards=[requires_staff])
async def staff_queue(request: Request) -> Response:
    return render(request, "moderation/queue.html", _context(**await service.queue(current_member(request))))  # type: ignore[arg-type]


async def _trail_page(request: Request, kind: str, target: int, *, values: dict | None = None,
                      errors: dict | None = None, status_code: int = 200) -> Response:
    trail = await service.trail(current_member(request), kind, target)  # type: ignore[arg-type]
    return render(request, "moderation/trail.html", _context(**trail, values=values or {}, errors=errors or {}),
                  status_code=status_code)


@get("/staff/moderation/{kind:str}/{target:int}", guards=[requires_staff])
async def staff_trail(request: Request, kind: str, target: int) -> Response:
    return await _trail_page(request, kind, target)


@post("/staff/moderation/{kind:str}/{target:int}/decide", guards=[requires_staff])
async def staff_decide(request: Request, kind: str, target: int) -> Response:
    form = await form_text(request)
    action = form.get("action", "")
    try:
        await service.decide(current_member(request), kind, target, action=action,  # type: ignore[arg-type]
                             ground=form.get("ground", ""), statement=form.get("statement", ""))
    except FormError as error:
        return await _trail_page(request, kind, target, values=form, errors=error.errors, status_code=400)
    except Conflict as error:
        return await _trail_page(request, kind, target, values=form, errors={"form": error.message}, status_code=409)
    done = {"remove": gettext("Removed. The author has the statement of reasons, and each reporter the outcome."),
            "keep": gettext("Kept. The reports are settled and each reporter is told."),
            "restore": gettext("Restored. The author is told."),
            "settle": gettext("Settled. Each reporter is told it is no longer on the site.")}[action]
    return redirect(f"/staff/moderation/{kind}/{target}", flash=("success", done))


@post("/staff/moderation/decisions/{decision_id:int}/answer", guards=[requires_staff])
async def staff_answer(request: Request, decision_id: int) -> Response:
    form = await form_text(request)
    staff = current_member(request)
    decision = await service.get_decision(decision_id, staff)  # type: ignore[arg-type]
    try:
        await service.answer_appeal(staff, decision_id, outcome=form.get("outcome", ""),  # type: ignore[arg-type]
                                    answer=form.get("answer", ""))
    except FormError as error:
        return await _trail_page(request, decision["kind"], decision["target"], values=form,
                                 errors={f"{k}-{decision_id}": v for k, v in error.errors.items()}, status_code=400)
    except Conflict as error:
        return await _trail_page(request, decision["kind"], decision["target"], values=form,
                                 errors={"form": error.message}, status_code=409)
    return redirect(f"/staff/moderation/{decision['kind']}/{decision['target']}",
                    flash=("success", gettext("The appeal is answered and the author is told.")))


ROUTES = [report_form, report_submit, my_decisions, decision_page, appeal_submit, staff_queue, staff_trail,
          staff_decide, staff_answer]
