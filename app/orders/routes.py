"""Order pages for members (history, status, cancel) and staff (fulfilment, refunds, bulk
moves for a campaign's pre-orders, CSV export)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.response import Stream

from app.accounts import addresses
from app.errors import Conflict, FormError
from app.i18n import N_, gettext
from app.orders import carriers, fulfilment, lookup, vat, withdrawal
from app.orders.service import OrderStatus, label
from app.settings import get_settings
from app.web.guards import requires_member, requires_staff
from app.web.responses import current_member, redirect, render
from app.web.templating import money


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _page_number(value: str | None) -> int:
    return int(value) if value and value.isdecimal() and len(value) < 6 else 1


REFUND_STATES = {"pending": N_("pending"), "succeeded": N_("succeeded"), "failed": N_("failed")}


def status_choices() -> list[tuple[str, str]]:
    return [(s.value, label(s)) for s in OrderStatus]


# ---- member ---------------------------------------------------------------------------------


@get("/orders", guards=[requires_member])
async def my_orders(request: Request, page: str | None = None) -> Response:
    result = await lookup.member_orders(current_member(request).id, _page_number(page))
    return render(request, "orders/list.html", {"page": result})


async def _order_page(request: Request, number: str, *, address_values: dict | None = None,
                      address_errors: dict | None = None, status_code: int = 200) -> Response:
    member = current_member(request)
    order = await lookup.order_detail(member, number)
    ctx = {"order": order, "address_values": address_values or {}, "address_errors": address_errors or {},
           "withdrawals": await withdrawal.of_order(order["id"]), "can_withdraw": withdrawal.may_withdraw(order)}
    if order["can_edit_address"]:
        ctx["countries"] = addresses.COUNTRIES
        if address_values is None:
            ctx["address_values"] = order["ship_to"] or await addresses.address_suggestion(member.id)
    return render(request, "orders/detail.html", ctx, status_code=status_code)


@get("/orders/{number:str}", guards=[requires_member])
async def order_page(request: Request, number: str) -> Response:
    return await _order_page(request, number)


@get("/orders/{number:str}/receipt", guards=[requires_member])
async def order_receipt(request: Request, number: str) -> Response:
    """The order's receipt with VAT per rate (print-ready HTML; the browser saves it as a PDF)."""
    order = await lookup.order_detail(current_member(request), number)  # the owner or staff
    if order["paid_at"] is None:
        return redirect(f"/orders/{order['number']}", flash=("error", gettext(
            "There is no receipt yet: the order isn't paid.")))
    rows = await vat.recorded(order["id"])
    return render(request, "orders/receipt.html", {
        "order": order, "vat_rows": rows, "vat_total": sum(r.vat for r in rows),
        "net_total": sum(r.net for r in rows), "seller": get_settings()})


@post("/orders/{number:str}/address", guards=[requires_member])
async def order_address(request: Request, number: str) -> Response:
    member = current_member(request)
    order = await lookup.order_detail(member, number)  # 404 for anyone else's order
    form = await _form(request)
    try:
        await fulfilment.set_delivery_address(member, order["id"], form)
    except FormError as error:
        return await _order_page(request, number, address_values=form, address_errors=error.errors, status_code=400)
    except Conflict as error:
        return redirect(f"/orders/{order['number']}", flash=("error", error.message))
    return redirect(f"/orders/{order['number']}", flash=("success", gettext("Thanks! We'll ship your pre-order to this address.")))


@get("/orders/{number:str}/cancel", guards=[requires_member])
async def cancel_confirm(request: Request, number: str) -> Response:
    order = await lookup.order_detail(current_member(request), number)
    if not order["can_cancel"]:
        return redirect(f"/orders/{order['number']}", flash=("error", gettext(
            "This order can no longer be cancelled here. Contact us and we'll sort it out.")))
    return render(request, "orders/cancel.html", {"order": order})


@post("/orders/{number:str}/cancel", guards=[requires_member])
async def cancel_submit(request: Request, number: str) -> Response:
    member = current_member(request)
    order = await lookup.order_detail(member, number)  # 404 for anyone else's order
    if not order["is_owner"]:
        return redirect(f"/orders/{order['number']}", flash=("error", gettext("Staff cancel orders from the fulfilment page.")))
    try:
        result = await fulfilment.cancel_order(member, order["id"], as_owner=True)
    except Conflict as error:
        return redirect(f"/orders/{order['number']}", flash=("error", error.message))
    text = gettext("Your order is cancelled.")
    if result.refund and result.refund["status"] == "succeeded":
        text += " " + gettext("The money is on its way back to your card (it can take a few days to show).")
    elif result.refund_error:
        text += " " + gettext("We'll refund your payment shortly.")
    return redirect(f"/orders/{order['number']}", flash=("success", text))


# ---- staff ----------------------------------------------------------------------------------


