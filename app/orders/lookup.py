"""Reading orders: the member's history and status page ("where is my order?"), the staff
list with filters, and the warehouse CSV. Access is decided here: a member sees only their own
orders (anything else is "not found"), staff see every order."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from app.accounts.addresses import COUNTRIES
from app.accounts.service import CurrentMember
from app.accounts.tables import Member
from app.campaigns.tables import Campaign, DeliveryUpdate
from app.db import as_aware, dict_rows, is_sqlite
from app.errors import NotFound
from app.i18n import N_, gettext
from app.orders import carriers
from app.orders.service import TIMELINE, OrderStatus, label
from app.orders.tables import Order, OrderEvent, OrderLine, Refund
from app.web.templating import date as format_date

S = OrderStatus
MEMBER_PAGE_SIZE = 20
STAFF_PAGE_SIZE = 50
SHIP_TO_FIELDS = ("name", "line1", "line2", "postal_code", "city", "country", "phone")


def ship_to_of(order: dict[str, Any]) -> dict[str, str]:
    value = order.get("ship_to") or {}
    if isinstance(value, str):
        try:
            value = json.loads(value or "{}")
        except ValueError:
            value = {}
    return {k: str(v) for k, v in value.items() if v not in (None, "")} if isinstance(value, dict) else {}


def line_text(line: dict[str, Any]) -> str:
    return f"{line['quantity']} x {line['title']}" + (f" ({line['variant']})" if line["variant"] else "")


async def _lines_by_order(order_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    by_order: dict[int, list[dict[str, Any]]] = {i: [] for i in order_ids}
    if order_ids:
        for line in await OrderLine.select().where(OrderLine.order.is_in(order_ids)).order_by(OrderLine.id):
            by_order[line["order"]].append(line)
    return by_order


async def _campaign_titles(campaign_ids: set[int]) -> dict[int, dict[str, Any]]:
    if not campaign_ids:
        return {}
    rows = await Campaign.select(Campaign.id, Campaign.idea, Campaign.idea.title, Campaign.estimated_delivery,
                                 Campaign.status, Campaign.delivery_posts).where(Campaign.id.is_in(list(campaign_ids)))
    return {r["id"]: r for r in rows}


# ---- one order ------------------------------------------------------------------------------

HEADLINES = {  # the other statuses' headline is their label
    S.PLACED: N_("Waiting for your payment"),
    S.PAID: N_("Paid: we're getting it ready"),
    S.SHIPPED: N_("On its way"),
}
# An order's events are stored in English (the audit trail, written by orders, checkout and
# settlement); the ones the code writes are translated where they are shown.
EVENT_TEXTS = frozenset((
    N_("Checkout"), N_("Payment received"), N_("Paid with a voucher"), N_("Pledge charged"),
    N_("Replaced by a newer checkout"), N_("Not paid in time; the items were released"),
    N_("The card form could not be prepared."), N_("Cancelled by the customer"), N_("Cancelled by staff"),
    N_("Production started"), N_("Delivery address saved"), N_("Tracking removed"), N_("Order cancelled"),
))
EVENT_PATTERNS = (
    (re.compile(r"Tracking: (?P<details>.+)", re.S), N_("Tracking: %(details)s")),
    (re.compile(r"Wave (?P<wave>\d+): (?P<details>.+)", re.S), N_("Shipping wave %(wave)s: %(details)s")),
    (re.compile(r"Refund of (?P<amount>.+?) refused by Stripe: (?P<error>.*)", re.S),
     N_("Refund of %(amount)s refused by Stripe: %(error)s")),
    (re.compile(r"Refunded (?P<amount>[^:]+): (?P<reason>.*)", re.S), N_("Refunded %(amount)s: %(reason)s")),
    (re.compile(r"Refunded (?P<amount>[^:]+)", re.S), N_("Refunded %(amount)s")),
    (re.compile(r"Cancelled by the customer: (?P<reason>.*)", re.S), N_("Cancelled by the customer: %(reason)s")),
    (re.compile(r"Cancelled by staff: (?P<reason>.*)", re.S), N_("Cancelled by staff: %(reason)s")),
)


def known_text(text: str) -> str:
    """A stored text the code wrote (e.g. the refund reason "Order cancelled"), translated; any
    other text (a reason staff typed) as it is."""
    if text == "Pre-order":  # the noun; "Pre-order" alone is the campaign page's button elsewhere
        return gettext("pre-order").capitalize()
    return gettext(text) if text in EVENT_TEXTS else text


def event_text(message: str) -> str:
    """An order event's message in the current language, where the code wrote it."""
    if not message or message in EVENT_TEXTS or message == "Pre-order":
        return known_text(message or "")
    for pattern, template in EVENT_PATTERNS:
        match = pattern.fullmatch(message)
        if match:
            return gettext(template, **{k: known_text(v) for k, v in match.groupdict().items()})
    return message


