"""Staff fulfilment: status moves, tracking, refunds, cancellations that restock.

Every status change goes through `app.orders.service.move_order` (a conditional update plus an
`OrderEvent`), so an order moves once even when two staff members click at the same time; the
member's email and in-site notification are written in the same transaction, with unique keys.

Refunds are exact in two steps. Under one write transaction (the order row locked on
PostgreSQL, IMMEDIATE on SQLite) a `Refund` row is inserted as pending and `Order.refunded`
is raised with a conditional `refunded + amount <= total`: two refunds can never together
exceed what was charged. Only then is Stripe called (with the refund's idempotency key). A
refusal marks the refund failed and lowers `Order.refunded` back; an unreachable Stripe leaves
it pending and the `finish_refund` job, enqueued with the refund, retries with the same key.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from piccolo.columns.combination import WhereRaw

from app import i18n
from app.accounts.addresses import clean_address
from app.accounts.service import CurrentMember
from app.campaigns import delivery
from app.campaigns import service as campaigns
from app.campaigns.service import parse_money
from app.campaigns.tables import Campaign, Pledge
from app.db import is_sqlite, utcnow, write_transaction
from app.errors import Conflict, Forbidden, FormError, NotFound
from app.events import emit
from app.i18n import N_, gettext
from app.jobs.service import enqueue, job_handler
from app.mail.service import queue_email
from app.orders import carriers, lookup
from app.orders.events import OrderNotice, OrderReleased
from app.orders.service import IllegalOrderMove, OrderStatus, label, move_order, release_stock
from app.orders.tables import Order, OrderEvent, OrderLine, OrderPayment, Refund
from app.payments.gateway import GatewayError, RefundRefused, gateway
from app.settings import get_settings
from app.web.templating import money

log = logging.getLogger("crowdmade.orders")

S = OrderStatus
REFUND_RETRY_MINUTES = 10
BULK_CHUNK = 50
# What staff may ask for by hand (a full refund moves to "refunded" by itself).
STAFF_TARGETS = (S.IN_PRODUCTION, S.SHIPPED, S.DELIVERED, S.CANCELLED)
REFUNDABLE = (S.PAID, S.IN_PRODUCTION, S.SHIPPED, S.DELIVERED, S.CANCELLED)


def require_staff(actor: CurrentMember | None) -> CurrentMember:
    if actor is None or not actor.is_staff:
        raise Forbidden(gettext("Staff only."))
    return actor


async def order_id_for(number: str) -> int:
    row = await Order.select(Order.id).where(Order.number == (number or "").strip().upper()[:20]).first()
    if row is None:
        raise NotFound(gettext("Order not found"))
    return row["id"]


# ---- telling the member ---------------------------------------------------------------------

EMAILS = {  # kind -> subject (translated into the member's language when the email is written)
    "shipped": N_("Your order %(number)s is on its way"),
    "delivered": N_("Your order %(number)s was delivered"),
    "refunded": N_("Refund for your order %(number)s"),
    "cancelled": N_("Your order %(number)s is cancelled"),
}
IN_SITE = {  # kind -> notification title, stored in the member's language
    "shipped": N_("Your order %(number)s has shipped"),
    "delivered": N_("Your order %(number)s was delivered"),
    "refunded": N_("%(amount)s refunded for order %(number)s"),
    "cancelled": N_("Your order %(number)s is cancelled"),
    "in_production": N_("Your pre-order %(number)s is in production"),
}


async def _order_context(order_id: int) -> dict[str, Any]:
    order = await Order.select(*Order.all_columns(), Order.member.email, Order.member.display_name,
                               Order.member.deleted_at, Order.member.locale).where(Order.id == order_id).first()
    lines = await OrderLine.select().where(OrderLine.order == order_id).order_by(OrderLine.id)
    base = get_settings().base_url
    return {
        "order": order, "lines": lines, "number": order["number"], "name": order["member.display_name"],
        "currency": order["currency"], "link": f"{base}/orders/{order['number']}",
        "carrier": carriers.carrier_name(order["carrier"]), "tracking_number": order["tracking_number"],
        "tracking_url": carriers.tracking_url(order["carrier"], order["tracking_number"]),
    }


async def tell_member(order_id: int, kind: str, *, ref: str, extra: dict[str, Any] | None = None,
                      email: bool = True) -> None:
    """An in-site notification (kind "order") and, for the kinds in EMAILS, one email; each at
    most once per `ref`, both in the member's language. Call it inside the transaction of the change."""
    ctx = await _order_context(order_id)
    ctx.update(extra or {})
    order = ctx["order"]
    locale = order["member.locale"] or i18n.get_locale()
    with i18n.use_locale(locale):
        ctx["carrier"] = carriers.display_name(order["carrier"])
        ctx["refund_reason"] = lookup.known_text(ctx["refund"]["reason"]) if ctx.get("refund") else ""
        title = gettext(IN_SITE[kind], number=order["number"], amount=money(ctx.get("amount"), order["currency"]))
    await emit(OrderNotice(order["member"], order_id, f"order:{ref}", title, f"/orders/{order['number']}"))
    if email and kind in EMAILS and order["member.deleted_at"] is None:
        await queue_email(kind=f"order_{kind}", subject_ref=f"order:{ref}", to=order["member.email"],
                          subject=EMAILS[kind], subject_args={"number": order["number"]}, locale=locale,
                          template=f"orders/{kind}", context=ctx)


