"""Stretch goals: what a campaign unlocks past its own goal ("at 500 units: a second colour").

A goal counts units pre-ordered, money pledged or backers, the campaign's counters of active
pledges. It unlocks exactly once: the pledge that takes a counter past it sets `reached_at` by a
conditional update inside the pledge's transaction (after the campaign's counters, whose row the
transaction then holds), writes the campaign's event row and emits `StretchGoalReached`; backers
are told by a deferred job. A cancelled pledge never locks it again. The campaign's
`stretch_open` counts the goals still to reach, so a pledge looks for one only while there is one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from app.accounts.service import CurrentMember
from app.campaigns.events import BackerNotice, StretchGoalReached
from app.campaigns.money import parse_money
from app.campaigns.tables import Campaign, CampaignEvent, StretchGoal
from app.db import dict_rows, is_sqlite, utcnow, write_transaction
from app.errors import Conflict, FormError, NotFound
from app.events import emit, subscribe
from app.i18n import N_, gettext, use_locale
from app.mail.service import queue_email
from app.settings import get_settings

log = logging.getLogger("crowdmade.campaigns")

METRICS = ("units", "amount", "backers")
METRIC_LABELS = {"units": N_("units pre-ordered"), "amount": N_("pledged"), "backers": N_("backers")}
MAX_GOALS = 12
EDITABLE_STATUSES = ("scheduled", "early_access", "live")
BACKER_STATUSES = ("active", "charging", "paid", "payment_failed")  # who hears of an unlocked goal
BACKER_SQL = "(" + ", ".join(f"'{s}'" for s in BACKER_STATUSES) + ")"  # fixed words only
EVENT_STATUS = "stretch_goal"  # a campaign event row's to_status for an unlocked goal (not a move)


@dataclass
class GoalInput:
    metric: str = "units"
    threshold: str | int = ""
    title: str = ""
    description: str = ""


def _parse(data: GoalInput) -> dict[str, Any]:
    errors: dict[str, str] = {}
    metric = (data.metric or "").strip()
    if metric not in METRICS:
        errors["metric"] = gettext("Choose units, money pledged or backers.")
    text = str(data.threshold if data.threshold is not None else "").strip().replace(" ", "")
    threshold = None
    try:
        if metric == "amount":
            threshold = parse_money(text)
        else:
            threshold = int(text) if text else None
    except ValueError:
        threshold = None
    if threshold is None or threshold <= 0 or threshold > 2_000_000_000:
        errors["threshold"] = (gettext("Give the amount in kronor, for example 50000.") if metric == "amount"
                               else gettext("Give a whole number above zero."))
    title = " ".join((data.title or "").split())
    if not 3 <= len(title) <= 120:
        errors["title"] = gettext("Give the goal a name of 3 to 120 characters.")
    description = (data.description or "").strip()
    if len(description) > 1000:
        errors["description"] = gettext("Keep the description under 1000 characters.")
    if errors:
        raise FormError(errors)
    return {"metric": metric, "threshold": threshold, "title": title, "description": description}


REACHED_SQL = ("((metric = 'units' AND threshold <= {}) OR (metric = 'amount' AND threshold <= {}) OR "
               "(metric = 'backers' AND threshold <= {}))")  # units, amount, backers


async def unlock_reached(campaign_id: int, status: str, units: int, amount: int, backers: int) -> int:
    """Inside the transaction that moved the campaign's counters (and holds its row): unlock each
    goal these counters reach, once. Returns how many unlocked."""
    now = utcnow()
    reached = await dict_rows(
        "UPDATE stretch_goal SET reached_at = {} WHERE campaign = {} AND reached_at IS NULL AND "
        + REACHED_SQL + " RETURNING id, title, metric, threshold",
        now, campaign_id, units, amount, backers)
    if not reached:
        return 0
    await Campaign.update({Campaign.stretch_open: Campaign.stretch_open - len(reached)}).where(Campaign.id == campaign_id)
    for goal in sorted(reached, key=lambda g: g["id"]):
        await CampaignEvent.insert(CampaignEvent(campaign=campaign_id, from_status=status, to_status=EVENT_STATUS,
                                                 message=f"Stretch goal reached: {goal['title']}"))
        await emit(StretchGoalReached(campaign_id, goal["id"], goal["title"]))
        log.info("campaign %s: stretch goal %s reached (%s %s)", campaign_id, goal["id"], goal["metric"], goal["threshold"])
    return len(reached)


async def _lock(campaign_id: int) -> dict[str, Any]:
    lock = "" if is_sqlite() else " FOR UPDATE"  # waits for pledges in flight (they hold KEY SHARE)
    rows = await dict_rows('SELECT id, status, pledged_units, pledged_amount, backers, currency FROM campaign '
                           'WHERE id = {}' + lock, campaign_id)
    if not rows:
        raise NotFound(gettext("Campaign not found"))
    return rows[0]


async def add_goal(staff: CurrentMember, campaign_id: int, data: GoalInput) -> int:
    """Staff add a goal while the campaign is open or coming; one already reached unlocks at once."""
    values = _parse(data)
    async with write_transaction():
        campaign = await _lock(campaign_id)
        if campaign["status"] not in EDITABLE_STATUSES:
            raise Conflict(gettext("Stretch goals can be added only before the campaign ends."))
        existing = await StretchGoal.select(StretchGoal.metric, StretchGoal.threshold).where(
            StretchGoal.campaign == campaign_id)
        if len(existing) >= MAX_GOALS:
            raise FormError({"title": gettext("A campaign has at most %(max)s stretch goals.", max=MAX_GOALS)})
        if any(g["metric"] == values["metric"] and g["threshold"] == values["threshold"] for g in existing):
            raise FormError({"threshold": gettext("There is already a goal at this number.")})
        rows = await StretchGoal.insert(StretchGoal(campaign=campaign_id, created_by=staff.id, **values)).returning(
            StretchGoal.id)
        await Campaign.update({Campaign.stretch_open: Campaign.stretch_open + 1}).where(Campaign.id == campaign_id)
        await unlock_reached(campaign_id, campaign["status"], campaign["pledged_units"], campaign["pledged_amount"],
                             campaign["backers"])
    log.info("campaign %s: stretch goal %s added by staff %s", campaign_id, rows[0]["id"], staff.id)
    return rows[0]["id"]


async def remove_goal(staff: CurrentMember, campaign_id: int, goal_id: int) -> None:
    """Only a goal not yet reached can go: a reached one never locks again."""
    async with write_transaction():
        await _lock(campaign_id)
        deleted = await StretchGoal.delete().where(
            (StretchGoal.id == goal_id) & (StretchGoal.campaign == campaign_id) & StretchGoal.reached_at.is_null()
        ).returning(StretchGoal.id)
        if not deleted:
            goal = await StretchGoal.select(StretchGoal.id).where(
                (StretchGoal.id == goal_id) & (StretchGoal.campaign == campaign_id)).first()
            if goal is None:
                raise NotFound(gettext("Stretch goal not found"))
            raise Conflict(gettext("This goal is reached: backers were told, so it stays."))
        await Campaign.update({Campaign.stretch_open: Campaign.stretch_open - 1}).where(Campaign.id == campaign_id)
    log.info("campaign %s: stretch goal %s removed by staff %s", campaign_id, goal_id, staff.id)


def decorate(goal: dict[str, Any], campaign: dict[str, Any]) -> dict[str, Any]:
    current = {"units": campaign["pledged_units"], "amount": campaign["pledged_amount"],
               "backers": campaign["backers"]}[goal["metric"]]
    goal["current"] = current
    goal["reached"] = goal["reached_at"] is not None
    goal["percent"] = 100 if goal["reached"] else min(99, current * 100 // max(1, goal["threshold"]))
    goal["metric_label"] = gettext(METRIC_LABELS[goal["metric"]])
    return goal


async def goals_of(campaign: dict[str, Any]) -> list[dict[str, Any]]:
    """The campaign's goals, nearest first within reached-then-open, each with its progress."""
    rows = await StretchGoal.select(StretchGoal.id, StretchGoal.metric, StretchGoal.threshold, StretchGoal.title,
                                    StretchGoal.description, StretchGoal.reached_at).where(
        StretchGoal.campaign == campaign["id"]).order_by(StretchGoal.id)
    goals = [decorate(row, campaign) for row in rows]
    goals.sort(key=lambda g: (not g["reached"], g["reached_at"] or utcnow(), g["percent"] * -1, g["id"]))
    return goals