def _timeline(order: dict[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps a member sees: done ones with their date, the current one marked, upcoming ones
    greyed; a cancelled or refunded order ends with that step instead of the upcoming ones."""
    steps = [s for s in TIMELINE if s is not S.IN_PRODUCTION or order["kind"] == "preorder"]
    reached: dict[str, dt.datetime] = {}
    for event in events:
        reached.setdefault(event["to_status"], event["created_at"])
    reached.setdefault(S.PLACED.value, order["created_at"])
    if order["paid_at"]:
        reached.setdefault(S.PAID.value, order["paid_at"])
    status = OrderStatus(order["status"])
    if status in steps:
        current = steps.index(status)
    else:  # cancelled / refunded: as far as it got
        current = max((i for i, s in enumerate(steps) if s.value in reached), default=0)
    out = []
    for index, step in enumerate(steps):
        if status not in steps and index > current:
            break
        state = "done" if index < current or (index == current and status not in steps) else (
            "current" if index == current else "upcoming")
        when = reached.get(step.value) if state != "upcoming" else None
        out.append({"status": step.value, "label": label(step), "state": state, "at": when})
    if status not in steps:
        out.append({"status": status.value, "label": label(status), "state": "stopped",
                    "at": reached.get(status.value) or order["cancelled_at"] or order["updated_at"]})
    return out


# Where an order's lines lead: the shop registers its product pages (`link_products_with`), so
# orders does not import the shop. (product ids, the pre-order's campaign id) -> (url per product
# id, the url of the campaign's product, or "").
ProductLinks = Callable[[list[int], int | None], Awaitable[tuple[dict[int, str], str]]]
_product_links: list[ProductLinks] = []


def link_products_with(links: ProductLinks) -> None:
    _product_links[:] = [links]


async def _attach_links(lines: list[dict[str, Any]], campaign: dict[str, Any] | None) -> None:
    ids = list({line["product_id"] for line in lines if line["product_id"]})
    urls, published = {}, ""
    if _product_links and (ids or campaign):
        urls, published = await _product_links[0](ids, campaign["id"] if campaign else None)
    for line in lines:
        if line["product_id"] in urls:
            line["url"] = urls[line["product_id"]]
        elif published:
            line["url"] = published
        elif campaign:
            line["url"] = f"/ideas/{campaign['idea']}"
        else:
            line["url"] = ""


def _country_name(code: str) -> str:
    return gettext(COUNTRIES[code]) if code in COUNTRIES else code


async def order_detail(viewer: CurrentMember | None, number: str, *, staff_view: bool = False) -> dict[str, Any]:
    """Everything the order page shows. The owner or staff only; anyone else gets NotFound."""
    row = await Order.select(*Order.all_columns(), Order.member.display_name, Order.member.email).where(
        Order.number == (number or "").strip().upper()[:20]).first()
    if row is None or viewer is None or (row["member"] != viewer.id and not viewer.is_staff):
        raise NotFound(gettext("Order not found"))
    order_id = row["id"]
    events = await OrderEvent.select().where(OrderEvent.order == order_id).order_by(OrderEvent.id)
    lines = (await _lines_by_order([order_id]))[order_id]
    refunds = await Refund.select(*Refund.all_columns(), Refund.staff.display_name).where(
        Refund.order == order_id).order_by(Refund.id)
    campaign = (await _campaign_titles({row["campaign_id"]})).get(row["campaign_id"]) if row["campaign_id"] else None
    actors = {}
    if staff_view:
        ids = {e["actor"] for e in events if e["actor"]}
        if ids:
            actors = {m["id"]: m["display_name"] for m in
                      await Member.select(Member.id, Member.display_name).where(Member.id.is_in(list(ids)))}
    await _attach_links(lines, campaign)
    status = OrderStatus(row["status"])
    tracking = carriers.tracking_url(row["carrier"], row["tracking_number"])
    estimated = campaign["estimated_delivery"] if campaign else None
    subline = ""
    month = format_date(estimated, "MMMM y") if estimated else ""
    if status is S.PAID and row["kind"] == "preorder":
        subline = (gettext("Production starts soon. Estimated delivery: %(month)s.", month=month) if estimated
                   else gettext("Production starts soon."))
    elif status is S.PAID:
        subline = gettext("We're packing your order and will email you the tracking number when it ships.")
    elif status is S.IN_PRODUCTION:
        subline = (gettext("Estimated delivery: %(month)s.", month=month) if estimated
                   else gettext("We'll email you when it ships."))
    elif status is S.SHIPPED:
        subline = (gettext("Shipped with %(carrier)s.", carrier=carriers.display_name(row["carrier"])) if row["carrier"]
                   else gettext("Shipped."))
    elif status is S.PLACED:
        subline = gettext("We haven't received the payment yet.")
    succeeded = [r for r in refunds if r["status"] == "succeeded"]
    return {
        **row,
        "status_label": label(row["status"]),
        "headline": gettext(HEADLINES[status]) if status in HEADLINES else label(status),
        "subline": subline,
        "lines": lines,
        "events": [{**e, "from_label": label(e["from_status"]) if e["from_status"] else "",
                    "to_label": label(e["to_status"]), "actor_name": actors.get(e["actor"], ""),
                    "text": event_text(e["message"])} for e in events],
        "refunds": [{**r, "reason_text": known_text(r["reason"])}
                    for r in refunds if staff_view or r["status"] != "failed"],
        "refunded_succeeded": sum(r["amount"] for r in succeeded),
        "refundable": max(0, row["total"] - row["refunded"]) if row["paid_at"] else 0,
        "timeline": _timeline(row, events),
        "carrier_name": carriers.display_name(row["carrier"]),
        "tracking_url": tracking,
        "campaign": campaign,
        "estimated_delivery": estimated,
        "estimated_month": month,  # "November 2026" / "november 2026"
        "estimated_month_short": format_date(estimated, "MMM y") if estimated else "",
        "ship_to": ship_to_of(row),
        "country_name": _country_name(ship_to_of(row).get("country", "")),
        "can_cancel": row["member"] == viewer.id and row["kind"] == "shop" and status is S.PAID,
        "is_owner": row["member"] == viewer.id,
        "can_edit_address": (row["member"] == viewer.id and row["kind"] == "preorder"
                             and status in (S.PAID, S.IN_PRODUCTION)),
        "queue": await delivery_queue(row) if campaign else None,
        "slip": await latest_slip(campaign) if campaign else None,
    }


QUEUED = (S.PAID.value, S.IN_PRODUCTION.value)
QUEUE_SQL = ("SELECT COUNT(*) AS waiting, COALESCE(SUM(CASE WHEN id < {} THEN 1 ELSE 0 END), 0) AS ahead "
             "FROM shop_order WHERE campaign_id = {} AND kind = 'preorder' AND status IN ('paid', 'in_production')")


async def delivery_queue(order: dict[str, Any]) -> dict[str, int] | None:
    """A waiting pre-order's place in its campaign's delivery queue: first paid, first shipped
    (order of the orders, which follows the pledges' charges), among those not shipped yet."""
    if order["kind"] != "preorder" or order["status"] not in QUEUED:
        return None
    rows = await dict_rows(QUEUE_SQL, order["id"], order["campaign_id"])
    return {"place": int(rows[0]["ahead"]) + 1, "waiting": int(rows[0]["waiting"])}


async def latest_slip(campaign: dict[str, Any]) -> dict[str, Any] | None:
    """The campaign's latest change of its estimated delivery, with the reason (none without a query
    when its timeline is empty)."""
    if not campaign.get("delivery_posts"):
        return None
    return await DeliveryUpdate.select(DeliveryUpdate.old_date, DeliveryUpdate.new_date, DeliveryUpdate.body,
                                       DeliveryUpdate.created_at).where(
        (DeliveryUpdate.campaign == campaign["id"]) & (DeliveryUpdate.kind == "date")).order_by(
        DeliveryUpdate.id, ascending=False).first()


# ---- a member's orders ----------------------------------------------------------------------


def _summaries(rows: list[dict[str, Any]], lines: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        mine = lines.get(row["id"], [])
        out.append({**row, "status_label": label(row["status"]), "lines": mine,
                    "item_count": sum(line["quantity"] for line in mine),
                    "summary": summary_text(mine),
                    "tracking_url": carriers.tracking_url(row["carrier"], row["tracking_number"])})
    return out


def summary_text(lines: list[dict[str, Any]]) -> str:
    """'2 x Mug; 1 x Poster', and how many more lines there are."""
    text = "; ".join(line_text(line) for line in lines[:2])
    return gettext("%(items)s and %(count)s more", items=text, count=len(lines) - 2) if len(lines) > 2 else text


def _visible_to_member():
    # A checkout abandoned before any payment (cancelled, never paid) is noise, not history.
    return Order.paid_at.is_not_null() | (Order.status == S.PLACED.value)


async def member_orders(member_id: int, page: int = 1, per_page: int = MEMBER_PAGE_SIZE) -> dict[str, Any]:
    where = (Order.member == member_id) & _visible_to_member()
    total = await Order.count().where(where)
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    rows = await Order.select().where(where).order_by(Order.id, ascending=False).limit(per_page).offset(
        (page - 1) * per_page)
    items = _summaries(rows, await _lines_by_order([r["id"] for r in rows]))
    return {"items": items, "page": page, "pages": pages, "total": total}


async def member_orders_before(member_id: int, before_id: int | None, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """Cursor pagination for the API: newest first, `before_id` from the previous page."""
    query = Order.select().where((Order.member == member_id) & _visible_to_member())
    if before_id is not None:
        query = query.where(Order.id < before_id)
    rows = await query.order_by(Order.id, ascending=False).limit(limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = _summaries(rows, await _lines_by_order([r["id"] for r in rows]))
    return items, (rows[-1]["id"] if more and rows else None)


# ---- staff list and export ------------------------------------------------------------------


@dataclass
class OrderFilters:
    status: str = ""
    kind: str = ""
    campaign: int | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    q: str = ""

    def params(self) -> dict[str, str]:
        """The filters as query parameters (for links that keep them)."""
        return {k: (v.isoformat() if isinstance(v, dt.date) else str(v))
                for k, v in asdict(self).items() if v not in (None, "")}


def parse_filters(params: dict[str, str]) -> tuple[OrderFilters, dict[str, str]]:
    """Filters from the query string; a bad value is ignored and explained next to its field."""
    errors: dict[str, str] = {}
    filters = OrderFilters()
    status = (params.get("status") or "").strip()
    if status:
        if status in {s.value for s in OrderStatus}:
            filters.status = status
        else:
            errors["status"] = gettext("Unknown status.")
    kind = (params.get("kind") or "").strip()
    if kind in ("shop", "preorder"):
        filters.kind = kind
    elif kind:
        errors["kind"] = gettext("Choose shop or pre-order.")
    campaign = (params.get("campaign") or "").strip()
    if campaign:
        if campaign.isdecimal() and len(campaign) < 10:
            filters.campaign = int(campaign)
        else:
            errors["campaign"] = gettext("Unknown campaign.")
    for name in ("date_from", "date_to"):
        value = (params.get(name) or "").strip()
        if value:
            try:
                setattr(filters, name, dt.date.fromisoformat(value))
            except ValueError:
                errors[name] = gettext("Use a date like 2026-11-30.")
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        errors["date_to"] = gettext("The end date is before the start date.")
        filters.date_to = None
    filters.q = " ".join((params.get("q") or "").split())[:100]
    return filters, errors


def _where(filters: OrderFilters):
    where = Order.id > 0
    if filters.status:
        where &= Order.status == filters.status
    if filters.kind:
        where &= Order.kind == filters.kind
    if filters.campaign is not None:
        where &= Order.campaign_id == filters.campaign
    if filters.date_from:
        where &= Order.created_at >= dt.datetime.combine(filters.date_from, dt.time(), tzinfo=dt.UTC)
    if filters.date_to:
        where &= Order.created_at < dt.datetime.combine(filters.date_to + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    if filters.q:
        like = "%" + filters.q.replace("\\", "").replace("%", "").replace("_", "") + "%"
        columns = (Order.number, Order.member.email, Order.member.display_name)
        # SQLite's LIKE ignores ASCII case already (and has no ILIKE)
        matches = [column.like(like) if is_sqlite() else column.ilike(like) for column in columns]
        where &= matches[0] | matches[1] | matches[2]
    return where


STAFF_COLUMNS = (Order.member.display_name, Order.member.email)


async def staff_orders(filters: OrderFilters, page: int = 1, per_page: int = STAFF_PAGE_SIZE) -> dict[str, Any]:
    where = _where(filters)
    total = await Order.count().where(where)
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    rows = await Order.select(*Order.all_columns(), *STAFF_COLUMNS).where(where).order_by(
        Order.id, ascending=False).limit(per_page).offset((page - 1) * per_page)
    items = _summaries(rows, await _lines_by_order([r["id"] for r in rows]))
    titles = await _campaign_titles({r["campaign_id"] for r in rows if r["campaign_id"]})
    for item in items:
        item["campaign"] = titles.get(item["campaign_id"])
    return {"items": items, "page": page, "pages": pages, "total": total}


async def campaigns_with_orders() -> list[dict[str, Any]]:
    """Campaigns that have pre-orders, with how many orders wait in each status."""
    rows = await Order.select(Order.campaign_id, Order.status).where(
        (Order.kind == "preorder") & Order.campaign_id.is_not_null())
    counts: dict[int, dict[str, int]] = {}
    for row in rows:
        bucket = counts.setdefault(row["campaign_id"], {})
        bucket[row["status"]] = bucket.get(row["status"], 0) + 1
    titles = await _campaign_titles(set(counts))
    out = [{"id": cid, "title": titles[cid]["idea.title"] if cid in titles else gettext("Campaign %(id)s", id=cid),
            "estimated_delivery": titles[cid]["estimated_delivery"] if cid in titles else None, "counts": c}
           for cid, c in counts.items()]
    return sorted(out, key=lambda c: c["title"].lower())


CSV_HEADER = ("number", "date", "status", "kind", "member", "email", *(f"ship_{f}" for f in SHIP_TO_FIELDS),
              "lines", "total", "currency", "carrier", "tracking_number")


def _cell(value: Any) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def export_csv(filters: OrderFilters, batch: int = 500) -> AsyncIterator[str]:
    """The filtered orders as CSV text, streamed in batches (oldest first, as a warehouse picks)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    yield buffer.getvalue()
    after = 0
    where = _where(filters)
    while True:
        rows = await Order.select(*Order.all_columns(), *STAFF_COLUMNS).where(where & (Order.id > after)).order_by(
            Order.id).limit(batch)
        if not rows:
            return
        lines = await _lines_by_order([r["id"] for r in rows])
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            ship_to = ship_to_of(row)
            created = as_aware(row["created_at"])
            writer.writerow([_cell(v) for v in (
                row["number"], created.date().isoformat() if created else "", row["status"], row["kind"],
                row["member.display_name"], row["member.email"], *(ship_to.get(f, "") for f in SHIP_TO_FIELDS),
                "; ".join(line_text(line) for line in lines[row["id"]]), f"{row['total'] / 100:.2f}", row["currency"],
                carriers.carrier_name(row["carrier"]), row["tracking_number"])])
        yield buffer.getvalue()
        after = rows[-1]["id"]


# ---- the backer report: one row per pledge of a campaign, for the warehouse ------------------

BACKER_HEADER = ("pledge", "backer", "email", "variant", "quantity", "pledge_amount", "pledge_status", "order",
                 "order_status", "order_total", "currency", *(f"ship_{f}" for f in SHIP_TO_FIELDS), "carrier",
                 "tracking_number", "wave")
BACKER_SQL = ("SELECT p.id, m.display_name, m.email, v.name AS variant, p.quantity, p.amount, p.status, "
              "o.number, o.status AS order_status, o.total, o.currency, o.ship_to, o.carrier, o.tracking_number, "
              "o.wave, c.currency AS campaign_currency FROM pledge p JOIN member m ON m.id = p.member "
              "JOIN campaign_variant v ON v.id = p.variant JOIN campaign c ON c.id = p.campaign "
              "LEFT JOIN shop_order o ON o.pledge_id = p.id "
              "WHERE p.campaign = {} AND p.id > {} AND p.status <> 'pending' ORDER BY p.id LIMIT {}")


async def backer_report_csv(campaign_id: int, batch: int = 500) -> AsyncIterator[str]:
    """Every pledge past the card step, with its backer, variant, amounts, the pre-order's address,
    carrier, tracking number and wave: streamed in batches, oldest pledge first."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(BACKER_HEADER)
    yield buffer.getvalue()
    after = 0
    while True:
        rows = await dict_rows(BACKER_SQL, campaign_id, after, batch)
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            ship_to = ship_to_of(row)
            writer.writerow([_cell(v) for v in (
                row["id"], row["display_name"], row["email"], row["variant"], row["quantity"],
                f"{row['amount'] / 100:.2f}", row["status"], row["number"] or "", row["order_status"] or "",
                f"{row['total'] / 100:.2f}" if row["total"] is not None else "",
                row["currency"] or row["campaign_currency"], *(ship_to.get(f, "") for f in SHIP_TO_FIELDS),
                carriers.carrier_name(row["carrier"]) if row["carrier"] else "", row["tracking_number"] or "",
                row["wave"] or "")])
        yield buffer.getvalue()
        after = rows[-1]["id"]


async def campaign_exists(campaign_id: int) -> None:
    if not await Campaign.exists().where(Campaign.id == campaign_id):
        raise NotFound(gettext("Campaign not found"))