# ---- status moves ---------------------------------------------------------------------------


def _parse_target(value: Any) -> OrderStatus:
    try:
        target = OrderStatus(str(value or "").strip())
    except ValueError:
        target = None
    if target not in STAFF_TARGETS:
        raise FormError({"status": gettext("Choose in production, shipped, delivered or cancelled.")})
    return target


def _check_shipping(carrier: Any, tracking_number: Any, *, required: bool = True) -> tuple[str, str]:
    errors = {}
    found = carriers.find_carrier(carrier)
    number = carriers.clean_tracking_number(tracking_number)
    if found is None and (required or (carrier or "").strip()):
        errors["carrier"] = gettext("Choose the carrier.")
    if number is None and (required or (tracking_number or "").strip()):
        errors["tracking_number"] = (gettext("Enter the tracking number (letters, digits, spaces, dashes; up to 80).")
                                     if (tracking_number or "").strip() else gettext("Enter the tracking number."))
    if errors:
        raise FormError(errors)
    return (found.code if found else ""), (number or "")


async def _move_and_tell(order_id: int, to: OrderStatus, *, actor_id: int | None, message: str,
                         expect: tuple[OrderStatus, ...] | None = None, extra: dict | None = None,
                         strict: bool = False) -> bool:
    async with write_transaction():
        if await move_order(order_id, to, expect=expect, message=message, actor_id=actor_id, extra=extra,
                            strict=strict) is None:
            return False
        if to in (S.SHIPPED, S.DELIVERED, S.IN_PRODUCTION):
            await tell_member(order_id, to.value, ref=f"{order_id}:{to.value}")
    return True