async def backer_batches(campaign_id: int, size: int = 200) -> AsyncIterator[list[dict[str, Any]]]:
    """The campaign's backers (one row per pledge, with the member's address, name and language and
    the idea's title), in batches by pledge id: each batch is told in its own transaction."""
    last = 0
    while True:
        rows = await dict_rows(
            "SELECT pledge.id, pledge.member, member.email, member.display_name, member.locale, idea.title, "
            "idea.id AS idea_id FROM pledge JOIN member ON member.id = pledge.member JOIN campaign ON "
            "campaign.id = pledge.campaign JOIN idea ON idea.id = campaign.idea WHERE pledge.campaign = {} AND "
            f"pledge.id > {{}} AND pledge.status IN {BACKER_SQL} "
            "ORDER BY pledge.id LIMIT {}", campaign_id, last, size)
        if not rows:
            return
        yield rows
        last = rows[-1]["id"]


EMAIL_SUBJECT = N_("Stretch goal unlocked for %(title)s: %(goal)s")
NOTICE_TITLE = N_("Stretch goal unlocked for %(title)s: %(goal)s")


@subscribe(StretchGoalReached, deferred=True)
async def tell_backers(event: StretchGoalReached) -> None:
    """Each backer gets one email and one notification per unlocked goal (keyed: a rerun of the
    job after a crash sends nothing twice). In batches, each its own transaction."""
    settings = get_settings()
    async for rows in backer_batches(event.campaign_id):
        async with write_transaction():
            for row in rows:
                key = f"stretch:{event.goal_id}:pledge:{row['id']}"
                link = f"/ideas/{row['idea_id']}#stretch-goals"
                with use_locale(row["locale"]):
                    title = gettext(NOTICE_TITLE, title=row["title"], goal=event.title)
                await emit(BackerNotice(row["member"], row["id"], "campaign", key, title, link))
                await queue_email(kind="stretch_goal_reached", subject_ref=key, to=row["email"], subject=EMAIL_SUBJECT,
                                  subject_args={"title": row["title"], "goal": event.title},
                                  template="pledges/stretch_goal_reached",
                                  context={"name": row["display_name"], "title": row["title"], "goal": event.title,
                                           "link": f"{settings.base_url}{link}"})
