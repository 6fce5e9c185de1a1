"""The right of withdrawal (ångerrätt): 14 days after delivery, from an order's lines or from a
pledge before it is charged, with a receipt emailed at once (DESIGN section 2).

A pre-order of a crowd-voted design is a standard good, not made to one buyer's specification,
so backers and buyers may withdraw until 14 days after delivery (before delivery, at any time).
Lines made to the buyer's own specification (`OrderLine.made_to_order`, copied from the
variant at checkout) are exempt, and the page says so.

What makes it exact:
- One transaction under the order's lock: the withdrawal row, its lines (`order_line` is
  unique: a line is withdrawn from once, however many requests arrive together), the order
  event, the refund's reservation (`Refund`, key `withdrawal-<id>`, `Order.refunded` raised
  so it can never exceed the charge) and the receipt email (once per withdrawal).
- Stripe is called after the commit with the refund's idempotency key; a refusal marks the
  refund failed for staff, and an unreachable Stripe leaves it to the finish_refund job.
- Units go back to stock once: at once for an order that has not shipped, when staff note the
  parcel back for one that has (`WithdrawalLine.restocked`, a conditional update).
- What is refunded: the lines' share of what was paid (a voucher discount shared pro rata);
  the whole order's withdrawal refunds everything left, delivery included.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any

from piccolo.query import Select

from app import i18n
from app.accounts.service import CurrentMember
from app.campaigns import live
from app.campaigns import service as campaigns
from app.campaigns.tables import Pledge
from app.db import UNIQUE_VIOLATIONS, as_aware, is_sqlite, utcnow, write_transaction
from app.errors import Conflict, FormError, NotFound
from app.events import emit
from app.i18n import N_, gettext
from app.mail.service import queue_email
from app.orders import fulfilment
from app.orders.events import OrderReleased
from app.orders.service import OrderStatus, give_back_lines, move_order, release_stock
from app.orders.tables import Order, OrderEvent, OrderLine, Refund, Withdrawal, WithdrawalLine
from app.settings import get_settings
from app.web.templating import date as format_date
from app.web.templating import money

log = logging.getLogger(__name__)
S = OrderStatus
WITHDRAWAL_DAYS = 14
REFUND_DAYS = 14
# An order in these states has been paid for and may be withdrawn from (within the period).
WITHDRAWABLE = (S.PAID, S.IN_PRODUCTION, S.SHIPPED, S.DELIVERED)
SUBJECT = N_("Receipt: your withdrawal %(reference)s")


def new_reference() -> str:
    return f"W-{secrets.token_hex(4).upper()}"


def period_ends(order: dict[str, Any]) -> dt.datetime | None:
    """When the right of withdrawal ends: 14 days after delivery (None: not delivered yet, open)."""
    delivered = order.get("delivered_at")
    return as_aware(delivered) + dt.timedelta(days=WITHDRAWAL_DAYS) if delivered else None


def may_withdraw(order: dict[str, Any], now: dt.datetime | None = None) -> bool:
    """Whether the order page offers "Withdraw from this order" (the form then says per line)."""
    ends = period_ends(order)
    return order["status"] in {s.value for s in WITHDRAWABLE} and (ends is None or (now or utcnow()) <= ends)


def _normal_email(value: str) -> str:
    return (value or "").strip().lower()


async def _order_row(number: str, *, lock: bool = False) -> dict[str, Any] | None:
    query: Select = Order.select(*Order.all_columns(), Order.member.email, Order.member.display_name,
                                 Order.member.locale)
    if lock and not is_sqlite():
        query = query.lock_rows(of=(Order,))
    return await query.where(Order.number == (number or "").strip().upper()[:20]).first()


async def find_order(number: str, *, member: CurrentMember | None = None, email: str = "") -> dict[str, Any]:
    """The order a withdrawal is asked for: the signed-in owner's, or (a guest) the one whose
    number and email both match. Anything else is the same "not found", so the form tells no one
    which orders exist."""
    row = await _order_row(number)
    if row is not None:
        if member is not None and row["member"] == member.id:
            return await describe(row)
        domain = _normal_email(email).rsplit("@", 1)[-1]
        if (member is None and email and domain != "invalid" and not domain.endswith(".invalid")  # an erased member's
                and _normal_email(email) == _normal_email(row["member.email"])):
            return await describe(row)
    raise NotFound(gettext("We found no order with that number and email address. Check both and try again."))


async def describe(order: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """What the withdrawal form shows about an order: each line with whether it can still be
    withdrawn from (and why not), the period's end, and whether anything is left to pick."""
    now = now or utcnow()
    lines = await OrderLine.select().where(OrderLine.order == order["id"]).order_by(OrderLine.id)
    withdrawn = {r["order_line"]: r for r in await WithdrawalLine.select(
        WithdrawalLine.order_line, WithdrawalLine.withdrawal.reference).where(
        WithdrawalLine.order_line.is_in([line["id"] for line in lines] or [0]))}
    ends = period_ends(order)
    problem = ""
    status = OrderStatus(order["status"])
    if status is S.PLACED:
        problem = gettext("This order isn't paid yet, so there is nothing to withdraw from.")
    elif status is S.CANCELLED:
        problem = gettext("This order is cancelled; nothing was kept or charged.")
    elif status is S.REFUNDED:
        problem = gettext("This order is already refunded in full.")
    elif ends is not None and now > ends:
        problem = gettext("The 14-day withdrawal period for this order ended on %(date)s.", date=_day(ends))
    shown = []
    for line in lines:
        taken = withdrawn.get(line["id"])
        reason = ""
        if taken:
            reason = gettext("Withdrawn (%(reference)s)", reference=taken["withdrawal.reference"])
        elif line["made_to_order"]:
            reason = gettext("Made to your specification: no right of withdrawal")
        shown.append({**line, "withdrawn": bool(taken), "exempt": bool(line["made_to_order"]),
                      "reason": reason, "open": not problem and not reason})
    if not problem and not any(line["open"] for line in shown):
        problem = gettext("Nothing is left to withdraw from in this order.")
    return {"order": order, "lines": shown, "period_ends": ends, "problem": problem,
            "shipped": status in (S.SHIPPED, S.DELIVERED)}


