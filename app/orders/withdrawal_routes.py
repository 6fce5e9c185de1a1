""""Withdraw from contract here": the withdrawal pages (app/orders/withdrawal.py) for members
and guests, in two steps (pick, then confirm), and the staff's "goods returned" action.

A guest names the order by its number and the email it was bought with; every step re-checks
both (no state is kept between steps), and failed lookups are throttled per address."""

from __future__ import annotations

from litestar import Request, Response, get, post

from app.db import utcnow
from app.errors import Conflict, FormError, NotFound, TooManyRequests
from app.i18n import gettext
from app.orders import lookup, withdrawal
from app.throttle import counters
from app.web.guards import requires_member, requires_staff
from app.web.responses import current_member, redirect, render

LOOKUP_WINDOW = 15 * 60
LOOKUP_MAX_FAILURES = 10


async def _form(request: Request) -> tuple[dict[str, str], list[str]]:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    return values, [v for v in form.getall("line") if isinstance(v, str)] if "line" in form else []


async def _check_throttle(request: Request) -> str:
    key = f"withdraw-lookup:{request.scope.get('state', {}).get('client_ip', '')}"
    count, _ = await counters().peek(key)
    if count >= LOOKUP_MAX_FAILURES:
        raise TooManyRequests(gettext("Too many tries. Wait a few minutes and try again."), LOOKUP_WINDOW)
    return key


async def _start_context(request: Request) -> dict:
    member = current_member(request)
    ctx: dict = {"orders": [], "pledges": [], "values": {}, "errors": {}}
    if member is not None:
        now = utcnow()
        ctx["orders"] = [o for o in (await lookup.member_orders(member.id, per_page=100))["items"]
                         if o["status"] in {s.value for s in withdrawal.WITHDRAWABLE}
                         and (withdrawal.period_ends(o) is None or withdrawal.period_ends(o) > now)]
        ctx["pledges"] = await withdrawal.open_pledges(member)
    return ctx


@get("/withdraw", name="withdraw")
async def withdraw_start(request: Request) -> Response:
    return render(request, "orders/withdraw_start.html", await _start_context(request))


async def _find(request: Request, number: str, email: str) -> dict:
    member = current_member(request)
    if member is not None and not email:
        return await withdrawal.find_order(number, member=member)
    key = await _check_throttle(request)
    try:
        return await withdrawal.find_order(number, email=email)
    except NotFound:
        await counters().hit(key, LOOKUP_WINDOW)
        raise


def _lines_page(request: Request, described: dict, *, email: str = "", errors: dict | None = None,
                picked: list[str] | None = None, status_code: int = 200) -> Response:
    return render(request, "orders/withdraw_lines.html", {
        "found": described, "order": described["order"], "email": email, "errors": errors or {},
        "picked": set(picked) if picked is not None else {str(line["id"]) for line in described["lines"] if line["open"]},
    }, status_code=status_code)


@post("/withdraw/find")
async def withdraw_find(request: Request) -> Response:
    values, _ = await _form(request)
    number, email = values.get("number", "").strip(), values.get("email", "").strip()
    errors = {}
    if not number:
        errors["number"] = gettext("Enter the order number from your confirmation email (like CM-7F3A9C1E).")
    if not email and current_member(request) is None:
        errors["email"] = gettext("Enter the email address you ordered with.")
    if not errors:
        try:
            return _lines_page(request, await _find(request, number, email), email=email)
        except NotFound as error:
            errors["number"] = error.message
    ctx = await _start_context(request)
    ctx.update(values=values, errors=errors)
    return render(request, "orders/withdraw_start.html", ctx, status_code=400)


@get("/withdraw/orders/{number:str}", guards=[requires_member])
async def withdraw_order_page(request: Request, number: str) -> Response:
    return _lines_page(request, await withdrawal.find_order(number, member=current_member(request)))


