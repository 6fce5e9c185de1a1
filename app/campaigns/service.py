"""Campaigns and pledges: greenlight, scheduled moves, pledging with saved cards, limits that
are never oversold, and the all-or-nothing close (DESIGN sections 2 and 3).

Settlement (charging) lives in app/payments/settlement.py.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from babel.dates import format_datetime
from piccolo.columns.combination import WhereRaw
from piccolo.query import OrderByRaw

from app.accounts.service import CurrentMember
from app.accounts.tables import Member
from app.campaigns import live, stretch
from app.campaigns.events import (
    BackerNotice,
    CampaignFunded,
    CampaignGoalReached,
    CampaignMoved,
    IdeaGreenlit,
    PledgeConfirmed,
)
from app.campaigns.money import parse_money
from app.campaigns.tables import BackedTogether, Campaign, CampaignEvent, CampaignVariant, Pledge, PledgeEvent
from app.db import as_aware, dict_rows, is_sqlite, raw, select_head, utcnow, write_transaction
from app.errors import Conflict, Forbidden, FormError, NotFound
from app.events import emit
from app.i18n import N_, babel_locale, get_locale, gettext, ngettext, use_locale
from app.ideas.service import IdeaStatus, move_idea
from app.ideas.tables import Idea, Vote
from app.jobs.service import cancel as cancel_job
from app.jobs.service import enqueue
from app.mail.service import queue_email
from app.payments import cards
from app.settings import get_settings

log = logging.getLogger("crowdmade.campaigns")


class CampaignStatus(StrEnum):
    SCHEDULED = "scheduled"
    EARLY_ACCESS = "early_access"
    LIVE = "live"
    FUNDED = "funded"
    FAILED = "failed"
    CHARGING = "charging"
    IN_PRODUCTION = "in_production"
    DELIVERED = "delivered"


C = CampaignStatus
CAMPAIGN_MOVES: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    C.SCHEDULED: frozenset({C.EARLY_ACCESS, C.LIVE}),
    C.EARLY_ACCESS: frozenset({C.LIVE, C.FUNDED, C.FAILED}),
    C.LIVE: frozenset({C.FUNDED, C.FAILED}),
    C.FUNDED: frozenset({C.CHARGING}),
    C.CHARGING: frozenset({C.IN_PRODUCTION}),
    C.IN_PRODUCTION: frozenset({C.DELIVERED}),
    C.FAILED: frozenset(),
    C.DELIVERED: frozenset(),
}
OPEN_STATUSES = (C.EARLY_ACCESS, C.LIVE)
CAMPAIGN_LABELS = {  # N_: translated where shown (gettext(label))
    C.SCHEDULED: N_("Coming soon"), C.EARLY_ACCESS: N_("Early access"), C.LIVE: N_("Live"), C.FUNDED: N_("Funded"),
    C.FAILED: N_("Not funded"), C.CHARGING: N_("Funded: charging cards"), C.IN_PRODUCTION: N_("In production"),
    C.DELIVERED: N_("Delivered"),
}


class PledgeStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    CANCELLED = "cancelled"
    RELEASED = "released"
    CHARGING = "charging"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"
    DROPPED = "dropped"


P = PledgeStatus
PLEDGE_MOVES: dict[PledgeStatus, frozenset[PledgeStatus]] = {
    P.PENDING: frozenset({P.ACTIVE, P.CANCELLED}),
    P.ACTIVE: frozenset({P.CANCELLED, P.RELEASED, P.CHARGING}),
    P.CHARGING: frozenset({P.PAID, P.PAYMENT_FAILED}),
    P.PAYMENT_FAILED: frozenset({P.PAID, P.DROPPED}),
    P.CANCELLED: frozenset(),
    P.RELEASED: frozenset(),
    P.PAID: frozenset(),
    P.DROPPED: frozenset(),
}
PLEDGE_LABELS = {  # N_: translated where shown (gettext(label))
    P.PENDING: N_("Waiting for your card"), P.ACTIVE: N_("Active"), P.CANCELLED: N_("Cancelled"), P.RELEASED: N_("Released"),
    P.CHARGING: N_("Being charged"), P.PAID: N_("Paid"), P.PAYMENT_FAILED: N_("Payment failed: action needed"),
    P.DROPPED: N_("Dropped"),
}
CONSENT_VERSION = "2026-11-v1"
MAX_QUANTITY = 10
PENDING_MINUTES = 30
EARLY_ACCESS_LEVEL = 5_000  # Insider


def consent_text(amount: str, deadline: str) -> str:
    """The consent the backer gives, in the language they read it in (stored with the pledge)."""
    return gettext("I pre-order for %(amount)s. My card is saved now and charged only if the campaign is funded, "
                   "at its deadline (%(deadline)s), for this amount. If it is not funded, nothing is charged.",
                   amount=amount, deadline=deadline)


def _utc_time(value: dt.datetime, pattern: str = "dd MMM yyyy HH:mm") -> str:
    """A deadline as the backer reads it ("01 Dec 2026 18:00 UTC"), month names in their language."""

    return format_datetime(as_aware(value), pattern, tzinfo=dt.UTC, locale=babel_locale(get_locale())) + " UTC"


class IllegalMove(Conflict):
    pass


# ---- state machines -------------------------------------------------------------------------


async def move_campaign(campaign_id: int, to: CampaignStatus, *, actor_id: int | None = None, message: str = "",
                        expect: tuple[CampaignStatus, ...] | None = None, extra: dict | None = None) -> CampaignStatus:
    """One campaign move, exactly once: a conditional update on the current status."""
    async with write_transaction():
        row = await Campaign.select(Campaign.status).where(Campaign.id == campaign_id).first()
        if row is None:
            raise NotFound(gettext("Campaign not found"))
        current = CampaignStatus(row["status"])
        if to not in CAMPAIGN_MOVES[current] or (expect and current not in expect):
            raise IllegalMove(gettext("A campaign that is %(current)s cannot become %(target)s.",
                                      current=label(current).lower(), target=label(to).lower()))
        values = {Campaign.status: to.value, **(extra or {})}
        moved = await Campaign.update(values).where(
            (Campaign.id == campaign_id) & (Campaign.status == current.value)
        ).returning(Campaign.id)
        if not moved:
            raise IllegalMove(gettext("The campaign changed at the same time; reload and try again."))
        await CampaignEvent.insert(CampaignEvent(campaign=campaign_id, actor=actor_id, from_status=current.value,
                                                 to_status=to.value, message=message))
        await emit(CampaignMoved(campaign_id, current.value, to.value))
        return current


async def move_pledge(pledge_id: int, to: PledgeStatus, *, expect: tuple[PledgeStatus, ...] | None = None,
                      message: str = "", extra: dict | None = None, data: dict | None = None) -> PledgeStatus | None:
    """One pledge move as a conditional update; returns the old status, or None when the pledge
    was not in an allowed state (someone else moved it first)."""

    allowed_from = [s.value for s, targets in PLEDGE_MOVES.items() if to in targets and (not expect or s in expect)]
    async with write_transaction():
        row = await Pledge.select(Pledge.status).where(Pledge.id == pledge_id).first()
        if row is None:
            raise NotFound(gettext("Pledge not found"))
        if row["status"] not in allowed_from:
            return None
        moved = await Pledge.update({Pledge.status: to.value, Pledge.updated_at: utcnow(), **(extra or {})}).where(
            (Pledge.id == pledge_id) & (Pledge.status == row["status"])
        ).returning(Pledge.id)
        if not moved:
            return None
        await PledgeEvent.insert(PledgeEvent(pledge=pledge_id, from_status=row["status"], to_status=to.value,
                                             message=message, data=json.dumps(data or {})))
        return PledgeStatus(row["status"])


# ---- greenlight -----------------------------------------------------------------------------


@dataclass
class VariantTerms:
    name: str
    limit_units: int | None = None


@dataclass
class GreenlightTerms:
    price: str = ""  # major units as typed, e.g. "499" or "499.50"
    early_bird_price: str = ""
    early_bird_units: int | str = 0
    goal_units: int | str = 0
    duration_days: int | str | None = 30
    ends_at: dt.datetime | None = None
    starts_at: dt.datetime | None = None
    estimated_delivery: dt.date | str | None = None
    variants: list[VariantTerms] = field(default_factory=list)
    vat_rate: int | str | None = None  # percent; None: the site's default (VAT_RATES' first)


def _int(value: int | str | None, default: int | None = None) -> int | None:
    if value is None or str(value).strip() == "":
        return default
    number = int(str(value).strip())
    if abs(number) > 1_000_000_000:
        raise ValueError
    return number


def validate_terms(terms: GreenlightTerms, now: dt.datetime) -> dict[str, Any]:
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    try:
        out["price"] = parse_money(terms.price)
        if not out["price"] or out["price"] < 100:
            errors["price"] = gettext("Set a price of at least 1.00.")
    except ValueError:
        errors["price"] = gettext("Write the price as a number, e.g. 499 or 499.50.")
    try:
        out["early_bird_price"] = parse_money(terms.early_bird_price)
    except ValueError:
        errors["early_bird_price"] = gettext("Write the early-bird price as a number.")
    try:
        out["early_bird_units"] = _int(terms.early_bird_units, 0)
        if out["early_bird_units"] < 0:
            raise ValueError
    except ValueError:
        errors["early_bird_units"] = gettext("Use a whole number of units (0 for none).")
    if not errors.get("early_bird_price") and not errors.get("early_bird_units"):
        if out["early_bird_price"] and not out["early_bird_units"]:
            errors["early_bird_units"] = gettext("How many units sell at the early-bird price?")
        if out["early_bird_units"] and not out["early_bird_price"]:
            errors["early_bird_price"] = gettext("Set the early-bird price for those units.")
        if out["early_bird_price"] and out.get("price") and out["early_bird_price"] >= out["price"]:
            errors["early_bird_price"] = gettext("The early-bird price must be lower than the price.")
    try:
        out["goal_units"] = _int(terms.goal_units)
        if not out["goal_units"] or out["goal_units"] < 1 or out["goal_units"] > 1_000_000:
            raise ValueError
    except ValueError:
        errors["goal_units"] = gettext("Set the goal in units (the production minimum), at least 1.")
    starts = as_aware(terms.starts_at) or now
    out["starts_at"] = starts
    if terms.ends_at is not None:
        ends = as_aware(terms.ends_at)
        days = (ends - starts).total_seconds() / 86400
        if not 1 / 24 <= days <= 60:
            errors["ends_at"] = gettext("The campaign must end between 1 hour and 60 days after it starts.")
        out["ends_at"] = ends
    else:
        try:
            days = _int(terms.duration_days, 30)
            if not 1 <= days <= 60:
                raise ValueError
            out["ends_at"] = starts + dt.timedelta(days=days)
        except ValueError:
            errors["duration_days"] = gettext("Choose a duration between 1 and 60 days.")
    delivery = terms.estimated_delivery
    if isinstance(delivery, str):
        try:
            delivery = dt.date.fromisoformat(delivery.strip()) if delivery.strip() else None
        except ValueError:
            delivery = None
            errors["estimated_delivery"] = gettext("Use a date like 2027-03-01.")
    if delivery is None and "estimated_delivery" not in errors:
        errors["estimated_delivery"] = gettext("Set the estimated delivery date.")
    elif delivery is not None and "ends_at" in out and delivery <= out["ends_at"].date():
        errors["estimated_delivery"] = gettext("Delivery must be after the campaign ends.")
    out["estimated_delivery"] = delivery
    try:
        out["vat_rate"] = get_settings().vat_rate(terms.vat_rate)
    except ValueError:
        errors["vat_rate"] = gettext("Choose a VAT rate: %(rates)s.",
                                     rates=", ".join(f"{r} %" for r in get_settings().vat_rate_choices()))
    variants = [v for v in terms.variants if v.name.strip()]
    if not variants:
        variants = [VariantTerms("One size")]
    names = [v.name.strip().lower() for v in variants]
    if len(set(names)) != len(names):
        errors["variants"] = gettext("Each variant needs a different name.")
    if len(variants) > 20:
        errors["variants"] = gettext("Use at most 20 variants.")
    for v in variants:
        if len(v.name.strip()) > 60:
            errors["variants"] = gettext("Keep variant names under 60 characters.")
        if v.limit_units is not None and not 1 <= v.limit_units <= 1_000_000:
            errors["variants"] = gettext("A limited variant needs at least 1 unit (leave the limit empty for unlimited).")
    out["variants"] = variants
    if errors:
        raise FormError(errors, gettext("Please fix the campaign terms."))
    return out


async def greenlight(staff: CurrentMember, idea_id: int, terms: GreenlightTerms, *, now: dt.datetime | None = None,
                     early_access_hours: int | None = None) -> int:
    if not staff.is_staff:
        raise Forbidden(gettext("Staff only."))
    now = now or utcnow()
    values = validate_terms(terms, now)
    settings = get_settings()
    hours = settings.early_access_hours if early_access_hours is None else early_access_hours
    early_access_ends = values["starts_at"] + dt.timedelta(hours=hours)
    if early_access_ends > values["ends_at"]:
        early_access_ends = values["starts_at"]
    async with write_transaction():
        idea = await Idea.select(Idea.status, Idea.author, Idea.title).where(Idea.id == idea_id).first()
        if idea is None:
            raise NotFound(gettext("Idea not found"))
        if idea["status"] == IdeaStatus.VOTING:
            await move_idea(idea_id, IdeaStatus.GREENLIT, actor_id=staff.id, message=N_("Greenlit for a pre-order campaign"))
        elif idea["status"] != IdeaStatus.GREENLIT:
            raise Conflict(gettext("Only ideas in voting (or greenlit) can get a campaign."))
        await move_idea(idea_id, IdeaStatus.CAMPAIGN, actor_id=staff.id, message=N_("Pre-order campaign created"))
        rows = await Campaign.insert(Campaign(
            idea=idea_id, status=C.SCHEDULED.value, currency=settings.currency, price=values["price"],
            early_bird_price=values["early_bird_price"], early_bird_units=values["early_bird_units"] or 0,
            goal_units=values["goal_units"], starts_at=values["starts_at"], early_access_ends_at=early_access_ends,
            ends_at=values["ends_at"], estimated_delivery=values["estimated_delivery"], created_by=staff.id,
            vat_rate=values["vat_rate"],
        )).returning(Campaign.id)
        campaign_id = rows[0]["id"]
        for position, variant in enumerate(values["variants"]):
            await CampaignVariant.insert(CampaignVariant(campaign=campaign_id, name=variant.name.strip(),
                                                         position=position, limit_units=variant.limit_units))
        await CampaignEvent.insert(CampaignEvent(campaign=campaign_id, actor=staff.id, from_status="",
                                                 to_status=C.SCHEDULED.value, message="Greenlit"))
        await emit(IdeaGreenlit(idea_id, idea["author"], campaign_id))
        for when in sorted({values["starts_at"], early_access_ends, values["ends_at"]}):
            await enqueue("campaign_tick", {"campaign_id": campaign_id}, run_at=when,
                          unique_key=f"campaign_tick:{campaign_id}:{int(when.timestamp())}")
        await _email_launch(campaign_id, idea_id, idea["title"], idea["author"])
    await advance_campaign(campaign_id, now=now)
    return campaign_id


async def _email_launch(campaign_id: int, idea_id: int, title: str, author_id: int) -> None:
    link = f"{get_settings().base_url}/ideas/{idea_id}"
    voters = await Vote.select(Vote.member.email, Vote.member.display_name).where(Vote.idea == idea_id)
    author = await Member.select(Member.email, Member.display_name).where(Member.id == author_id).first()
    for person, is_author in [(author, True)] + [(v, False) for v in voters]:
        email = person.get("email") or person.get("member.email")
        name = person.get("display_name") or person.get("member.display_name")
        await queue_email(kind="campaign_launched", subject_ref=f"campaign:{campaign_id}", to=email,
                          subject=N_("Pre-orders are opening: %(title)s"), subject_args={"title": title},
                          template="campaign_launched",
                          context={"name": name, "title": title, "link": link, "is_author": is_author})


async def advance_campaign(campaign_id: int, *, now: dt.datetime | None = None) -> None:
    """The scheduled moves (safe to run any number of times): scheduled -> early access ->
    live -> closed at the deadline."""
    now = now or utcnow()
    row = await Campaign.select().where(Campaign.id == campaign_id).first()
    if row is None:
        return
    status = CampaignStatus(row["status"])
    if status is C.SCHEDULED and now >= as_aware(row["starts_at"]):
        target = C.EARLY_ACCESS if now < as_aware(row["early_access_ends_at"]) else C.LIVE
        try:
            await move_campaign(campaign_id, target, expect=(C.SCHEDULED,), message="Scheduled start")
        except IllegalMove:
            pass
        status = target
    if status is C.EARLY_ACCESS and now >= as_aware(row["early_access_ends_at"]):
        try:
            await move_campaign(campaign_id, C.LIVE, expect=(C.EARLY_ACCESS,), message="Early access ended")
        except IllegalMove:
            pass
        status = C.LIVE
    if status in OPEN_STATUSES and now >= as_aware(row["ends_at"]):
        await close_campaign(campaign_id, now=now)
    await live.publish(campaign_id)


# ---- reading --------------------------------------------------------------------------------


def _left(variant: dict[str, Any]) -> int | None:
    return None if variant["limit_units"] is None else max(0, variant["limit_units"] - variant["reserved"])


async def variants_of(campaign_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The variants of several campaigns in one query, by campaign, in position order."""
    found: dict[int, list[dict[str, Any]]] = {campaign_id: [] for campaign_id in campaign_ids}
    if not campaign_ids:
        return found
    for variant in await CampaignVariant.select().where(CampaignVariant.campaign.is_in(list(found))).order_by(
            CampaignVariant.position).order_by(CampaignVariant.id):
        variant["left"] = _left(variant)
        found[variant["campaign"]].append(variant)
    return found