async def set_status(staff: CurrentMember, order_id: int, to: Any, *, carrier: Any = None,
                     tracking_number: Any = None, message: str = "") -> OrderStatus:
    """Staff move one order: in production (pre-orders), shipped (carrier + tracking number
    required), delivered, or cancelled (refunds what is left, restocks, returns the voucher)."""
    require_staff(staff)
    target = _parse_target(to)
    if target is S.CANCELLED:
        await cancel_order(staff, order_id, reason=message)
        return target
    order = await Order.select(Order.kind, Order.status, Order.carrier, Order.tracking_number).where(
        Order.id == order_id).first()
    if order is None:
        raise NotFound(gettext("Order not found"))
    extra: dict[Any, Any] = {}
    if target is S.IN_PRODUCTION and order["kind"] != "preorder":
        raise IllegalOrderMove(gettext("Shop orders go straight from paid to shipped; only pre-orders are made to order."))
    if target is S.SHIPPED:
        code, number = _check_shipping(carrier if carrier is not None else order["carrier"],
                                       tracking_number if tracking_number is not None else order["tracking_number"])
        extra = {Order.carrier: code, Order.tracking_number: number}
        message = message or f"{carriers.carrier_name(code)} {number}"
    await _move_and_tell(order_id, target, actor_id=staff.id, message=message.strip()[:500], extra=extra, strict=True)
    if target in (S.IN_PRODUCTION, S.DELIVERED):
        await campaign_follows_orders(staff, order_id=order_id)
    return target


async def update_tracking(staff: CurrentMember, order_id: int, *, carrier: Any, tracking_number: Any) -> None:
    """Correct the carrier or tracking number (also before shipping). The member sees the new
    link at once and gets an in-site note when a shipped order's tracking changes."""
    require_staff(staff)
    code, number = _check_shipping(carrier, tracking_number, required=False)
    async with write_transaction():
        order = await Order.select(Order.status, Order.carrier, Order.tracking_number).where(
            Order.id == order_id).first()
        if order is None:
            raise NotFound(gettext("Order not found"))
        if order["status"] in (S.CANCELLED, S.REFUNDED):
            raise Conflict(gettext("This order is %(status)s; its tracking can no longer change.",
                                   status=label(order["status"]).lower()))
        if order["status"] in (S.SHIPPED, S.DELIVERED) and not (code and number):
            raise FormError({"tracking_number": gettext("A shipped order keeps a carrier and a tracking number.")})
        if (order["carrier"], order["tracking_number"]) == (code, number):
            return
        await Order.update({Order.carrier: code, Order.tracking_number: number, Order.updated_at: utcnow()}).where(
            Order.id == order_id)
        text = f"Tracking: {carriers.carrier_name(code)} {number}".strip() if code or number else "Tracking removed"
        await OrderEvent.insert(OrderEvent(order=order_id, from_status=order["status"], to_status=order["status"],
                                           message=text, actor=staff.id))
        if order["status"] in (S.SHIPPED, S.DELIVERED):
            await tell_member(order_id, "shipped", ref=f"{order_id}:tracking:{code}:{number}"[:150], email=False)


# ---- refunds --------------------------------------------------------------------------------


def parse_refund_amount(value: Any, *, minor_units: bool = False) -> int:
    """Major units as typed in the staff form ("120" or "120,50"), or minor units from the API."""
    if minor_units:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise FormError({"amount": gettext("The amount must be a positive whole number of minor units (öre, cents).")})
        return value
    try:
        cents = parse_money(value)
    except ValueError:
        raise FormError({"amount": gettext("Enter an amount like 120 or 120.50.")}) from None
    if not cents:
        raise FormError({"amount": gettext("Enter the amount to refund.")})
    return cents


async def _lock_order(order_id: int) -> dict[str, Any]:
    query = Order.select()
    if not is_sqlite():
        query = query.lock_rows()  # SELECT ... FOR UPDATE; SQLite's IMMEDIATE transaction is the lock there
    row = await query.where(Order.id == order_id).first()
    if row is None:
        raise NotFound(gettext("Order not found"))
    return row


async def _payment_intent_of(order: dict[str, Any]) -> str:
    if order["payment_intent_id"]:
        return order["payment_intent_id"]
    row = await OrderPayment.select(OrderPayment.payment_intent_id).where(
        (OrderPayment.order == order["id"]) & (OrderPayment.status == "paid")).first()
    return row["payment_intent_id"] if row else ""


