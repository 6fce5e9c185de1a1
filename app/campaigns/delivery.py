"""The delivery timeline: what happens between "funded" and the parcel at the door, in public.

Staff post production milestones ("Sample approved"), move the estimated delivery (the old and
the new date with the reason: the history stays, nothing is edited) and ship in numbered waves
(orders.fulfilment ships the orders and calls `record_wave` in the same transaction). Backers of
the campaign are emailed and notified once per milestone or date change (deferred, keyed); a wave's
backers get their own shipped email with tracking from orders. `Campaign.delivery_posts` counts the
rows, so a campaign page reads the timeline only when there is one.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from app.accounts.service import CurrentMember
from app.campaigns.events import BackerNotice, DeliveryPosted
from app.campaigns.stretch import backer_batches
from app.campaigns.tables import Campaign, DeliveryUpdate
from app.db import dict_rows, is_sqlite, utcnow, write_transaction
from app.errors import Conflict, FormError, NotFound
from app.events import emit, subscribe
from app.i18n import N_, gettext, ngettext, use_locale
from app.mail.service import queue_email
from app.settings import get_settings
from app.web.templating import date as format_date

log = logging.getLogger("crowdmade.campaigns")

KINDS = ("milestone", "date", "wave")
CLOSED_STATUSES = ("failed",)  # a failed campaign delivers nothing


@dataclass
class MilestoneInput:
    title: str = ""
    body: str = ""


@dataclass
class DateChangeInput:
    new_date: str | dt.date = ""
    reason: str = ""


async def _lock(campaign_id: int) -> dict[str, Any]:
    lock = "" if is_sqlite() else " FOR UPDATE"
    rows = await dict_rows("SELECT id, status, estimated_delivery FROM campaign WHERE id = {}" + lock,
                           campaign_id)
    if not rows:
        raise NotFound(gettext("Campaign not found"))
    campaign = rows[0]
    if campaign["status"] in CLOSED_STATUSES:
        raise Conflict(gettext("This campaign was not funded: it has no delivery to report."))
    return campaign


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        return dt.date.fromisoformat(value[:10])
    return None


async def _insert(campaign_id: int, staff_id: int | None, **values: Any) -> int:
    rows = await DeliveryUpdate.insert(DeliveryUpdate(campaign=campaign_id, created_by=staff_id, **values)).returning(
        DeliveryUpdate.id)
    await Campaign.update({Campaign.delivery_posts: Campaign.delivery_posts + 1}).where(Campaign.id == campaign_id)
    await emit(DeliveryPosted(campaign_id, rows[0]["id"], values["kind"]))
    return rows[0]["id"]


def _parse_milestone(data: MilestoneInput) -> dict[str, str]:
    errors = {}
    title = " ".join((data.title or "").split())
    if not 3 <= len(title) <= 120:
        errors["title"] = gettext("Give the milestone a title of 3 to 120 characters.")
    body = (data.body or "").strip()
    if len(body) > 2000:
        errors["body"] = gettext("Keep the text under 2000 characters.")
    if errors:
        raise FormError(errors)
    return {"title": title, "body": body}


async def post_milestone(staff: CurrentMember, campaign_id: int, data: MilestoneInput) -> int:
    """A production milestone on the public timeline ("Sample approved", "In production")."""
    values = _parse_milestone(data)
    async with write_transaction():
        await _lock(campaign_id)
        update_id = await _insert(campaign_id, staff.id, kind="milestone", **values)
    log.info("campaign %s: milestone %s posted by staff %s", campaign_id, update_id, staff.id)
    return update_id


def _parse_date_change(data: DateChangeInput, today: dt.date) -> tuple[dt.date, str]:
    errors = {}
    new_date = None
    try:
        new_date = _as_date(data.new_date.strip() if isinstance(data.new_date, str) else data.new_date)
    except ValueError:
        errors["new_date"] = gettext("Use a date like 2027-03-01.")
    if new_date is None and "new_date" not in errors:
        errors["new_date"] = gettext("Set the new estimated delivery date.")
    elif new_date is not None and not today < new_date <= today + dt.timedelta(days=3 * 365):
        errors["new_date"] = gettext("Choose a date after today and within three years.")
    reason = (data.reason or "").strip()
    if not 10 <= len(reason) <= 1000:
        errors["reason"] = gettext("Tell backers why, in 10 to 1000 characters.")
    if errors:
        raise FormError(errors)
    return new_date, reason


async def change_date(staff: CurrentMember, campaign_id: int, data: DateChangeInput, *,
                      today: dt.date | None = None) -> int:
    """Move the estimated delivery: the campaign's date changes and the timeline keeps the old and
    the new date with the reason, in one transaction."""
    new_date, reason = _parse_date_change(data, today or utcnow().date())
    async with write_transaction():
        campaign = await _lock(campaign_id)
        old_date = _as_date(campaign["estimated_delivery"])
        if old_date == new_date:
            raise FormError({"new_date": gettext("That is already the estimated delivery date.")})
        await Campaign.update({Campaign.estimated_delivery: new_date}).where(Campaign.id == campaign_id)
        update_id = await _insert(campaign_id, staff.id, kind="date", title="", body=reason, old_date=old_date,
                                  new_date=new_date)
    log.info("campaign %s: estimated delivery %s -> %s by staff %s", campaign_id, old_date, new_date, staff.id)
    return update_id


async def next_wave(campaign_id: int) -> int:
    """Inside the write transaction that ships a wave: lock the campaign (waves are numbered one
    after another; the unique (campaign, wave) index backs it) and tell the next wave's number."""
    await _lock(campaign_id)
    rows = await dict_rows("SELECT COALESCE(MAX(wave), 0) + 1 AS wave FROM delivery_update WHERE campaign = {}",
                           campaign_id)
    return rows[0]["wave"]