async def get_campaign(campaign_id: int | None = None, *, idea_id: int | None = None) -> dict[str, Any]:
    query = Campaign.select(*Campaign.all_columns(), Campaign.idea.title, Campaign.idea.summary)
    query = query.where(Campaign.id == campaign_id) if campaign_id is not None else query.where(Campaign.idea == idea_id)
    row = await query.first()
    if row is None:
        raise NotFound(gettext("Campaign not found"))
    row["variants"] = await CampaignVariant.select().where(CampaignVariant.campaign == row["id"]).order_by(
        CampaignVariant.position)
    for variant in row["variants"]:
        variant["left"] = _left(variant)
    decorate(row)
    row["stretch_goals"] = await stretch.goals_of(row)
    return row


def decorate(row: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    status = CampaignStatus(row["status"])
    row["status_label"] = gettext(CAMPAIGN_LABELS[status])
    row["is_open"] = status in OPEN_STATUSES and as_aware(row["ends_at"]) > now
    row["percent"] = min(999, row["pledged_units"] * 100 // max(1, row["goal_units"]))
    row["goal_reached"] = row["pledged_units"] >= row["goal_units"]
    row["early_bird_left"] = max(0, (row["early_bird_units"] or 0) - (row["early_bird_taken"] or 0))
    row["seconds_left"] = max(0, int((as_aware(row["ends_at"]) - now).total_seconds()))
    row["current_price"] = row["early_bird_price"] if row["early_bird_left"] and row["early_bird_price"] else row["price"]
    return row


async def list_campaigns(sort: str = "ending", limit: int = 24, statuses: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    if sort not in ("ending", "funded", "almost", "new"):
        raise FormError({"sort": gettext("Sort by ending, funded, almost or new.")})

    states = list(statuses or (C.EARLY_ACCESS.value, C.LIVE.value))
    # Sorted and limited in SQL (the same order `decorate` would give): a page of 4 must not
    # load and decorate every open campaign. percent = min(999, units * 100 // goal).
    percent = ('CASE WHEN "campaign"."pledged_units" * 100 / "campaign"."goal_units" > 999 THEN 999 '
               'ELSE "campaign"."pledged_units" * 100 / "campaign"."goal_units" END')
    order = {  # (SQL, ascending)
        "ending": (('"campaign"."ends_at"', True), ('"campaign"."id"', True)),
        "funded": ((percent, False), ('"campaign"."id"', True)),
        "almost": (('CASE WHEN "campaign"."pledged_units" >= "campaign"."goal_units" THEN 1 ELSE 0 END', True),
                   (percent, False), ('"campaign"."id"', True)),
        "new": (('"campaign"."id"', False),),
    }[sort]
    query = Campaign.select(*Campaign.all_columns(), Campaign.idea.title, Campaign.idea.summary).where(
        Campaign.status.is_in(states))
    for clause, ascending in order:
        query = query.order_by(OrderByRaw(clause), ascending=ascending)
    return [decorate(r) for r in await query.limit(limit)]


# ---- pledging -------------------------------------------------------------------------------


def price_for(campaign: dict[str, Any], quantity: int, early_bird_free: int) -> tuple[int, int]:
    """(amount, early-bird units) for `quantity` when `early_bird_free` early-bird units remain."""
    early = min(quantity, early_bird_free) if campaign["early_bird_price"] else 0
    return early * (campaign["early_bird_price"] or 0) + (quantity - early) * campaign["price"], early


async def _lock_campaign(campaign_id: int, *, share: bool = False) -> dict[str, Any]:
    """The campaign row, locked for this transaction (PostgreSQL; SQLite's IMMEDIATE
    transaction already runs one writer at a time).

    `share=True` takes FOR KEY SHARE: many pledges may start and confirm at once, while anything
    that takes the full lock (closing, settling, editing the campaign) waits for them and they
    wait for it, so a pledge never counts on a closed campaign. The counters they change are
    single UPDATEs, which queue on the row only from the UPDATE to COMMIT: keep those last."""
    # Plain SQL with the head compiled once (app.db.select_head): every pledge start and confirm
    # reads the campaign this way, and building the select cost more than running it.
    head = select_head("campaigns.campaign", lambda: Campaign.select())
    lock = "" if is_sqlite() else (" FOR KEY SHARE" if share else " FOR UPDATE")
    rows = await dict_rows(f'{head} WHERE "campaign"."id" = {{}}{lock}', campaign_id)
    if not rows:
        raise NotFound(gettext("Campaign not found"))
    return rows[0]


async def _lock_member_pledges(campaign_id: int, member_id: int) -> None:
    """One pledge start at a time per member and campaign (the "already backing" check below
    must see the other one), without locking anything that other members' pledges need."""
    if not is_sqlite():
        await raw("SELECT pg_advisory_xact_lock({}, {})", campaign_id, member_id)


def _check_can_pledge(member: CurrentMember, campaign: dict[str, Any], now: dt.datetime) -> None:
    status = CampaignStatus(campaign["status"])
    if not member.verified:
        raise Forbidden(gettext("Verify your email address to pledge."))
    if status is C.SCHEDULED:
        raise Conflict(gettext("Pre-orders have not opened yet."))
    if status not in OPEN_STATUSES or as_aware(campaign["ends_at"]) <= now:
        raise Conflict(gettext("This campaign has ended."))
    if status is C.EARLY_ACCESS and member.points_lifetime < EARLY_ACCESS_LEVEL:
        opens = _utc_time(campaign["early_access_ends_at"], "dd MMM HH:mm")
        raise Forbidden(gettext("Early access is for Insiders and above; everyone can pledge from %(opens)s.", opens=opens))


def _check_quantity(quantity: Any) -> int:
    try:
        quantity = int(quantity)
    except (TypeError, ValueError):
        raise FormError({"quantity": gettext("Choose how many units you want.")}) from None
    if not 1 <= quantity <= MAX_QUANTITY:
        raise FormError({"quantity": gettext("Choose between 1 and %(max)s units.", max=MAX_QUANTITY)})
    return quantity


async def _reserve(variant_id: int, campaign_id: int, quantity: int) -> None:
    rows = await CampaignVariant.update({CampaignVariant.reserved: CampaignVariant.reserved + quantity}).where(
        (CampaignVariant.id == variant_id) & (CampaignVariant.campaign == campaign_id)
        & WhereRaw('("limit_units" IS NULL OR "reserved" + {} <= "limit_units")', quantity)
    ).returning(CampaignVariant.reserved)
    if not rows:
        variant = await CampaignVariant.select().where(
            (CampaignVariant.id == variant_id) & (CampaignVariant.campaign == campaign_id)).first()
        if variant is None:
            raise FormError({"variant": gettext("Choose one of the campaign's variants.")})
        left = _left(variant)
        raise Conflict(gettext("Sold out: %(variant)s has no units left.", variant=variant["name"]) if not left else
                       gettext("Only %(left)s of %(variant)s left; choose fewer units.", left=left, variant=variant["name"]))


async def _release(variant_id: int, quantity: int) -> None:
    await CampaignVariant.update({CampaignVariant.reserved: CampaignVariant.reserved - quantity}).where(
        CampaignVariant.id == variant_id)


@dataclass(frozen=True)
class PledgeStart:
    pledge_id: int
    amount: int
    client_secret: str
    publishable_key: str


async def start_pledge(member: CurrentMember, campaign_id: int, *, variant_id: Any, quantity: Any,
                       consent: bool, now: dt.datetime | None = None) -> PledgeStart:
    """A pending pledge holding its units, plus a SetupIntent for the card."""
    now = now or utcnow()
    quantity = _check_quantity(quantity)
    try:
        variant_id = int(variant_id)
    except (TypeError, ValueError):
        raise FormError({"variant": gettext("Choose a variant.")}) from None
    if not consent:
        raise FormError({"consent": gettext("Please confirm that you agree to be charged if the campaign is funded.")})
    try:
        return await _start_pledge(member, campaign_id, variant_id, quantity, now, exclusive=False)
    except _EarlyBirdsLeft:  # who gets the early-bird units is decided one pledge at a time
        return await _start_pledge(member, campaign_id, variant_id, quantity, now, exclusive=True)


class _EarlyBirdsLeft(Exception):
    pass


async def _start_pledge(member: CurrentMember, campaign_id: int, variant_id: int, quantity: int, now: dt.datetime,
                        *, exclusive: bool) -> PledgeStart:
    async with write_transaction():
        campaign = await _lock_campaign(campaign_id, share=not exclusive)
        free = (campaign["early_bird_units"] or 0) - (campaign["early_bird_taken"] or 0)
        if free > 0 and not exclusive:
            raise _EarlyBirdsLeft  # rolls back; a shared lock is never upgraded (two would deadlock)
        _check_can_pledge(member, campaign, now)
        await _lock_member_pledges(campaign_id, member.id)
        existing = await Pledge.select(Pledge.id).where(
            (Pledge.campaign == campaign_id) & (Pledge.member == member.id)
            & Pledge.status.is_in([P.PENDING.value, P.ACTIVE.value])).first()
        if existing:
            raise Conflict(gettext("You already back this campaign: change your pledge under My pledges."))
        amount, early = price_for(campaign, quantity, max(0, free))
        if early:
            await Campaign.update({Campaign.early_bird_taken: Campaign.early_bird_taken + early}).where(
                Campaign.id == campaign_id)
        deadline = _utc_time(campaign["ends_at"])
        rows = await Pledge.insert(Pledge(
            campaign=campaign_id, member=member.id, variant=variant_id, quantity=quantity, early_bird_units=early,
            amount=amount, status=P.PENDING.value, consent_version=CONSENT_VERSION,
            consent_text=consent_text(f"{amount / 100:.2f} {campaign['currency']}", deadline), consent_at=now,
        )).returning(Pledge.id)
        pledge_id = rows[0]["id"]
        await PledgeEvent.insert(PledgeEvent(pledge=pledge_id, from_status="", to_status=P.PENDING.value))
        await enqueue("expire_pending_pledge", {"pledge_id": pledge_id}, run_at=now + dt.timedelta(minutes=PENDING_MINUTES),
                      unique_key=f"expire_pending_pledge:{pledge_id}")
        # Last: the variant's row is shared by every pledge for it and stays locked to COMMIT.
        await _reserve(variant_id, campaign_id, quantity)
    try:
        setup = await cards.start_card_setup(member, metadata={"pledge_id": str(pledge_id)})
    except Exception:
        await _end_pending(pledge_id, P.CANCELLED, "The card form could not be prepared.")
        raise
    await Pledge.update({Pledge.setup_intent_id: setup.id}).where(Pledge.id == pledge_id)
    return PledgeStart(pledge_id, amount, setup.client_secret, cards.publishable_key())


async def _owned_pledge(member: CurrentMember, pledge_id: int) -> dict[str, Any]:
    head = select_head("campaigns.pledge", lambda: Pledge.select())
    rows = await dict_rows(f'{head} WHERE "pledge"."id" = {{}}', pledge_id)
    row = rows[0] if rows else None
    if row is None or row["member"] != member.id:
        raise NotFound(gettext("Pledge not found"))  # never reveal another member's pledge
    return row


async def confirm_pledge(member: CurrentMember, pledge_id: int, *, setup_intent_id: str | None = None) -> dict[str, Any]:
    """Check the SetupIntent with Stripe, store the card, activate the pledge (idempotent)."""

    pledge = await _owned_pledge(member, pledge_id)
    if pledge["status"] == P.ACTIVE:
        return pledge
    if pledge["status"] != P.PENDING:
        raise Conflict(gettext("This pledge can no longer be confirmed."))
    intent_id = pledge["setup_intent_id"]
    if setup_intent_id and setup_intent_id != intent_id:
        raise FormError({"setup_intent": gettext("That card setup does not belong to this pledge.")})
    payment_method = await cards.verified_payment_method(member, intent_id, expected={"pledge_id": str(pledge_id)})
    try:
        campaign, counted = await _activate_pledge(member, pledge, payment_method)
    except _NotPending:  # confirmed (or cancelled) meanwhile: nothing written here, no email
        return await _owned_pledge(member, pledge_id)
    campaign = {**campaign, "backers": counted["backers"] - 1}  # before this pledge, as counted under the lock
    # After the campaign's row lock is released (a launch-day surge queues on it): badges are
    # unique per member, "backed together" counts only feed recommendations.
    async with write_transaction():
        await _count_backed_together(member.id, campaign["id"])
        await emit(PledgeConfirmed(member.id, campaign["id"], pledge_id, campaign["backers"],
                                   CampaignStatus(campaign["status"]).value))
    await live.publish(pledge["campaign"])
    return await _owned_pledge(member, pledge_id)


class _NotPending(Exception):
    pass


async def _activate_pledge(member: CurrentMember, pledge: dict[str, Any], payment_method: str) -> tuple[dict, dict]:
    pledge_id = pledge["id"]
    async with write_transaction():
        # The confirmation email is written first, in the same transaction but before the
        # campaign's row lock: rendering it took most of the time the lock was held, and every
        # pledge of a launch-day surge queues on that lock. If the pledge is not confirmed below
        # (the campaign ended, or it was confirmed or cancelled meanwhile) the email rolls back
        # with it; the email's key is unique besides, so it is sent once.
        await email_pledge(pledge_id, "pledge_confirmed", "confirmed")
        campaign = await _lock_campaign(pledge["campaign"], share=True)
        # Re-read under the lock: a change that committed meanwhile decides what is counted.
        pledge = await _owned_pledge(member, pledge_id)
        if CampaignStatus(campaign["status"]) not in OPEN_STATUSES or as_aware(campaign["ends_at"]) <= utcnow():
            raise Conflict(gettext("This campaign has ended; the pledge could not be completed."))
        moved = await move_pledge(pledge_id, P.ACTIVE, expect=(P.PENDING,), message="Card saved",
                                  extra={Pledge.payment_method_id: payment_method})
        if moved is None:
            raise _NotPending  # rolls back the email written above
        # Its expiry would find nothing to do in 30 minutes: one job fewer per pledge in a surge.
        await cancel_job(f"expire_pending_pledge:{pledge_id}")
        counted = await _count(campaign, pledge["quantity"], pledge["amount"], backers=1)  # last: the shared row
    return campaign, counted


async def _count_backed_together(member_id: int, campaign_id: int) -> None:
    """Incremental co-occurrence: one more member backed this campaign and each other one."""
    # One statement for all pairs (a member backs ~20 campaigns: 40 round trips before). The pair
    # rows are written in sorted order, so two confirms cannot deadlock on them.
    await raw(
        "INSERT INTO backed_together (campaign, other, backers) "
        "SELECT a, b, 1 FROM (SELECT {} AS a, campaign AS b FROM pledge WHERE member = {} AND campaign <> {} "
        "AND status IN ({}, {}, {}) UNION SELECT campaign AS a, {} AS b FROM pledge WHERE member = {} "
        "AND campaign <> {} AND status IN ({}, {}, {})) AS pairs WHERE true ORDER BY a, b "
        "ON CONFLICT (campaign, other) DO UPDATE SET backers = backed_together.backers + 1",
        campaign_id, member_id, campaign_id, P.ACTIVE.value, P.CHARGING.value, P.PAID.value,
        campaign_id, member_id, campaign_id, P.ACTIVE.value, P.CHARGING.value, P.PAID.value)


async def also_backed(campaign_id: int, limit: int = 4) -> list[dict[str, Any]]:
    pairs = await BackedTogether.select(BackedTogether.other, BackedTogether.backers).where(
        BackedTogether.campaign == campaign_id).order_by(BackedTogether.backers, ascending=False).order_by(
        BackedTogether.other).limit(limit)
    if not pairs:
        return []
    rows = {r["id"]: r for r in await Campaign.select(Campaign.id, Campaign.idea, Campaign.idea.title, Campaign.status).where(
        Campaign.id.is_in([p["other"] for p in pairs]))}
    return [{**rows[p["other"]], "backers_together": p["backers"]} for p in pairs if p["other"] in rows]


async def _count(campaign: dict[str, Any], units: int, amount: int, *, backers: int) -> dict[str, Any]:
    """Add to the campaign's totals; returns them as counted (the row's new values)."""
    rows = await Campaign.update({
        Campaign.pledged_units: Campaign.pledged_units + units,
        Campaign.pledged_amount: Campaign.pledged_amount + amount,
        Campaign.backers: Campaign.backers + backers,
    }).where(Campaign.id == campaign["id"]).returning(Campaign.pledged_units, Campaign.goal_units, Campaign.goal_reached_at,
                                                      Campaign.backers, Campaign.pledged_amount, Campaign.stretch_open,
                                                      Campaign.status)
    if rows and rows[0]["pledged_units"] >= rows[0]["goal_units"] and rows[0]["goal_reached_at"] is None:
        await Campaign.update({Campaign.goal_reached_at: utcnow()}).where(Campaign.id == campaign["id"])
        await emit(CampaignGoalReached(campaign["id"]))
    if rows and rows[0]["stretch_open"] > 0 and (units > 0 or amount > 0 or backers > 0):  # a goal never locks again
        await stretch.unlock_reached(campaign["id"], rows[0]["status"], rows[0]["pledged_units"],
                                     rows[0]["pledged_amount"], rows[0]["backers"])
    return rows[0] if rows else {"backers": campaign["backers"] + backers}


async def change_pledge(member: CurrentMember, pledge_id: int, *, variant_id: Any = None, quantity: Any = None,
                        now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    pledge = await _owned_pledge(member, pledge_id)
    new_quantity = _check_quantity(pledge["quantity"] if quantity in (None, "") else quantity)
    try:
        new_variant = pledge["variant"] if variant_id in (None, "") else int(variant_id)
    except (TypeError, ValueError):
        raise FormError({"variant": gettext("Choose a variant.")}) from None
    async with write_transaction():
        campaign = await _lock_campaign(pledge["campaign"])
        pledge = await _owned_pledge(member, pledge_id)  # re-read under the lock
        if pledge["status"] not in (P.PENDING, P.ACTIVE):
            raise Conflict(gettext("This pledge can no longer be changed."))
        _check_can_pledge(member, campaign, now)
        if new_variant == pledge["variant"] and new_quantity == pledge["quantity"]:
            return pledge
        await _release(pledge["variant"], pledge["quantity"])
        await _reserve(new_variant, campaign["id"], new_quantity)  # raises (and rolls back) when sold out
        free = (campaign["early_bird_units"] or 0) - (campaign["early_bird_taken"] or 0) + pledge["early_bird_units"]
        amount, early = price_for(campaign, new_quantity, max(0, free))
        await Campaign.update({Campaign.early_bird_taken: Campaign.early_bird_taken + early - pledge["early_bird_units"]}).where(
            Campaign.id == campaign["id"])
        deadline = _utc_time(campaign["ends_at"])
        await Pledge.update({Pledge.variant: new_variant, Pledge.quantity: new_quantity, Pledge.amount: amount,
                             Pledge.early_bird_units: early, Pledge.updated_at: utcnow(),
                             Pledge.consent_text: consent_text(f"{amount / 100:.2f} {campaign['currency']}", deadline),
                             Pledge.consent_version: CONSENT_VERSION, Pledge.consent_at: utcnow()}).where(Pledge.id == pledge_id)
        event = await PledgeEvent.insert(PledgeEvent(pledge=pledge_id, from_status=pledge["status"], to_status=pledge["status"],
                                                     message=f"Changed to {new_quantity} unit(s)")).returning(PledgeEvent.id)
        if pledge["status"] == P.ACTIVE:
            await _count(campaign, new_quantity - pledge["quantity"], amount - pledge["amount"], backers=0)
            await email_pledge(pledge_id, "pledge_changed", f"changed:{event[0]['id']}")
    await live.publish(pledge["campaign"])
    return await _owned_pledge(member, pledge_id)


async def cancel_pledge(member: CurrentMember, pledge_id: int, *, now: dt.datetime | None = None,
                        quiet: bool = False, message: str = "Cancelled by the backer") -> None:
    """The backer cancels before the deadline; `quiet`: no "pledge cancelled" email (a withdrawal
    sends its own receipt instead); `message` goes on the pledge's event row."""
    now = now or utcnow()
    pledge = await _owned_pledge(member, pledge_id)
    campaign = await Campaign.select(Campaign.status, Campaign.ends_at).where(Campaign.id == pledge["campaign"]).first()
    if CampaignStatus(campaign["status"]) not in OPEN_STATUSES or as_aware(campaign["ends_at"]) <= now:
        raise Conflict(gettext("The campaign has ended; pledges can no longer be cancelled."))
    if pledge["status"] in (P.CANCELLED,):
        return
    was_active = pledge["status"] == P.ACTIVE
    ended = await _end_pending(pledge_id, P.CANCELLED, message, allowed=(P.PENDING, P.ACTIVE), require_open=True)
    if ended and was_active and not quiet:
        await email_pledge(pledge_id, "pledge_cancelled", "cancelled")
    await live.publish(pledge["campaign"])


async def _end_pending(pledge_id: int, to: PledgeStatus, message: str,
                       allowed: tuple[PledgeStatus, ...] = (P.PENDING,), *, require_open: bool = False) -> bool:
    """Cancel or release a pledge and give its units back, exactly once."""
    async with write_transaction():
        owner = await Pledge.select(Pledge.campaign).where(Pledge.id == pledge_id).first()
        campaign = await _lock_campaign(owner["campaign"])
        # Read the pledge only under the campaign lock, so a concurrent change cannot make
        # us give back units of a variant or quantity it no longer holds.
        pledge = await Pledge.select().where(Pledge.id == pledge_id).first()
        if require_open and (CampaignStatus(campaign["status"]) not in OPEN_STATUSES
                             or as_aware(campaign["ends_at"]) <= utcnow()):
            raise Conflict(gettext("The campaign has ended; pledges can no longer be cancelled."))
        old = await move_pledge(pledge_id, to, expect=allowed, message=message)
        if old is None:
            return False
        await _release(pledge["variant"], pledge["quantity"])
        if pledge["early_bird_units"]:
            await Campaign.update({Campaign.early_bird_taken: Campaign.early_bird_taken - pledge["early_bird_units"]}).where(
                Campaign.id == campaign["id"])
        if old is P.ACTIVE and to is not P.RELEASED:  # a failed campaign keeps its final numbers
            await _count(campaign, -pledge["quantity"], -pledge["amount"], backers=-1)
        return True


async def expire_pending_pledge(pledge_id: int) -> None:
    await _end_pending(pledge_id, P.CANCELLED, "The card was not saved in time.")


IN_SITE = {  # email kind -> (notification kind, title) for the bell; the email itself always goes
    "campaign_funded": ("campaign", N_("Funded! %(title)s will be made")),
    "campaign_failed": ("campaign", N_("%(title)s was not funded: nothing is charged")),
    "pledge_paid": ("order", N_("Your pre-order of %(title)s is paid")),
    "payment_failed": ("order", N_("Action needed: the payment for %(title)s failed")),
    "pledge_dropped": ("order", N_("Your pledge for %(title)s was dropped")),
}
EMAIL_SUBJECTS = {  # translated into the recipient's language by queue_email
    "pledge_confirmed": N_("You backed %(title)s"),
    "pledge_changed": N_("Your pledge for %(title)s was changed"),
    "pledge_cancelled": N_("Your pledge for %(title)s was cancelled"),
    "campaign_funded": N_("Funded! %(title)s will be made"),
    "campaign_failed": N_("%(title)s was not funded: nothing is charged"),
    "payment_failed": N_("Action needed: your payment for %(title)s failed"),
    "payment_reminder": N_("Reminder: fix your payment for %(title)s"),
    "pledge_dropped": N_("Your pledge for %(title)s was dropped"),
    "pledge_paid": N_("Payment received for %(title)s"),
}


async def email_pledge(pledge_id: int, kind: str, ref: str) -> None:
    head = select_head("campaigns.pledge_email", lambda: Pledge.select(Pledge.member,
        Pledge.id, Pledge.quantity, Pledge.amount, Pledge.status, Pledge.variant.name, Pledge.member.email,
        Pledge.member.display_name, Pledge.campaign.idea.title, Pledge.campaign.idea, Pledge.campaign.ends_at,
        Pledge.campaign.currency, Pledge.member.locale,
    ))
    row = (await dict_rows(f'{head} WHERE "pledge"."id" = {{}}', pledge_id))[0]
    title = row["campaign.idea.title"]
    if kind in IN_SITE:
        note_kind, note_title = IN_SITE[kind]
        link = f"/pledges/{pledge_id}/fix" if kind == "payment_failed" else "/me/pledges"
        with use_locale(row["member.locale"]):  # stored as the backer reads it
            note_title = gettext(note_title, title=title)
        await emit(BackerNotice(row["member"], pledge_id, note_kind, f"pledge:{pledge_id}:{ref}", note_title, link))
    await queue_email(
        kind=kind, subject_ref=f"pledge:{pledge_id}:{ref}", to=row["member.email"],
        subject=EMAIL_SUBJECTS[kind], subject_args={"title": title}, template=f"pledges/{kind}",
        context={"name": row["member.display_name"], "title": title, "quantity": row["quantity"],
                 "variant": row["variant.name"], "amount": row["amount"], "currency": row["campaign.currency"],
                 "deadline": row["campaign.ends_at"], "pledge_id": pledge_id,
                 "link": f"{get_settings().base_url}/ideas/{row['campaign.idea']}",
                 "fix_link": f"{get_settings().base_url}/pledges/{pledge_id}/fix",
                 "pledges_link": f"{get_settings().base_url}/me/pledges"},
    )


async def my_pledges(member: CurrentMember) -> list[dict[str, Any]]:
    rows = await Pledge.select(
        *Pledge.all_columns(), Pledge.variant.name, Pledge.campaign.idea.title, Pledge.campaign.idea,
        Pledge.campaign.status, Pledge.campaign.ends_at, Pledge.campaign.currency, Pledge.campaign.estimated_delivery,
    ).where(Pledge.member == member.id).order_by(Pledge.id, ascending=False)
    # A pledge abandoned before its card was saved is noise, not history.
    rows = [r for r in rows if not (r["status"] == P.CANCELLED and not r["payment_method_id"])]
    for row in rows:
        row["status_label"] = gettext(PLEDGE_LABELS[PledgeStatus(row["status"])])
        open_campaign = CampaignStatus(row["campaign.status"]) in OPEN_STATUSES and as_aware(row["campaign.ends_at"]) > utcnow()
        row["editable"] = open_campaign and row["status"] in (P.PENDING, P.ACTIVE)
    return rows


async def open_pledge_of(member: CurrentMember, campaign_id: int) -> dict[str, Any] | None:
    """The member's pledge in this campaign that still counts (or waits for its card)."""
    return await Pledge.select(Pledge.id, Pledge.status, Pledge.quantity, Pledge.amount, Pledge.variant.name).where(
        (Pledge.campaign == campaign_id) & (Pledge.member == member.id)
        & Pledge.status.is_in([P.PENDING.value, P.ACTIVE.value, P.CHARGING.value, P.PAID.value, P.PAYMENT_FAILED.value])
    ).order_by(Pledge.id, ascending=False).first()


async def get_pledge(member: CurrentMember, pledge_id: int) -> dict[str, Any]:
    return await _owned_pledge(member, pledge_id)


# ---- the all-or-nothing close ---------------------------------------------------------------


async def close_campaign(campaign_id: int, *, actor_id: int | None = None, now: dt.datetime | None = None,
                         early: bool = False) -> CampaignStatus | None:
    """At the deadline (or when staff close early): funded if active units reach the goal, else
    failed. The move happens once; a second call returns None."""
    now = now or utcnow()
    async with write_transaction():
        campaign = await _lock_campaign(campaign_id)
        status = CampaignStatus(campaign["status"])
        if status not in OPEN_STATUSES:
            return None
        if not early and as_aware(campaign["ends_at"]) > now:
            return None
        target = C.FUNDED if campaign["pledged_units"] >= campaign["goal_units"] else C.FAILED
        await move_campaign(campaign_id, target, actor_id=actor_id, expect=(status,),
                            message="Closed early by staff" if early else "Deadline reached",
                            extra={Campaign.closed_at: now})
        # Pledges still waiting for a card never count: give their units back in this move.
        for row in await Pledge.select(Pledge.id).where((Pledge.campaign == campaign_id) & (Pledge.status == P.PENDING.value)):
            await _end_pending(row["id"], P.CANCELLED, "The campaign ended before the card was saved.")
        job = "settle_campaign" if target is C.FUNDED else "release_campaign"
        await enqueue(job, {"campaign_id": campaign_id}, unique_key=f"{job}:{campaign_id}")
        idea = await Idea.select(Idea.author).where(Idea.id == campaign["idea"]).first()
        if target is C.FUNDED:
            await emit(CampaignFunded(campaign_id, campaign["idea"], idea["author"]))
    log.info("campaign %s closed: %s", campaign_id, target)
    await live.publish(campaign_id)
    return target


async def release_campaign(campaign_id: int) -> int:
    """A failed campaign: release every active pledge, detach the saved cards, email backers."""

    released = 0
    for row in await Pledge.select(Pledge.id, Pledge.payment_method_id).where(
            (Pledge.campaign == campaign_id) & (Pledge.status == P.ACTIVE.value)):
        if await _end_pending(row["id"], P.RELEASED, "The campaign was not funded", allowed=(P.ACTIVE,)):
            released += 1
            await email_pledge(row["id"], "campaign_failed", "failed")
        if row["payment_method_id"]:
            await cards.forget_card(row["payment_method_id"])
    return released


async def mark_production(staff: CurrentMember, campaign_id: int, to: CampaignStatus) -> None:
    """Staff: charging -> in production (once no pledge is still being charged) -> delivered."""
    if not staff.is_staff:
        raise Forbidden(gettext("Staff only."))
    if to is C.IN_PRODUCTION:
        still = await Pledge.count().where((Pledge.campaign == campaign_id) & (Pledge.status == P.CHARGING.value))
        if still:
            raise Conflict(ngettext("%(num)s pledge is still being charged; wait for the settlement to finish.",
                                    "%(num)s pledges are still being charged; wait for the settlement to finish.", still))
        await move_campaign(campaign_id, to, actor_id=staff.id, expect=(C.CHARGING,), message="Production started")
    elif to is C.DELIVERED:
        await move_campaign(campaign_id, to, actor_id=staff.id, expect=(C.IN_PRODUCTION,), message="Delivered")
    else:
        raise FormError({"status": gettext("Choose in_production or delivered.")})
    await live.publish(campaign_id)


def label(status: str) -> str:
    """A campaign status as the reader says it."""
    return gettext(CAMPAIGN_LABELS.get(CampaignStatus(status), status))