async def reserve_refund(order_id: int, amount: int, *, reason: str, staff_id: int | None, key: str) -> tuple[dict, bool]:
    """In the caller's write transaction: the pending Refund row and Order.refunded raised.
    Returns (refund row, created); a refund with the same key is returned as it is."""
    idempotency_key = f"order-{order_id}-refund-{key}"[:80]
    order = await _lock_order(order_id)
    existing = await Refund.select().where(Refund.idempotency_key == idempotency_key).first()
    if existing:
        return existing, False
    currency = order["currency"]
    if order["paid_at"] is None or order["status"] not in REFUNDABLE or not await _payment_intent_of(order):
        raise Conflict(gettext("This order has no payment to refund."))
    left = order["total"] - order["refunded"]
    if left <= 0:
        raise Conflict(gettext("This order is already refunded in full."))
    if amount > left:
        raise FormError({"amount": gettext("At most %(left)s can still be refunded (charged %(charged)s, refunded %(refunded)s).",
                                           left=money(left, currency), charged=money(order["total"], currency),
                                           refunded=money(order["refunded"], currency))})
    raised = await Order.update({Order.refunded: Order.refunded + amount, Order.updated_at: utcnow()}).where(
        (Order.id == order_id) & WhereRaw('"refunded" + {} <= "total"', amount)).returning(Order.refunded)
    if not raised:  # cannot happen under the lock; kept so a refund can never exceed the charge
        raise FormError({"amount": gettext("That is more than what is left to refund.")})
    rows = await Refund.insert(Refund(order=order_id, amount=amount, reason=reason, staff=staff_id,
                                      idempotency_key=idempotency_key, status="pending")).returning(*Refund.all_columns())
    refund = rows[0]
    await enqueue("finish_refund", {"refund_id": refund["id"]}, unique_key=f"finish_refund:{refund['id']}",
                  run_at=utcnow() + dt.timedelta(minutes=REFUND_RETRY_MINUTES))
    return refund, True


class RefundFailed(Conflict):
    """Stripe refused the refund: nothing was refunded."""


class RefundDelayed(Exception):
    """Stripe could not be reached; the refund stays pending and the finish_refund job retries it."""


async def execute_refund(refund_id: int, *, email: bool = True) -> dict[str, Any]:
    refund = await Refund.select().where(Refund.id == refund_id).first()
    if refund is None or refund["status"] != "pending":
        return refund
    order = await Order.select().where(Order.id == refund["order"]).first()
    payment_intent = await _payment_intent_of(order)
    try:
        stripe_id = await gateway().refund(payment_intent_id=payment_intent, amount=refund["amount"],
                                           idempotency_key=refund["idempotency_key"])
    except RefundRefused as error:
        log.warning("refund %s refused by Stripe: %s", refund_id, error)
        await _fail_refund(refund_id, str(error))
        raise RefundFailed(gettext("Stripe refused the refund: %(error)s. Nothing was refunded.", error=error)) from error
    except GatewayError as error:  # not reached: the refund may have happened; retry with the same key
        log.warning("refund %s: Stripe not reachable (%s); the finish_refund job retries it", refund_id, error)
        raise RefundDelayed(str(error)) from error
    return await _record_refund(refund_id, stripe_id, email=email)


async def _fail_refund(refund_id: int, message: str) -> None:
    async with write_transaction():
        rows = await Refund.update({Refund.status: "failed"}).where(
            (Refund.id == refund_id) & (Refund.status == "pending")).returning(Refund.order, Refund.amount)
        if not rows:
            return
        order_id, amount = rows[0]["order"], rows[0]["amount"]
        await Order.update({Order.refunded: Order.refunded - amount, Order.updated_at: utcnow()}).where(
            (Order.id == order_id) & (Order.refunded >= amount))
        order = await Order.select(Order.status, Order.currency).where(Order.id == order_id).first()
        await OrderEvent.insert(OrderEvent(order=order_id, from_status=order["status"], to_status=order["status"],
                                           message=f"Refund of {money(amount, order['currency'])} refused by Stripe: "
                                                   f"{message}"[:500]))


