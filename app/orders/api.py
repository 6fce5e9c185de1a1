"""Orders JSON API: GET /api/v1/orders/{number}, the member's orders, staff PATCH and refunds."""

from __future__ import annotations

from litestar import Request, get, patch, post
from litestar.params import Parameter

from app.errors import Conflict, FormError, NotFound
from app.i18n import gettext
from app.orders import fulfilment, lookup, withdrawal
from app.orders.schemas import (
    OrderEventOut,
    OrderLineOut,
    OrderOut,
    OrderPatch,
    OrdersPage,
    OrderSummaryOut,
    RefundIn,
    RefundOut,
    TimelineStepOut,
    TrackingOut,
    WaveIn,
    WaveOut,
    WithdrawalIn,
    WithdrawalLineOut,
    WithdrawalOut,
)
from app.web.guards import requires_member, requires_staff
from app.web.responses import current_member


def refund_out(r: dict) -> RefundOut:
    return RefundOut(id=r["id"], amount=r["amount"], status=r["status"], reason=r["reason"],
                     stripe_refund_id=r["stripe_refund_id"], created_at=r["created_at"])


def order_out(o: dict) -> OrderOut:
    tracking = None
    if o["carrier"] or o["tracking_number"]:
        tracking = TrackingOut(carrier=o["carrier"], carrier_name=o["carrier_name"], number=o["tracking_number"],
                               url=o["tracking_url"])
    return OrderOut(
        number=o["number"], kind=o["kind"], status=o["status"], status_label=o["status_label"], currency=o["currency"],
        subtotal=o["subtotal"], shipping=o["shipping"], discount=o["discount"], total=o["total"],
        refunded=o["refunded"], created_at=o["created_at"], paid_at=o["paid_at"], shipped_at=o["shipped_at"],
        delivered_at=o["delivered_at"], cancelled_at=o["cancelled_at"], campaign_id=o["campaign_id"],
        estimated_delivery=o["estimated_delivery"],
        lines=[OrderLineOut(id=line["id"], title=line["title"], variant=line["variant"], quantity=line["quantity"],
                            unit_price=line["unit_price"], total=line["total"], product_id=line["product_id"],
                            made_to_order=bool(line.get("made_to_order")))
               for line in o["lines"]],
        tracking=tracking, refunds=[refund_out(r) for r in o["refunds"]],
        timeline=[TimelineStepOut(status=s["status"], label=s["label"], state=s["state"], at=s["at"])
                  for s in o["timeline"]],
        history=[OrderEventOut(from_status=e["from_status"], to_status=e["to_status"], message=e["message"],
                               created_at=e["created_at"]) for e in o["events"]],
        ship_to=o["ship_to"], url=f"/orders/{o['number']}",
        queue_place=o["queue"]["place"] if o["queue"] else None,
        queue_waiting=o["queue"]["waiting"] if o["queue"] else None, wave=o["wave"],
    )


def summary_out(o: dict) -> OrderSummaryOut:
    return OrderSummaryOut(number=o["number"], kind=o["kind"], status=o["status"], status_label=o["status_label"],
                           currency=o["currency"], total=o["total"], refunded=o["refunded"], items=o["item_count"],
                           summary=o["summary"], created_at=o["created_at"], url=f"/orders/{o['number']}")


@get("/orders/{number:str}", guards=[requires_member],
     summary="An order: status, lines, totals, refunds, tracking, history (owner or staff)")
async def api_order(request: Request, number: str) -> OrderOut:
    return order_out(await lookup.order_detail(current_member(request), number))


@get("/me/orders", guards=[requires_member], summary="The member's orders, newest first, cursor-paginated")
async def api_my_orders(request: Request, cursor: str | None = None,
                        limit: int = Parameter(default=20, ge=1, le=100)) -> OrdersPage:
    before = None
    if cursor:
        if not cursor.isdecimal() or len(cursor) > 12:
            raise FormError({"cursor": gettext("Invalid cursor; use next_cursor from the previous page.")})
        before = int(cursor)
    items, next_id = await lookup.member_orders_before(current_member(request).id, before, limit)
    return OrdersPage(items=[summary_out(o) for o in items], next_cursor=str(next_id) if next_id else None)