@post("/withdraw/orders/{number:str}/review")
async def withdraw_review(request: Request, number: str) -> Response:
    """Step two: what is withdrawn from and what comes back, with the button that does it."""
    values, lines = await _form(request)
    email = values.get("email", "").strip()
    described = await _find(request, number, email)
    if described["problem"]:
        return _lines_page(request, described, email=email, errors={"lines": described["problem"]}, status_code=409)
    try:
        chosen = withdrawal.parse_lines(lines, described)
    except (FormError, Conflict) as error:
        message = error.errors.get("lines") if isinstance(error, FormError) else error.message
        return _lines_page(request, described, email=email, errors={"lines": message}, picked=lines, status_code=400)
    remaining = [line for line in described["lines"] if not line["withdrawn"] and not line["exempt"]]
    whole = len(chosen) == len(remaining) and not any(line["exempt"] for line in described["lines"])
    return render(request, "orders/withdraw_confirm.html", {
        "order": described["order"], "chosen": chosen, "email": email, "shipped": described["shipped"],
        "amount": withdrawal.refund_for(described["order"], chosen, whole=whole),
    })


@post("/withdraw/orders/{number:str}")
async def withdraw_submit(request: Request, number: str) -> Response:
    values, lines = await _form(request)
    email = values.get("email", "").strip()
    member = current_member(request)
    try:
        if member is not None and not email:
            done = await withdrawal.withdraw_from_order(number, lines, member=member)
        else:
            key = await _check_throttle(request)
            try:
                done = await withdrawal.withdraw_from_order(number, lines, email=email)
            except NotFound:
                await counters().hit(key, LOOKUP_WINDOW)  # a guess counts at every step, not only the first
                raise
    except (FormError, Conflict) as error:
        described = await _find(request, number, email)
        message = error.errors.get("lines") if isinstance(error, FormError) else error.message
        return _lines_page(request, described, email=email, errors={"lines": message}, picked=lines,
                           status_code=error.status_code)
    return render(request, "orders/withdraw_done.html", {
        "withdrawal": done, "refund_text": withdrawal.refund_text(done), "number": number.strip().upper(),
        "signed_in": member is not None and not email})


@get("/withdraw/pledges/{pledge_id:int}", guards=[requires_member])
async def withdraw_pledge_page(request: Request, pledge_id: int) -> Response:
    pledge = await withdrawal.open_pledge(current_member(request), pledge_id)
    if pledge is None:
        return redirect("/withdraw", flash=("error", gettext(
            "This pledge can no longer be withdrawn from here: once it is charged, withdraw from its pre-order instead.")))
    return render(request, "orders/withdraw_pledge.html", {"pledge": pledge})


@post("/withdraw/pledges/{pledge_id:int}", guards=[requires_member])
async def withdraw_pledge_submit(request: Request, pledge_id: int) -> Response:
    try:
        done = await withdrawal.withdraw_from_pledge(current_member(request), pledge_id)
    except Conflict as error:
        return redirect("/withdraw", flash=("error", error.message))
    return render(request, "orders/withdraw_done.html", {
        "withdrawal": done, "refund_text": withdrawal.refund_text(done), "number": "", "signed_in": True})


@post("/staff/orders/{number:str}/withdrawals/{withdrawal_id:int}/returned", guards=[requires_staff])
async def staff_goods_returned(request: Request, number: str, withdrawal_id: int) -> Response:
    units = await withdrawal.goods_returned(current_member(request), withdrawal_id)
    text = (gettext("Noted: the goods are back and %(units)s units are in stock again.", units=units) if units
            else gettext("Noted: the goods are back (their units were already in stock)."))
    return redirect(f"/staff/orders/{number}", flash=("success", text))


@post("/staff/orders/{number:str}/withdrawals/{withdrawal_id:int}/refund", guards=[requires_staff])
async def staff_retry_refund(request: Request, number: str, withdrawal_id: int) -> Response:
    try:
        refund = await withdrawal.retry_refund(current_member(request), withdrawal_id)
    except Conflict as error:
        return redirect(f"/staff/orders/{number}", flash=("error", error.message))
    if refund["status"] == "succeeded":
        return redirect(f"/staff/orders/{number}", flash=("success", gettext("Refunded: the money is on its way back.")))
    return redirect(f"/staff/orders/{number}", flash=("error", gettext(
        "Stripe did not refund it this time either; pay the customer another way and note it on the order.")))


ROUTES = [withdraw_start, withdraw_find, withdraw_order_page, withdraw_review, withdraw_submit, withdraw_pledge_page,
          withdraw_pledge_submit, staff_goods_returned, staff_retry_refund]