async def _record_refund(refund_id: int, stripe_refund_id: str, *, email: bool) -> dict[str, Any]:
    async with write_transaction():
        rows = await Refund.update({Refund.status: "succeeded", Refund.stripe_refund_id: stripe_refund_id}).where(
            (Refund.id == refund_id) & (Refund.status == "pending")).returning(*Refund.all_columns())
        if not rows:
            return await Refund.select().where(Refund.id == refund_id).first()
        refund = rows[0]
        order_id = refund["order"]
        order = await Order.select(Order.total, Order.refunded, Order.status, Order.currency).where(
            Order.id == order_id).first()
        pending = await Refund.count().where((Refund.order == order_id) & (Refund.status == "pending"))
        text = f"Refunded {money(refund['amount'], order['currency'])}" + (f": {refund['reason']}" if refund["reason"] else "")
        if order["refunded"] >= order["total"] and not pending and order["status"] != S.CANCELLED:
            was = await move_order(order_id, S.REFUNDED, message=text[:500], actor_id=refund["staff"])
            if was in (S.PAID, S.IN_PRODUCTION):  # refunded before it shipped: nothing leaves the shelf
                await release_stock(order_id)
                await emit(OrderReleased(order_id))
        else:
            await OrderEvent.insert(OrderEvent(order=order_id, from_status=order["status"], to_status=order["status"],
                                               message=text[:500], actor=refund["staff"]))
        if email:
            await tell_member(order_id, "refunded", ref=f"refund:{refund_id}",
                              extra={"amount": refund["amount"], "refund": refund,
                                     "refunded_total": order["refunded"], "total": order["total"]})
        return refund


async def refund_order(staff: CurrentMember, order_id: int, amount: Any, *, reason: str = "",
                       key: str | None = None, minor_units: bool = False) -> dict[str, Any]:
    """Staff refund, full or partial, never above what is left of the charge. `key` makes a
    repeated submit (double click, retried API call) return the first refund instead of a second."""
    require_staff(staff)
    cents = parse_refund_amount(amount, minor_units=minor_units)
    reason = " ".join((reason or "").split())[:300]
    key = "".join(ch for ch in (key or "") if ch.isalnum() or ch in "-_")[:40] or secrets.token_hex(10)
    async with write_transaction():
        refund, created = await reserve_refund(order_id, cents, reason=reason, staff_id=staff.id, key=key)
    if not created:
        return refund
    try:
        return await execute_refund(refund["id"])
    except RefundDelayed:
        return await Refund.select().where(Refund.id == refund["id"]).first()  # pending; the job finishes it


@job_handler("finish_refund")
async def finish_refund_job(payload: dict[str, Any]) -> None:
    """A refund still pending after a while (Stripe unreachable, or a crash after the commit):
    ask Stripe again with the same idempotency key. A refusal marks it failed."""
    try:
        await execute_refund(int(payload["refund_id"]))
    except RefundFailed:
        pass  # recorded as failed; staff see it on the order page
    # RefundDelayed propagates: the job is retried with backoff


# ---- cancellation ---------------------------------------------------------------------------


@dataclass
class CancelResult:
    refund: dict[str, Any] | None = None
    refund_error: str = ""
    restocked: bool = False


