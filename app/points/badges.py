"""Badges: earned once (a unique key per member and badge), by the events that earn them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app import i18n
from app.accounts.language import member_locale
from app.accounts.tables import Member
from app.db import raw, utcnow
from app.errors import FormError
from app.i18n import N_, gettext
from app.jobs.service import job_handler
from app.notifications.service import notify
from app.points.service import SPENDING_REASONS
from app.points.tables import MemberBadge, PointsEntry

# (name, description) in English, N_-marked: translated where shown.
BADGES: dict[str, tuple[str, str]] = {
    "first_vote": (N_("First vote"), N_("Said \"I want this\" for the first time")),
    "hundred_votes": (N_("Tastemaker's eye"), N_("Voted for 100 ideas")),
    "first_idea": (N_("Idea maker"), N_("Had a first idea accepted for voting")),
    "idea_greenlit": (N_("Greenlit"), N_("An idea of yours was greenlit for a campaign")),
    "funded_creator": (N_("Funded creator"), N_("An idea of yours was funded")),
    "first_backer": (N_("First backer"), N_("The very first backer of a campaign")),
    "ten_campaigns": (N_("Super backer"), N_("Backed 10 campaigns")),
    "early_insider": (N_("Early-access insider"), N_("Pledged during early access")),
    "first_comment": (N_("Conversation starter"), N_("Wrote a first comment")),
    "profile_complete": (N_("All about me"), N_("Completed your profile")),
    "top10_week": (N_("Top 10 of the week"), N_("Finished a week in the top 10 of the leaderboard")),
    "reviewer": (N_("Reviewer"), N_("Reviewed a product you bought")),
}


async def award_badge(member_id: int, code: str) -> bool:
    """Award once; notify the member the first time."""
    if code not in BADGES:
        raise KeyError(code)
    rows = await MemberBadge.insert(MemberBadge(member=member_id, badge=code)).on_conflict(
        target=(MemberBadge.member, MemberBadge.badge), action="DO NOTHING").returning(MemberBadge.id)
    if not rows:
        return False

    name, description = BADGES[code]
    with i18n.use_locale(await member_locale(member_id)):  # written in the member's language
        title, body = gettext("New badge: %(name)s", name=gettext(name)), gettext(description)
    await notify(member_id, "level", key=f"badge:{member_id}:{code}", title=title, body=body, link="/points")
    return True


async def badges_of(member_id: int) -> list[dict[str, Any]]:
    rows = await MemberBadge.select().where(MemberBadge.member == member_id).order_by(MemberBadge.awarded_at)
    return [{"code": r["badge"], "name": gettext(BADGES[r["badge"]][0]), "description": gettext(BADGES[r["badge"]][1]),
             "awarded_at": r["awarded_at"]} for r in rows if r["badge"] in BADGES]


def week_start(now: dt.datetime | None = None) -> dt.datetime:
    now = now or utcnow()
    monday = now - dt.timedelta(days=now.weekday())
    return monday.replace(hour=0, minute=0, second=0, microsecond=0)


async def leaderboard(period: str = "week", limit: int = 20, now: dt.datetime | None = None,
                      until: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Points earned this week (since Monday 00:00 UTC) or in all time; ties by member id."""

    if period == "all":
        rows = await Member.select(Member.id, Member.display_name, Member.handle, Member.points_lifetime).where(
            Member.deleted_at.is_null() & (Member.points_lifetime > 0)).order_by(
            Member.points_lifetime, ascending=False).order_by(Member.id).limit(limit)
        return [{"member": r["id"], "name": r["display_name"], "handle": r["handle"], "points": r["points_lifetime"]}
                for r in rows]
    if period != "week":
        raise FormError({"period": gettext("Use period=week or period=all.")})
    spending = ", ".join(f"'{r}'" for r in SPENDING_REASONS)
    rows = await raw(
        "SELECT m.id AS member, m.display_name AS name, m.handle AS handle, SUM(p.points) AS points "
        "FROM points_entry p JOIN member m ON m.id = p.member "
        f"WHERE p.created_at >= {{}} AND p.created_at < {{}} AND p.reason NOT IN ({spending}) AND m.deleted_at IS NULL "
        "GROUP BY m.id, m.display_name, m.handle HAVING SUM(p.points) > 0 "
        "ORDER BY SUM(p.points) DESC, m.id ASC LIMIT {}",
        week_start(now), until or (week_start(now) + dt.timedelta(days=7)), limit,
    )
    return [{**r, "points": int(r["points"])} for r in rows]


async def award_weekly_top10(now: dt.datetime | None = None) -> int:
    """After a week ends, its top 10 get the badge (run by a periodic job; awarding is idempotent)."""
    previous = week_start(now) - dt.timedelta(days=1)
    top = await leaderboard("week", 10, now=previous, until=week_start(now))
    awarded = 0
    for row in top:
        awarded += await award_badge(row["member"], "top10_week")
    return awarded


async def count_reason(member_id: int, reason: str) -> int:
    return await PointsEntry.count().where((PointsEntry.member == member_id) & (PointsEntry.reason == reason))


async def _weekly_job(payload: dict[str, Any]) -> None:
    await award_weekly_top10()


def _register() -> None:
    job_handler("award_weekly_top10", every_seconds=3600)(_weekly_job)


_register()