async def record_wave(campaign_id: int, wave: int, shipped: int, *, staff_id: int | None, note: str = "") -> None:
    """In the same transaction, once the wave's orders moved: its row on the timeline."""
    await _insert(campaign_id, staff_id, kind="wave", title="", body=note[:2000], wave=wave, shipped=shipped)


def describe(post: dict[str, Any]) -> dict[str, Any]:
    """A timeline row as the reader sees it (in the current language)."""
    kind = post["kind"]
    if kind == "date":
        old, new = _as_date(post["old_date"]), _as_date(post["new_date"])
        post["later"] = bool(old and new and new > old)
        post["heading"] = (gettext("Estimated delivery moved from %(old)s to %(new)s", old=format_date(old, "d MMM y"),
                                   new=format_date(new, "d MMM y")) if old else
                           gettext("Estimated delivery set to %(new)s", new=format_date(new, "d MMM y")))
    elif kind == "wave":
        post["heading"] = ngettext("Shipping wave %(wave)s sent: %(num)s pre-order",
                                   "Shipping wave %(wave)s sent: %(num)s pre-orders", post["shipped"], wave=post["wave"])
    else:
        post["heading"] = post["title"]
    return post


async def timeline(campaign: dict[str, Any]) -> list[dict[str, Any]]:
    """The campaign's timeline, newest first (empty without a query when nothing was posted)."""
    if not campaign.get("delivery_posts"):
        return []
    rows = await DeliveryUpdate.select(
        DeliveryUpdate.id, DeliveryUpdate.kind, DeliveryUpdate.title, DeliveryUpdate.body, DeliveryUpdate.old_date,
        DeliveryUpdate.new_date, DeliveryUpdate.wave, DeliveryUpdate.shipped, DeliveryUpdate.created_at,
    ).where(DeliveryUpdate.campaign == campaign["id"]).order_by(DeliveryUpdate.id, ascending=False)
    return [describe(row) for row in rows]


def first_estimate(posts: list[dict[str, Any]]) -> dt.date | None:
    """The estimated delivery the campaign started with, when it has moved since."""
    dates = [p for p in posts if p["kind"] == "date" and p["old_date"]]
    return _as_date(dates[-1]["old_date"]) if dates else None


EMAIL_SUBJECTS = {
    "milestone": N_("%(title)s: %(heading)s"),
    "date": N_("%(title)s: new estimated delivery %(date)s"),
}


@subscribe(DeliveryPosted, deferred=True)
async def tell_backers(event: DeliveryPosted) -> None:
    """Each backer hears once of a milestone or a date change (email and bell, keyed); waves
    reach their own backers as shipped emails from orders."""
    if event.kind not in EMAIL_SUBJECTS:
        return
    post = await DeliveryUpdate.select().where(DeliveryUpdate.id == event.update_id).first()
    if post is None:
        return
    settings = get_settings()
    async for rows in backer_batches(event.campaign_id):
        async with write_transaction():
            for row in rows:
                key = f"delivery:{event.update_id}:pledge:{row['id']}"
                link = f"/ideas/{row['idea_id']}#delivery"
                with use_locale(row["locale"]):
                    args = {"title": row["title"], "heading": describe(dict(post))["heading"],
                            "date": format_date(_as_date(post["new_date"]), "d MMM y")}
                    title = gettext(EMAIL_SUBJECTS[event.kind], **args)
                await emit(BackerNotice(row["member"], row["id"], "campaign", key, title, link))
                await queue_email(kind="delivery_update", subject_ref=key, to=row["email"],
                                  subject=EMAIL_SUBJECTS[event.kind], subject_args=args, locale=row["locale"],
                                  template="pledges/delivery_update",
                                  context={"name": row["display_name"], "title": row["title"], "kind": event.kind,
                                           "milestone": post["title"], "body": post["body"],
                                           "old_date": _as_date(post["old_date"]),
                                           "new_date": _as_date(post["new_date"]),
                                           "link": f"{settings.base_url}{link}"})