async def cancel_order(actor: CurrentMember, order_id: int, *, reason: str = "", as_owner: bool = False) -> CancelResult:
    """Cancel before shipping: the move (once), the stock back (shop orders), the points
    voucher back, and a refund of what is left, all reserved in one transaction; then Stripe.
    A member (`as_owner`) may cancel only their own shop order while it is paid."""
    order = await Order.select(Order.member, Order.kind, Order.status).where(Order.id == order_id).first()
    if order is None:
        raise NotFound(gettext("Order not found"))
    if as_owner:
        if order["member"] != actor.id:
            raise NotFound(gettext("Order not found"))
        if order["kind"] != "shop" or order["status"] != S.PAID:
            raise Conflict(gettext("This order can no longer be cancelled here. Contact us and we'll sort it out."))
        expect: tuple[OrderStatus, ...] = (S.PAID,)
        message = "Cancelled by the customer"
    else:
        require_staff(actor)
        expect = (S.PLACED, S.PAID, S.IN_PRODUCTION)
        message = "Cancelled by staff"
    reason = " ".join((reason or "").split())[:300]
    result = CancelResult()
    refund = None
    async with write_transaction():
        await move_order(order_id, S.CANCELLED, expect=expect, message=f"{message}: {reason}" if reason else message,
                         actor_id=actor.id, strict=True)
        result.restocked = await release_stock(order_id)
        await emit(OrderReleased(order_id))
        current = await Order.select().where(Order.id == order_id).first()
        paid = current["paid_at"] is not None
        due = current["total"] - current["refunded"] if paid else 0
        if due > 0:
            refund, _ = await reserve_refund(order_id, due, reason="Order cancelled", key="cancel",
                                              staff_id=actor.id if actor.is_staff else None)
        await tell_member(order_id, "cancelled", ref=f"{order_id}:cancelled", extra={"refund_due": due, "reason": reason})
    if refund is not None:
        try:
            result.refund = await execute_refund(refund["id"], email=False)
        except RefundFailed as error:
            result.refund_error = error.message
        except RefundDelayed:
            result.refund_error = gettext("Stripe could not be reached; the refund is pending and will be retried "
                                          "automatically in a few minutes.")
    elif not paid:
        await _cancel_open_payments(order_id)
    return result


async def _cancel_open_payments(order_id: int) -> None:
    """An unpaid order's PaymentIntents still waiting for the cardholder must never succeed after
    the cancel (best effort: the order is cancelled either way, and a late payment is refused)."""

    rows = await OrderPayment.select(OrderPayment.payment_intent_id).where(
        (OrderPayment.order == order_id) & OrderPayment.status.is_in(["started", "needs_authentication"])
        & (OrderPayment.payment_intent_id != ""))
    for row in rows:
        try:
            await gateway().cancel_payment(row["payment_intent_id"])
        except Exception as error:  # noqa: BLE001
            log.warning("order %s: could not cancel PaymentIntent %s: %s", order_id, row["payment_intent_id"], error)


# ---- bulk moves for a campaign's pre-orders -------------------------------------------------


@dataclass
class BulkResult:
    moved: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # moved by someone else meanwhile
    wave: int | None = None  # a shipped wave's number on the campaign's delivery timeline


def parse_tracking_lines(text: str) -> dict[str, str]:
    """'CM-1A2B3C4D 00340434161234567890' per line -> {number: tracking}; FormError on bad lines."""
    found: dict[str, str] = {}
    bad = []
    for index, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.replace(";", " ").replace(",", " ").replace("\t", " ").split(None, 1)
        number = parts[0].upper()
        tracking = carriers.clean_tracking_number(parts[1]) if len(parts) == 2 else None
        if tracking is None or number in found:
            bad.append(gettext("line %(num)s", num=index))
            continue
        found[number] = tracking
    if bad:
        raise FormError({"tracking_lines": gettext('Write one "ORDER-NUMBER TRACKING-NUMBER" per line; check %(lines)s.',
                                                   lines=", ".join(bad[:5]))})
    return found


TRACKING_FILE_LIMIT = 2_000_000  # bytes