def _period(params: dict[str, str]) -> tuple[dt.date, dt.date, dict[str, str]]:
    """The report's days [from, to], both included; by default this month so far."""
    today = dt.date.today()
    errors: dict[str, str] = {}
    days = {}
    for key, default in (("from", today.replace(day=1)), ("to", today)):
        text = (params.get(key) or "").strip()
        try:
            days[key] = dt.date.fromisoformat(text) if text else default
            if not 2000 <= days[key].year <= 2999:
                raise ValueError
        except ValueError:
            errors[key] = gettext("Use a date like 2026-12-01.")
            days[key] = default
    if days["to"] < days["from"]:
        errors["to"] = gettext("The last day comes on or after the first.")
    elif (days["to"] - days["from"]).days > 366:
        errors["to"] = gettext("Choose at most a year at a time.")
    return days["from"], days["to"], errors


def _bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return (dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC),
            dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC))


@get("/staff/reports/vat", guards=[requires_staff])
async def staff_vat_report(request: Request) -> Response:
    """Sales and refunds with VAT per rate for a period (days in UTC), and the CSV download."""
    params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    first, last, errors = _period(params)
    rows = [] if errors else await vat.report(*_bounds(first, last))
    return render(request, "orders/vat_report.html", {
        "first": first, "last": last, "errors": errors, "totals": vat.totals(rows), "count": len(rows),
        "values": {"from": params.get("from", first.isoformat()), "to": params.get("to", last.isoformat())}},
        status_code=400 if errors else 200)