def _day(value: dt.datetime) -> str:
    return format_date(value, "long")


def parse_lines(raw: list[str], described: dict[str, Any]) -> list[dict[str, Any]]:
    """The lines the person ticked, each one that may still be withdrawn from."""
    open_lines = {str(line["id"]): line for line in described["lines"] if line["open"]}
    picked = list(dict.fromkeys(value.strip() for value in raw))
    for line in described["lines"]:
        if line["withdrawn"] and str(line["id"]) in picked:  # a second submit, or two at once
            what = f"{line['title']} ({line['variant']})" if line["variant"] else line["title"]
            raise Conflict(gettext("You already withdrew from %(title)s.", title=what))
    chosen = [open_lines[value] for value in picked if value in open_lines]
    if not chosen:
        raise FormError({"lines": gettext("Tick at least one item to withdraw from.")})
    return chosen


def refund_for(order: dict[str, Any], chosen: list[dict[str, Any]], *, whole: bool) -> int:
    """What is owed back for these lines: their share of what was paid for goods (a voucher
    discount shared pro rata), or, when they are all that is left, everything not yet refunded."""
    if order["paid_at"] is None:
        return 0
    left = max(0, order["total"] - order["refunded"])
    if whole:
        return left
    if order["subtotal"] <= 0:
        return 0
    goods_paid = max(0, order["subtotal"] - order["discount"])
    share = sum(line["total"] for line in chosen) * goods_paid // order["subtotal"]
    return min(share, left)