def tracking_csv(data: bytes) -> str:
    """A warehouse's CSV (or this site's backer report with tracking filled in) as
    "ORDER TRACKING" lines: the columns named order/number and tracking/tracking_number when
    there is a header, else the first two. FormError on a file that is not UTF-8 text."""
    if len(data) > TRACKING_FILE_LIMIT:
        raise FormError({"tracking_file": gettext("The file is too large (at most 2 MB).")})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FormError({"tracking_file": gettext("Upload a CSV file saved as UTF-8 text.")}) from None
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() else csv.excel
    except csv.Error:
        dialect = csv.excel
    rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(cell.strip() for cell in r)]
    if not rows:
        raise FormError({"tracking_file": gettext("The file has no rows.")})
    header = [cell.strip().lower() for cell in rows[0]]
    order_col, tracking_col = 0, 1
    if any("tracking" in cell for cell in header):
        tracking_col = next(i for i, cell in enumerate(header) if "tracking" in cell)
        order_col = next((i for i, cell in enumerate(header) if cell in ("order", "order_number", "number")), 0)
        rows = rows[1:]
    lines = []
    for row in rows:
        order = row[order_col].strip() if len(row) > order_col else ""
        tracking = row[tracking_col].strip() if len(row) > tracking_col else ""
        if tracking:  # a row without one is not in this wave (a backer report lists every backer)
            lines.append(f"{order} {tracking}" if order else tracking)  # no order: reported as a bad line
    return "\n".join(lines)


async def _campaign_orders(campaign_id: int, status: OrderStatus) -> list[dict[str, Any]]:
    return await Order.select(Order.id, Order.number).where(
        (Order.campaign_id == campaign_id) & (Order.kind == "preorder") & (Order.status == status.value)
    ).order_by(Order.id)


async def bulk_in_production(staff: CurrentMember, campaign_id: int) -> BulkResult:
    """Every paid pre-order of the campaign -> in production (each moved exactly once)."""
    require_staff(staff)
    result = BulkResult()
    orders = await _campaign_orders(campaign_id, S.PAID)
    await _bulk_move(orders, S.IN_PRODUCTION, staff, result, lambda _: ({}, "Production started"))
    await campaign_follows_orders(staff, campaign_id=campaign_id)
    return result


async def bulk_ship(staff: CurrentMember, campaign_id: int, *, carrier: Any, tracking_lines: str = "",
                    only_listed: bool = False) -> BulkResult:
    """Ship a wave of the campaign's in-production pre-orders with one carrier: every one, or
    (`only_listed`) only those named in the "ORDER-NUMBER TRACKING" lines. Everything is checked
    before anything moves; then, in one transaction under the campaign's lock, each order moves once
    (tagged with the wave's number, its backer emailed with the tracking) and the wave is posted on
    the campaign's delivery timeline."""
    require_staff(staff)
    found = carriers.find_carrier(carrier)
    errors = {} if found else {"carrier": gettext("Choose the carrier.")}
    try:
        tracking = parse_tracking_lines(tracking_lines)
    except FormError as error:
        errors.update(error.errors)
        tracking = {}
    if only_listed and not tracking and "tracking_lines" not in errors:
        errors["tracking_lines"] = gettext('List the orders of this wave, one "ORDER-NUMBER TRACKING-NUMBER" per line.')
    orders = await _campaign_orders(campaign_id, S.IN_PRODUCTION)
    if not errors:
        unknown = sorted(set(tracking) - {o["number"] for o in orders})
        if unknown:
            errors["tracking_lines"] = (
                gettext("Not in production in this campaign: %(numbers)s and more. Nothing was shipped.",
                        numbers=", ".join(unknown[:5])) if len(unknown) > 5 else
                gettext("Not in production in this campaign: %(numbers)s. Nothing was shipped.",
                        numbers=", ".join(unknown)))
    if errors:
        raise FormError(errors)
    if only_listed:
        orders = [o for o in orders if o["number"] in tracking]

    result = BulkResult()
    async with write_transaction():
        wave = await delivery.next_wave(campaign_id)
        for order in orders:
            number = tracking.get(order["number"], "")
            moved = await _move_and_tell(order["id"], S.SHIPPED, actor_id=staff.id,
                                         message=f"Wave {wave}: {found.name} {number}".strip(),
                                         extra={Order.carrier: found.code, Order.tracking_number: number,
                                                Order.wave: wave})
            (result.moved if moved else result.skipped).append(order["number"])
        if result.moved:
            await delivery.record_wave(campaign_id, wave, len(result.moved), staff_id=staff.id)
            result.wave = wave
    return result