@get("/staff/reports/vat.csv", guards=[requires_staff])
async def staff_vat_csv(request: Request) -> Response:
    params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    first, last, errors = _period(params)
    if errors:
        raise FormError(errors)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["date", "type", "order", "vat_rate", "gross_incl_vat", "net_excl_vat", "vat", "currency"])
    currency = get_settings().currency
    rows = await vat.report(*_bounds(first, last))
    for row in rows:
        writer.writerow([row.day.isoformat(), row.kind, row.number, row.rate, money_text(row.gross),
                         money_text(row.net), money_text(row.vat), currency])
    for total in vat.totals(rows):
        writer.writerow(["", "total", "", total["rate"], money_text(total["gross"]), money_text(total["net"]),
                         money_text(total["vat"]), currency])
    return Response(content=out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="vat-{first.isoformat()}-{last.isoformat()}.csv"'})


def money_text(minor: int) -> str:
    """Minor units as a plain decimal for spreadsheets: 12345 -> "123.45", -50 -> "-0.50"."""
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


async def _staff_list_context(request: Request) -> dict:
    params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    filters, errors = lookup.parse_filters(params)
    result = await lookup.staff_orders(filters, _page_number(params.get("page")))
    return {"page": result, "filters": filters, "params": filters.params(), "errors": errors,
            "statuses": status_choices(), "campaigns": await lookup.campaigns_with_orders(),
            "carriers": list(carriers.CARRIERS.values())}


@get("/staff/orders", guards=[requires_staff])
async def staff_orders(request: Request) -> Response:
    ctx = await _staff_list_context(request)
    ctx.update(bulk_values={}, bulk_errors={})
    return render(request, "orders/staff_list.html", ctx, fragment="orders/_staff_results.html")


@get("/staff/campaigns/{campaign_id:int}/backers.csv", guards=[requires_staff])
async def staff_backer_report(campaign_id: int) -> Stream:
    await lookup.campaign_exists(campaign_id)
    name = f"backers-campaign-{campaign_id}-{dt.date.today().isoformat()}.csv"
    return Stream(lookup.backer_report_csv(campaign_id), media_type="text/csv; charset=utf-8",
                  headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@get("/staff/orders.csv", guards=[requires_staff])
async def staff_orders_csv(request: Request) -> Stream:
    params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    filters, _ = lookup.parse_filters(params)
    name = f"orders-{dt.date.today().isoformat()}.csv"
    return Stream(lookup.export_csv(filters), media_type="text/csv; charset=utf-8",
                  headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@post("/staff/orders/bulk", guards=[requires_staff])
async def staff_bulk(request: Request) -> Response:
    staff = current_member(request)
    raw = await request.form()
    form = {k: v for k, v in raw.items() if isinstance(v, str)}
    upload = raw.get("tracking_file")
    campaign = form.get("campaign", "")
    action = form.get("action", "")
    errors: dict[str, str] = {}
    if not campaign.isdecimal() or len(campaign) > 9:
        errors["campaign"] = gettext("Choose the campaign.")
    if action not in ("in_production", "shipped", "wave"):
        errors["action"] = gettext("Choose what to do with the campaign's orders.")
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            try:
                from_file = fulfilment.tracking_csv(await upload.read())
                form["tracking_lines"] = "\n".join(t for t in (form.get("tracking_lines", "").strip(), from_file) if t)
            except FormError as error:
                errors.update(error.errors)
        if errors:
            raise FormError(errors)
        if action == "in_production":
            result = await fulfilment.bulk_in_production(staff, int(campaign))
            done = gettext("%(num)s pre-order(s) moved to in production.", num=len(result.moved))
        else:
            result = await fulfilment.bulk_ship(staff, int(campaign), carrier=form.get("carrier"),
                                                tracking_lines=form.get("tracking_lines", ""),
                                                only_listed=action == "wave")
            done = gettext("%(num)s pre-order(s) marked shipped; the backers are emailed.", num=len(result.moved))
            if result.wave:
                done += " " + gettext("Shipping wave %(wave)s is on the campaign's delivery timeline.", wave=result.wave)
    except FormError as error:
        ctx = await _staff_list_context(request)
        ctx.update(bulk_values=form, bulk_errors=error.errors)
        return render(request, "orders/staff_list.html", ctx, status_code=400)
    if result.skipped:
        done += " " + gettext("%(num)s had already been moved by someone else.", num=len(result.skipped))
    if not result.moved and not result.skipped:
        done = gettext("No orders of that campaign were waiting for this step.")
    return redirect(f"/staff/orders?campaign={campaign}", flash=("success" if result.moved else "info", done))


async def _staff_order_page(request: Request, number: str, *, errors: dict | None = None, values: dict | None = None,
                            status_code: int = 200, message: str = "") -> Response:
    order = await lookup.order_detail(current_member(request), number, staff_view=True)
    values = values or {}
    values.setdefault("carrier", order["carrier"])
    values.setdefault("tracking_number", order["tracking_number"])
    return render(request, "orders/staff_detail.html", {
        "order": order, "errors": errors or {}, "values": values, "carriers": list(carriers.CARRIERS.values()),
        "refund_key": secrets.token_hex(10), "error_message": message,
        "withdrawals": await withdrawal.of_order(order["id"])}, status_code=status_code)


@get("/staff/orders/{number:str}", guards=[requires_staff])
async def staff_order(request: Request, number: str) -> Response:
    return await _staff_order_page(request, number)


async def _staff_action(request: Request, number: str, action) -> Response:  # noqa: ANN001
    staff = current_member(request)
    form = await _form(request)
    order_id = await fulfilment.order_id_for(number)
    try:
        notice = await action(staff, order_id, form)
    except FormError as error:
        return await _staff_order_page(request, number, errors=error.errors, values=form, status_code=400)
    except Conflict as error:
        return await _staff_order_page(request, number, values=form, status_code=409, message=error.message)
    kind, text = notice
    return redirect(f"/staff/orders/{number.strip().upper()}", flash=(kind, text))


@post("/staff/orders/{number:str}/status", guards=[requires_staff])
async def staff_status(request: Request, number: str) -> Response:
    async def move(staff, order_id: int, form: dict):  # noqa: ANN001
        target = form.get("status", "")
        if target == OrderStatus.CANCELLED:
            if form.get("confirm") != "yes":
                raise FormError({"confirm": gettext("Tick the box to confirm the cancellation.")})
            result = await fulfilment.cancel_order(staff, order_id, reason=form.get("message", ""))
            text = gettext("Order cancelled") + (gettext(", stock returned") if result.restocked else "")
            if result.refund:
                state = result.refund["status"]
                text += gettext(", refund %(status)s", status=gettext(REFUND_STATES[state]) if state in REFUND_STATES
                                else state)
            if result.refund_error:
                return ("error", gettext("%(done)s. But the refund did not go through: %(error)s",
                                         done=text, error=result.refund_error))
            return ("success", gettext("%(done)s. The customer is emailed.", done=text))
        await fulfilment.set_status(staff, order_id, target, carrier=form.get("carrier"),
                                    tracking_number=form.get("tracking_number"), message=form.get("message", ""))
        return ("success", gettext("Order marked %(status)s.", status=label(target).lower()))

    return await _staff_action(request, number, move)


@post("/staff/orders/{number:str}/tracking", guards=[requires_staff])
async def staff_tracking(request: Request, number: str) -> Response:
    async def save(staff, order_id: int, form: dict):  # noqa: ANN001
        await fulfilment.update_tracking(staff, order_id, carrier=form.get("carrier"),
                                         tracking_number=form.get("tracking_number"))
        return ("success", gettext("Tracking saved."))

    return await _staff_action(request, number, save)


@post("/staff/orders/{number:str}/refunds", guards=[requires_staff])
async def staff_refund(request: Request, number: str) -> Response:
    async def refund(staff, order_id: int, form: dict):  # noqa: ANN001
        row = await fulfilment.refund_order(staff, order_id, form.get("amount", ""), reason=form.get("reason", ""),
                                            key=form.get("refund_key"))
        if row["status"] == "pending":
            return ("info", gettext("Stripe could not be reached; the refund is pending and will be retried automatically."))

        return ("success", gettext("Refunded %(amount)s. The customer is emailed.", amount=money(row["amount"])))

    return await _staff_action(request, number, refund)


ROUTES = [staff_vat_report, staff_vat_csv, my_orders, order_page, order_receipt, order_address, cancel_confirm, cancel_submit, staff_orders, staff_orders_csv, staff_backer_report, staff_bulk,
          staff_order, staff_status, staff_tracking, staff_refund]
API_ROUTES: list = []