async def _staff_order(request: Request, number: str) -> int:
    try:
        return await fulfilment.order_id_for(number)
    except NotFound:
        raise NotFound(gettext("No order with that number.")) from None


@patch("/staff/orders/{number:str}", guards=[requires_staff],
       summary="Staff: move the status (in_production, shipped, delivered, cancelled) and/or set carrier and tracking")
async def api_patch_order(request: Request, number: str, data: OrderPatch) -> OrderOut:
    staff = current_member(request)
    order_id = await _staff_order(request, number)
    if data.status:
        await fulfilment.set_status(staff, order_id, data.status, carrier=data.carrier,
                                    tracking_number=data.tracking_number, message=data.message)
    elif data.carrier is not None or data.tracking_number is not None:
        current = await lookup.order_detail(staff, number)
        await fulfilment.update_tracking(
            staff, order_id, carrier=data.carrier if data.carrier is not None else current["carrier"],
            tracking_number=data.tracking_number if data.tracking_number is not None else current["tracking_number"])
    else:
        raise FormError({"status": gettext("Send a status, a carrier or a tracking number.")})
    return order_out(await lookup.order_detail(staff, number, staff_view=True))


@post("/staff/orders/{number:str}/refunds", guards=[requires_staff],
      summary="Staff: refund part or all of what is left of the charge (amount in minor units)")
async def api_refund(request: Request, number: str, data: RefundIn) -> RefundOut:
    staff = current_member(request)
    order_id = await _staff_order(request, number)
    refund = await fulfilment.refund_order(staff, order_id, data.amount, reason=data.reason,
                                           key=data.idempotency_key, minor_units=True)
    return refund_out(refund)


async def withdrawal_out(row: dict, number: str | None) -> WithdrawalOut:
    lines = await withdrawal.lines_of(row["id"])
    refund = row.get("refund")
    return WithdrawalOut(
        reference=row["reference"], order_number=number, pledge_id=row["pledge_id"], amount=row["amount"],
        currency=row["currency"], refund_status=refund["status"] if refund else None,
        refund_due_by=row["refund_due_by"], created_at=row["created_at"], receipt_sent_to=row["email"],
        lines=[WithdrawalLineOut(order_line=line["order_line"], quantity=line["quantity"], amount=line["amount"])
               for line in lines])


@post("/orders/{number:str}/withdrawals", guards=[requires_member], status_code=201,
      summary="Withdraw from some or all lines of your order (14 days after delivery); the refund is made and "
              "the receipt emailed at once")
async def api_withdraw_order(request: Request, number: str, data: WithdrawalIn) -> WithdrawalOut:
    member = current_member(request)
    described = await withdrawal.find_order(number, member=member)
    lines = data.lines if data.lines is not None else [line["id"] for line in described["lines"] if line["open"]]
    if described["problem"]:
        raise Conflict(described["problem"])
    done = await withdrawal.withdraw_from_order(number, [str(i) for i in lines], member=member)
    return await withdrawal_out(done, described["order"]["number"])


@post("/pledges/{pledge_id:int}/withdrawal", guards=[requires_member], status_code=201,
      summary="Withdraw from your pledge before it is charged: it is cancelled, never charged, and the receipt emailed")
async def api_withdraw_pledge(request: Request, pledge_id: int) -> WithdrawalOut:
    return await withdrawal_out(await withdrawal.withdraw_from_pledge(current_member(request), pledge_id), None)


@post("/staff/campaigns/{campaign_id:int}/waves", guards=[requires_staff], status_code=201,
      summary="Staff: ship a wave: only the listed in-production pre-orders, each with its tracking number and "
              "emailed; the wave is posted on the campaign's delivery timeline")
async def api_ship_wave(request: Request, campaign_id: int, data: WaveIn) -> WaveOut:
    result = await fulfilment.bulk_ship(current_member(request), campaign_id, carrier=data.carrier,
                                        tracking_lines=data.tracking_lines, only_listed=True)
    return WaveOut(wave=result.wave, shipped=result.moved, skipped=result.skipped)


API_ROUTES = [api_ship_wave, api_order, api_my_orders, api_patch_order, api_refund, api_withdraw_order, api_withdraw_pledge]
ROUTES: list = []