async def _bulk_move(orders: list[dict[str, Any]], to: OrderStatus, staff: CurrentMember, result: BulkResult,
                     values) -> None:  # noqa: ANN001
    for start in range(0, len(orders), BULK_CHUNK):
        async with write_transaction():
            for order in orders[start:start + BULK_CHUNK]:
                extra, message = values(order)
                moved = await _move_and_tell(order["id"], to, actor_id=staff.id, message=message, extra=extra)
                (result.moved if moved else result.skipped).append(order["number"])


async def campaign_follows_orders(staff: CurrentMember, *, campaign_id: int | None = None,
                                  order_id: int | None = None) -> None:
    """Keep the campaign's own status in step with its pre-orders, where the campaign's state
    machine allows it: charging -> in production once every paid order is in production (and no
    pledge is still being charged), in production -> delivered once every order is delivered."""

    if campaign_id is None:
        row = await Order.select(Order.campaign_id, Order.kind).where(Order.id == order_id).first()
        if row is None or row["kind"] != "preorder" or row["campaign_id"] is None:
            return
        campaign_id = row["campaign_id"]
    campaign = await Campaign.select(Campaign.status).where(Campaign.id == campaign_id).first()
    if campaign is None:
        return
    open_pledges = await Pledge.count().where(
        (Pledge.campaign == campaign_id) & Pledge.status.is_in(["charging", "payment_failed"]))
    if open_pledges:
        return  # more orders may still come from pledges being charged or fixed
    statuses = {r["status"] for r in await Order.select(Order.status).where(
        (Order.campaign_id == campaign_id) & (Order.kind == "preorder")).distinct()}
    live = statuses - {S.CANCELLED.value, S.REFUNDED.value}
    try:
        if campaign["status"] == "charging" and live and S.PAID.value not in live and S.PLACED.value not in live:
            await campaigns.mark_production(staff, campaign_id, campaigns.CampaignStatus.IN_PRODUCTION)
            campaign["status"] = "in_production"
        if campaign["status"] == "in_production" and live == {S.DELIVERED.value}:
            await campaigns.mark_production(staff, campaign_id, campaigns.CampaignStatus.DELIVERED)
    except Conflict as error:  # the campaign moved meanwhile: nothing to follow
        log.info("campaign %s does not follow its orders: %s", campaign_id, error.message)


# ---- the delivery address of a pre-order ----------------------------------------------------

ADDRESS_EDITABLE = (S.PAID, S.IN_PRODUCTION)


async def set_delivery_address(member: CurrentMember, order_id: int, data: dict[str, Any]) -> dict[str, str]:
    """A pre-order is paid at the campaign's deadline without an address: the backer gives it
    (or changes it) on the order page until it ships. Field errors come back as FormError."""
    order = await Order.select(Order.member, Order.kind, Order.status, Order.ship_to).where(Order.id == order_id).first()
    if order is None or order["member"] != member.id:
        raise NotFound(gettext("Order not found"))
    if order["kind"] != "preorder" or order["status"] not in ADDRESS_EDITABLE:
        raise Conflict(gettext("The delivery address can no longer change: the order is on its way or closed."))
    address = clean_address(data)
    async with write_transaction():
        moved = await Order.update({Order.ship_to: json.dumps(address), Order.updated_at: utcnow()}).where(
            (Order.id == order_id) & Order.status.is_in([s.value for s in ADDRESS_EDITABLE])).returning(Order.status)
        if not moved:
            raise Conflict(gettext("The delivery address can no longer change: the order has just shipped."))
        await OrderEvent.insert(OrderEvent(order=order_id, from_status=moved[0]["status"], to_status=moved[0]["status"],
                                           message="Delivery address saved", actor=member.id))
    return address