async def withdraw_from_order(number: str, line_ids: list[str], *, member: CurrentMember | None = None,
                              email: str = "", now: dt.datetime | None = None) -> dict[str, Any]:
    """Record the withdrawal (once per line), reserve its refund and email the receipt, then ask
    Stripe for the refund. Returns the withdrawal with `refund` (the Refund row, if any)."""
    found = await find_order(number, member=member, email=email)
    order_id = found["order"]["id"]
    async with write_transaction():
        order = await _order_row(found["order"]["number"], lock=True)
        described = await describe(order, now)
        if described["problem"]:
            raise Conflict(described["problem"])
        chosen = parse_lines(line_ids, described)
        # The whole contract (everything bought, perhaps over two withdrawals) is withdrawn from:
        # what is left of the payment comes back, delivery included.
        remaining = [line for line in described["lines"] if not line["withdrawn"] and not line["exempt"]]
        whole = len(chosen) == len(remaining) and not any(line["exempt"] for line in described["lines"])
        amount = refund_for(order, chosen, whole=whole)
        # Goods already sent: the seller may wait for them before refunding (a setting).
        waits = bool(amount) and described["shipped"] and get_settings().withdrawal_refund_after_return
        created = utcnow()
        rows = await Withdrawal.insert(Withdrawal(
            reference=new_reference(), member=order["member"], email=order["member.email"], order=order_id,
            amount=amount, currency=order["currency"], status="received",
            refund_due_by=created + dt.timedelta(days=REFUND_DAYS) if amount else None, refund_waits=waits,
        )).returning(*Withdrawal.all_columns())
        withdrawal = rows[0]
        shares = _split(amount, chosen)
        await WithdrawalLine.insert(*[WithdrawalLine(withdrawal=withdrawal["id"], order_line=line["id"],
                                                     quantity=line["quantity"], amount=share)
                                      for line, share in zip(chosen, shares, strict=True)])
        what = ", ".join(f"{line['quantity']} × {line['title']}" + (f" ({line['variant']})" if line["variant"] else "")
                         for line in chosen)
        await OrderEvent.insert(OrderEvent(order=order_id, from_status=order["status"], to_status=order["status"],
                                           message=f"Withdrawal {withdrawal['reference']}: {what}"[:500]))
        refund = None
        if amount and not waits:
            refund = await _reserve_refund(withdrawal, staff_id=None)
            withdrawal["refund_id"] = refund["id"]
        if not described["shipped"]:  # the units never left the shelf: they are for sale again now
            await _restock(withdrawal["id"], order)
        if whole:
            # The whole contract is undone: a points voucher spent on it goes back (once), and an
            # order with nothing to refund (a voucher paid it all) closes now; one with a refund
            # becomes "refunded" when Stripe confirms it.
            await emit(OrderReleased(order_id))
            if not amount:
                to = S.REFUNDED if described["shipped"] else S.CANCELLED
                await move_order(order_id, to, message=f"Withdrawal {withdrawal['reference']}")
                if not described["shipped"]:
                    await release_stock(order_id)  # marks it released; its lines are back already
        await _email_receipt(withdrawal, order, chosen=chosen, shipped=described["shipped"])
    if refund is not None:
        withdrawal["refund"] = await _send_refund(refund["id"])
    return withdrawal


async def _reserve_refund(withdrawal: dict[str, Any], *, staff_id: int | None) -> dict[str, Any]:
    """The withdrawal's refund, reserved once (key `withdrawal-<id>`) under the order's lock."""
    refund, _ = await fulfilment.reserve_refund(withdrawal["order"], withdrawal["amount"],
                                               reason=f"Withdrawal {withdrawal['reference']}", staff_id=staff_id,
                                               key=f"withdrawal-{withdrawal['id']}")
    await Withdrawal.update({Withdrawal.refund_id: refund["id"]}).where(Withdrawal.id == withdrawal["id"])
    return refund


def _split(amount: int, chosen: list[dict[str, Any]]) -> list[int]:
    """The refund shared over the lines by their totals, in whole minor units that add up."""
    total = sum(line["total"] for line in chosen)
    if not total:
        return [0 for _ in chosen]
    shares = [amount * line["total"] // total for line in chosen]
    shares[-1] += amount - sum(shares)
    return shares


async def _send_refund(refund_id: int) -> dict[str, Any]:
    try:
        return await fulfilment.execute_refund(refund_id)
    except fulfilment.RefundFailed as error:
        log.warning("withdrawal refund %s refused: %s", refund_id, error.message)
    except fulfilment.RefundDelayed:
        pass  # pending: the finish_refund job asks Stripe again with the same key
    return await Refund.select().where(Refund.id == refund_id).first()


async def _restock(withdrawal_id: int, order: dict[str, Any]) -> int:
    """The withdrawn lines' units back in stock, once (a conditional update per withdrawal)."""
    marked = await WithdrawalLine.update({WithdrawalLine.restocked: True}).where(
        (WithdrawalLine.withdrawal == withdrawal_id) & WithdrawalLine.restocked.eq(False)
    ).returning(WithdrawalLine.order_line)
    if not marked or order["stock_released"]:
        return 0
    lines = await OrderLine.select(OrderLine.variant_id, OrderLine.product_id, OrderLine.quantity).where(
        OrderLine.id.is_in([row["order_line"] for row in marked]) & OrderLine.variant_id.is_not_null())
    await give_back_lines(order["kind"], lines, order["paid_at"] is not None)
    return sum(line["quantity"] for line in lines)


async def _email_receipt(withdrawal: dict[str, Any], order: dict[str, Any] | None, *, chosen: list[dict[str, Any]],
                         shipped: bool = False, pledge: dict[str, Any] | None = None) -> None:
    settings = get_settings()
    locale = (order or pledge or {}).get("member.locale") or i18n.get_locale()
    await queue_email(
        kind="withdrawal_receipt", subject_ref=f"withdrawal:{withdrawal['id']}", to=withdrawal["email"],
        subject=SUBJECT, subject_args={"reference": withdrawal["reference"]}, locale=locale,
        template="orders/withdrawal",
        context={"withdrawal": withdrawal, "reference": withdrawal["reference"], "order": order, "lines": chosen,
                 "pledge": pledge, "shipped": shipped, "amount": withdrawal["amount"],
                 "currency": withdrawal["currency"], "received_at": withdrawal["created_at"],
                 "refund_due_by": withdrawal["refund_due_by"], "seller": settings.seller_legal_name,
                 "returns_address": settings.returns_address,
                 "name": (order or pledge or {}).get("member.display_name", ""),
                 "link": f"{settings.base_url}/orders/{order['number']}" if order else f"{settings.base_url}/me/pledges"},
    )


# ---- pledges --------------------------------------------------------------------------------


async def withdraw_from_pledge(member: CurrentMember, pledge_id: int) -> dict[str, Any]:
    """Withdraw from a pledge before its charge: the pledge is cancelled (its units back, the
    campaign's totals down, never charged) and the receipt emailed, once. The cancel locks the
    campaign as every pledge writer does (no lock on the pledge first: that order would deadlock
    with the deadline's close); two requests at once meet at the unique `pledge_id`."""
    try:
        return await _withdraw_from_pledge(member, pledge_id)
    except UNIQUE_VIOLATIONS:
        existing = await Withdrawal.select().where(Withdrawal.pledge_id == pledge_id).first()
        if existing is None:
            raise
        return existing


async def _withdraw_from_pledge(member: CurrentMember, pledge_id: int) -> dict[str, Any]:
    async with write_transaction():
        query = Pledge.select(Pledge.id, Pledge.member, Pledge.status, Pledge.campaign, Pledge.amount, Pledge.quantity,
                              Pledge.variant.name, Pledge.campaign.idea.title, Pledge.campaign.currency,
                              Pledge.member.email, Pledge.member.display_name, Pledge.member.locale)
        pledge = await query.where(Pledge.id == pledge_id).first()
        if pledge is None or pledge["member"] != member.id:
            raise NotFound(gettext("Pledge not found"))
        existing = await Withdrawal.select().where(Withdrawal.pledge_id == pledge_id).first()
        if existing:
            return existing
        if pledge["status"] not in ("pending", "active"):
            raise Conflict(gettext("This pledge can no longer be withdrawn from here: once it is charged, withdraw "
                                   "from its pre-order instead."))
        reference = new_reference()
        await campaigns.cancel_pledge(member, pledge_id, quiet=True, message=f"Withdrawal {reference}")
        rows = await Withdrawal.insert(Withdrawal(
            reference=reference, member=member.id, email=pledge["member.email"], pledge_id=pledge_id,
            amount=0, currency=pledge["campaign.currency"], status="cancelled",
        )).returning(*Withdrawal.all_columns())
        withdrawal = rows[0]
        await _email_receipt(withdrawal, None, chosen=[], pledge=pledge)
    # The cancel inside told open pages before this transaction committed: tell them again now.
    await live.publish(pledge["campaign"])
    return withdrawal


async def open_pledges(member: CurrentMember) -> list[dict[str, Any]]:
    """The member's pledges that may still be withdrawn from (their campaign is still open)."""
    return [p for p in await campaigns.my_pledges(member) if p["editable"]]


async def open_pledge(member: CurrentMember, pledge_id: int) -> dict[str, Any] | None:
    """One of the member's pledges if it may still be withdrawn from; None if no longer; anyone
    else's (or no such pledge) is NotFound."""
    await campaigns.get_pledge(member, pledge_id)
    return next((p for p in await open_pledges(member) if p["id"] == pledge_id), None)


# ---- staff ----------------------------------------------------------------------------------


async def of_order(order_id: int) -> list[dict[str, Any]]:
    """An order's withdrawals with their lines and refund, for the staff and member order pages."""
    rows = await Withdrawal.select().where(Withdrawal.order == order_id).order_by(Withdrawal.id)
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    lines = await WithdrawalLine.select(*WithdrawalLine.all_columns(), WithdrawalLine.order_line).where(
        WithdrawalLine.withdrawal.is_in(ids))
    titles = {r["id"]: r for r in await OrderLine.select(OrderLine.id, OrderLine.title, OrderLine.variant).where(
        OrderLine.id.is_in([line["order_line"] for line in lines] or [0]))}
    refunds = {r["id"]: r for r in await Refund.select().where(
        Refund.id.is_in([r["refund_id"] for r in rows if r["refund_id"]] or [0]))}
    out = []
    for row in rows:
        mine = [{**line, **{k: v for k, v in titles.get(line["order_line"], {}).items() if k != "id"}}
                for line in lines if line["withdrawal"] == row["id"]]
        out.append({**row, "lines": mine, "refund": refunds.get(row["refund_id"]),
                    "restocked": bool(mine) and all(line["restocked"] for line in mine)})
    return out


async def lines_of(withdrawal_id: int) -> list[dict[str, Any]]:
    return await WithdrawalLine.select().where(WithdrawalLine.withdrawal == withdrawal_id).order_by(WithdrawalLine.id)


async def goods_returned(staff: CurrentMember, withdrawal_id: int) -> int:
    """Staff note a withdrawn order's parcel back: its units return to stock, once, and a refund
    that waited for the goods is reserved (once) and sent. Returns the units put back (0 when
    they already were)."""
    fulfilment.require_staff(staff)
    refund = None
    async with write_transaction():
        row = await Withdrawal.select(Withdrawal.order).where(Withdrawal.id == withdrawal_id).first()
        if row is None or row["order"] is None:
            raise NotFound(gettext("Withdrawal not found"))
        order = await _order_row_by_id(row["order"])  # the order's lock: one staff click at a time
        row = await Withdrawal.select().where(Withdrawal.id == withdrawal_id).first()
        units = await _restock(withdrawal_id, order)
        marked = await Withdrawal.update({Withdrawal.goods_returned_at: utcnow()}).where(
            (Withdrawal.id == withdrawal_id) & Withdrawal.goods_returned_at.is_null()).returning(Withdrawal.id)
        if marked:
            await OrderEvent.insert(OrderEvent(order=row["order"], from_status=order["status"], to_status=order["status"],
                                               message=f"Goods returned for withdrawal {row['reference']}",
                                               actor=staff.id))
        if row["refund_waits"] and row["amount"] and row["refund_id"] is None:
            refund = await _reserve_refund(row, staff_id=staff.id)
    if refund is not None:
        await _send_refund(refund["id"])
    return units


async def retry_refund(staff: CurrentMember, withdrawal_id: int) -> dict[str, Any]:
    """Staff ask Stripe again for a withdrawal's refund that was refused (a fixed card, a payment
    that can be refunded now): a new Refund with its own key, reserved under the order's lock
    only while the last one stands refused, so two clicks make one. Returns the new refund."""
    fulfilment.require_staff(staff)
    async with write_transaction():
        row = await Withdrawal.select(Withdrawal.order).where(Withdrawal.id == withdrawal_id).first()
        if row is None or row["order"] is None:
            raise NotFound(gettext("Withdrawal not found"))
        await _order_row_by_id(row["order"])  # the order's lock
        row = await Withdrawal.select().where(Withdrawal.id == withdrawal_id).first()
        last = await Refund.select().where(Refund.id == row["refund_id"]).first() if row["refund_id"] else None
        if last is None or last["status"] != "failed":
            raise Conflict(gettext("This withdrawal's refund was not refused: there is nothing to retry."))
        tries = await Refund.count().where(Refund.idempotency_key.like(f"order-{row['order']}-refund-withdrawal-{withdrawal_id}%"))
        refund, _ = await fulfilment.reserve_refund(row["order"], row["amount"], reason=f"Withdrawal {row['reference']}",
                                                   staff_id=staff.id, key=f"withdrawal-{withdrawal_id}-{tries + 1}")
        await Withdrawal.update({Withdrawal.refund_id: refund["id"]}).where(Withdrawal.id == withdrawal_id)
    return await _send_refund(refund["id"])


async def _order_row_by_id(order_id: int) -> dict[str, Any]:
    query = Order.select()
    if not is_sqlite():
        query = query.lock_rows()
    return await query.where(Order.id == order_id).first()


def refund_text(withdrawal: dict[str, Any]) -> str:
    """How the withdrawal's money stands, in words for the member and staff pages."""
    refund = withdrawal.get("refund")
    amount = money(withdrawal["amount"], withdrawal["currency"])
    if not withdrawal["amount"]:
        return gettext("Nothing was charged, so nothing is owed back.")
    if refund and refund["status"] == "succeeded":
        return gettext("%(amount)s refunded to your card.", amount=amount)
    if withdrawal.get("refund_waits") and not refund:
        return gettext("%(amount)s to be refunded as soon as the items are back with us, by %(date)s at the latest.",
                       amount=amount, date=_day(withdrawal["refund_due_by"]))
    if refund and refund["status"] == "failed":
        return gettext("Your bank refused the refund of %(amount)s; we'll pay it another way by %(date)s and "
                       "contact you.", amount=amount, date=_day(withdrawal["refund_due_by"]))
    return gettext("%(amount)s to be refunded by %(date)s.", amount=amount, date=_day(withdrawal["refund_due_by"]))
