"""Dashboard numbers: per-day series, funnels, creator analytics.

Every series is ONE grouped query (GROUP BY the UTC day of a timestamp), whatever the number of
days: the days without rows are filled with zeros here, never asked for one by one. The day of a
timestamp is `substr(CAST(col AS TEXT), 1, 10)` on SQLite (Piccolo stores UTC text there) and
`to_char(col AT TIME ZONE 'UTC', 'YYYY-MM-DD')` on PostgreSQL.

What the numbers mean (also shown on the pages):
- members: sign-ups per day; verified: emails verified per day.
- votes: votes cast per day that are still standing (a withdrawn vote is deleted).
- pledges: pledges whose card was saved (a pledge abandoned before that is not one), by the day
  it was started.
- revenue: paid pledge charges (by the day of the charge) + paid shop orders (by the day paid)
  - refunds not refused by Stripe (by the day of the refund), in minor units.
- orders: orders paid per day (shop orders and pre-orders from paid pledges).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from app.accounts.service import CurrentMember
from app.db import is_sqlite, raw, utcnow
from app.errors import NotFound
from app.i18n import N_, gettext
from app.settings import get_settings

PERIODS = (30, 90)
MOMENTUM_DAYS = 7
NEAR_GOAL_PERCENT = 75
NEAR_DEADLINE_DAYS = 3
OPEN_CAMPAIGN_STATUSES = ("early_access", "live")


def period_days(value: str | int | None) -> int:
    """`?days=30|90`; anything else means the default 30 days."""
    try:
        days = int(value) if value is not None else PERIODS[0]
    except (TypeError, ValueError):
        return PERIODS[0]
    return days if days in PERIODS else PERIODS[0]


def day_of(column: str) -> str:
    """SQL for the UTC day ('YYYY-MM-DD') of a timestamp column, on either database."""
    if is_sqlite():
        return f"substr(CAST({column} AS TEXT), 1, 10)"
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


@dataclass
class Series:
    key: str
    title: str
    labels: list[str]
    values: list[int]
    currency: str | None = None
    note: str = ""

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass
class Window:
    """The days shown: `days` days ending today (UTC), oldest first."""

    days: int
    today: dt.date
    labels: list[str] = field(init=False)

    def __post_init__(self) -> None:
        first = self.today - dt.timedelta(days=self.days - 1)
        self.labels = [(first + dt.timedelta(days=i)).isoformat() for i in range(self.days)]

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(dt.date.fromisoformat(self.labels[0]), dt.time(), tzinfo=dt.UTC)

    @property
    def first_day(self) -> str:
        return self.labels[0]

    def fill(self, rows: list[dict[str, Any]]) -> list[int]:
        by_day = {row["day"]: int(row["n"] or 0) for row in rows}
        return [by_day.get(day, 0) for day in self.labels]


def window(days: int, now: dt.datetime | None = None) -> Window:
    return Window(days=days, today=(now or utcnow()).date())


async def _per_day(win: Window, table: str, column: str, *, value: str = "COUNT(*)", where: str = "",
                   args: tuple = ()) -> list[int]:
    """One grouped query: `value` per UTC day of `table.column` inside the window."""
    rows = await raw(f"SELECT {day_of(column)} AS day, {value} AS n FROM {table} "
                     f"WHERE {column} >= {{}} {where} GROUP BY 1", win.start, *args)
    return win.fill(rows)


async def _revenue_per_day(win: Window) -> list[int]:
    """Paid pledge charges + paid shop orders - refunds (not refused), per day, in one query."""
    rows = await raw(
        "SELECT day, SUM(amount) AS n FROM ("
        f" SELECT {day_of('finished_at')} AS day, amount FROM charge_attempt"
        "  WHERE status = 'paid' AND finished_at >= {}"
        " UNION ALL"
        f" SELECT {day_of('paid_at')} AS day, total AS amount FROM shop_order"
        "  WHERE kind = 'shop' AND paid_at >= {}"
        " UNION ALL"
        f" SELECT {day_of('created_at')} AS day, -amount AS amount FROM order_refund"
        "  WHERE status <> 'failed' AND created_at >= {}"
        ") AS money GROUP BY day", win.start, win.start, win.start)
    return win.fill(rows)


# ---- the staff dashboard ------------------------------------------------------------------------


async def daily_series(days: int, now: dt.datetime | None = None) -> list[Series]:
    win = window(days, now)
    currency = get_settings().currency
    return [
        Series("members", gettext("New members"), win.labels, await _per_day(win, "member", "created_at"),
               note=gettext("Sign-ups per day.")),
        Series("verified", gettext("Verified members"), win.labels,
               await _per_day(win, "member", "email_verified_at"), note=gettext("Email addresses verified per day.")),
        Series("votes", gettext("Votes"), win.labels, await _per_day(win, "vote", "created_at"),
               note=gettext("Votes cast per day that still stand (withdrawn votes are gone).")),
        Series("pledges", gettext("Pledges"), win.labels,
               await _per_day(win, "pledge", "created_at", where="AND payment_method_id <> ''"),
               note=gettext("Pledges with a saved card, by the day they were made.")),
        Series("revenue", gettext("Revenue"), win.labels, await _revenue_per_day(win), currency=currency,
               note=gettext("Paid pledge charges and paid shop orders, minus refunds.")),
        Series("orders", gettext("Paid orders"), win.labels, await _per_day(win, "shop_order", "paid_at"),
               note=gettext("Shop orders and pre-orders paid per day.")),
    ]


async def member_totals() -> dict[str, int]:
    rows = await raw("SELECT COUNT(*) AS members, COUNT(email_verified_at) AS verified "
                     "FROM member WHERE deleted_at IS NULL")
    return {"members": int(rows[0]["members"]), "verified": int(rows[0]["verified"])}


async def momentum(limit: int = 8, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Ideas with the most votes in the last 7 days."""
    since = (now or utcnow()) - dt.timedelta(days=MOMENTUM_DAYS)
    rows = await raw(
        "SELECT idea.id, idea.title, idea.status, idea.vote_count, COUNT(vote.id) AS recent "
        "FROM vote JOIN idea ON idea.id = vote.idea WHERE vote.created_at >= {} "
        "GROUP BY idea.id, idea.title, idea.status, idea.vote_count "
        "ORDER BY recent DESC, idea.vote_count DESC, idea.id LIMIT {}", since, limit)
    return [{**dict(row), "recent": int(row["recent"])} for row in rows]


async def campaigns_to_watch(limit: int = 10, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Open campaigns at >= 75% of their goal or ending within 3 days, soonest deadline first."""
    now = now or utcnow()
    rows = await raw(
        "SELECT campaign.id, campaign.idea, idea.title, campaign.status, campaign.goal_units, "
        "campaign.pledged_units, campaign.pledged_amount, campaign.backers, campaign.ends_at, campaign.currency "
        "FROM campaign JOIN idea ON idea.id = campaign.idea "
        "WHERE campaign.status IN ('early_access', 'live') "
        "AND (campaign.ends_at <= {} OR campaign.pledged_units * 100 >= campaign.goal_units * {}) "
        "ORDER BY campaign.ends_at, campaign.id LIMIT {}",
        now + dt.timedelta(days=NEAR_DEADLINE_DAYS), NEAR_GOAL_PERCENT, limit)
    rows = [dict(row) for row in rows]  # PostgreSQL hands back read-only records
    for row in rows:
        goal = max(int(row["goal_units"]), 1)
        row["percent"] = round(100 * int(row["pledged_units"]) / goal)
        row["goal_reached"] = row["pledged_units"] >= row["goal_units"]
        ends_at = row["ends_at"] if isinstance(row["ends_at"], dt.datetime) else dt.datetime.fromisoformat(str(row["ends_at"]))
        row["ends_at"] = ends_at if ends_at.tzinfo else ends_at.replace(tzinfo=dt.UTC)
        row["ending_soon"] = row["ends_at"] <= now + dt.timedelta(days=NEAR_DEADLINE_DAYS)
    return rows


def _aware(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        value = dt.datetime.fromisoformat(str(value))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def failed_payments(limit: int = 25) -> dict[str, Any]:
    """Pledges in payment_failed, the oldest failure (closest to being dropped) first."""
    rows = await raw(
        "SELECT pledge.id, pledge.campaign, pledge.amount, pledge.failure_message, pledge.failed_at, "
        "pledge.reminders_sent, pledge.retried, member.display_name, member.email, idea.title, campaign.currency, "
        "COUNT(*) OVER () AS total_count, SUM(pledge.amount) OVER () AS total_amount "
        "FROM pledge JOIN member ON member.id = pledge.member JOIN campaign ON campaign.id = pledge.campaign "
        "JOIN idea ON idea.id = campaign.idea WHERE pledge.status = 'payment_failed' "
        "ORDER BY pledge.failed_at, pledge.id LIMIT {}", limit)
    fix_days = get_settings().payment_fix_days
    rows = [dict(row) for row in rows]
    for row in rows:
        row["failed_at"] = _aware(row["failed_at"])
        row["drops_at"] = row["failed_at"] + dt.timedelta(days=fix_days) if row["failed_at"] else None
    return {"rows": rows, "count": int(rows[0]["total_count"]) if rows else 0,
            "amount": int(rows[0]["total_amount"] or 0) if rows else 0}


async def queues(now: dt.datetime | None = None) -> dict[str, int]:
    """Jobs and emails waiting or failed, in one query."""
    now = now or utcnow()
    rows = await raw(
        "SELECT 'job' AS what, status, COUNT(*) AS n FROM job WHERE status <> 'done' GROUP BY status "
        "UNION ALL SELECT 'job' AS what, 'overdue' AS status, COUNT(*) AS n FROM job "
        "WHERE status = 'queued' AND run_at < {} "
        "UNION ALL SELECT 'email' AS what, status, COUNT(*) AS n FROM email_message WHERE status <> 'sent' "
        "GROUP BY status", now - dt.timedelta(minutes=5))
    counts = {f"{row['what']}_{row['status']}": int(row["n"]) for row in rows}
    return {key: counts.get(key, 0) for key in (
        "job_queued", "job_running", "job_failed", "job_overdue", "email_queued", "email_failed")}


async def staff_dashboard(days: int, now: dt.datetime | None = None) -> dict[str, Any]:
    series = await daily_series(days, now)
    return {
        "days": days,
        "series": {s.key: s for s in series},
        "totals": await member_totals(),
        "momentum": await momentum(now=now),
        "campaigns": await campaigns_to_watch(now=now),
        "failed": await failed_payments(),
        "queues": await queues(now),
    }


# ---- the campaign funnel --------------------------------------------------------------------------


def funnel_steps(counts: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """(name, who: the people of the step, count) -> each step with its rate from the previous
    step and from the first (None when dividing by 0)."""
    steps = []
    first = counts[0][2] if counts else 0
    widest = max((count for _, _, count in counts), default=0)
    previous = None
    for name, who, count in counts:
        steps.append({
            "name": name, "who": who, "count": count,
            "from_previous": None if previous is None or not previous else count / previous,
            "from_first": None if not first else count / first,
            "width": round(100 * count / widest, 1) if widest else 0,  # the bar, relative to the largest step
        })
        previous = count
    return steps


async def campaign_funnel(campaign_id: int) -> dict[str, Any]:
    """Views of the idea page -> votes -> members who pledged (card saved) -> members who paid."""
    rows = await raw(
        "SELECT campaign.id, campaign.idea, campaign.status, campaign.currency, campaign.goal_units, "
        "campaign.pledged_units, idea.title, idea.vote_count, "
        "(SELECT COALESCE(SUM(views), 0) FROM view_count WHERE kind = 'idea' AND subject = campaign.idea) AS views, "
        "(SELECT COUNT(DISTINCT member) FROM pledge WHERE pledge.campaign = campaign.id "
        " AND pledge.payment_method_id <> '') AS pledgers, "
        "(SELECT COUNT(DISTINCT member) FROM pledge WHERE pledge.campaign = campaign.id "
        " AND pledge.status = 'paid') AS payers, "
        "(SELECT COALESCE(SUM(amount), 0) FROM pledge WHERE pledge.campaign = campaign.id "
        " AND pledge.status = 'paid') AS paid_amount "
        "FROM campaign JOIN idea ON idea.id = campaign.idea WHERE campaign.id = {}", campaign_id)
    if not rows:
        raise NotFound(gettext("Campaign not found"))
    row = dict(rows[0])
    steps = funnel_steps([
        (N_("Viewed the idea"), N_("viewers"), int(row["views"])),
        (N_("Voted"), N_("voters"), int(row["vote_count"])),
        (N_("Pledged"), N_("backers"), int(row["pledgers"])),
        (N_("Paid"), N_("payers"), int(row["payers"])),
    ])
    return {"campaign": row, "steps": steps}


async def campaign_id_for_idea(idea_id: int) -> int | None:
    rows = await raw("SELECT id FROM campaign WHERE idea = {}", idea_id)
    return rows[0]["id"] if rows else None


# ---- creator analytics ----------------------------------------------------------------------------


async def idea_series(idea_id: int, days: int, now: dt.datetime | None = None) -> list[Series]:
    win = window(days, now)
    views = await raw("SELECT day, SUM(views) AS n FROM view_count WHERE kind = 'idea' AND subject = {} "
                      "AND day >= {} GROUP BY day", idea_id, win.first_day)
    return [
        Series("views", gettext("Views"), win.labels, win.fill(views), note=gettext("Each viewer counts once a day.")),
        Series("votes", gettext("Votes"), win.labels,
               await _per_day(win, "vote", "created_at", where="AND idea = {}", args=(idea_id,))),
        Series("pledges", gettext("Pledges"), win.labels, await _per_day(
            win, "pledge", "created_at",
            where="AND payment_method_id <> '' AND campaign IN (SELECT id FROM campaign WHERE idea = {})",
            args=(idea_id,))),
    ]


async def visit_sources(kind: str, subject: int, since_day: str) -> list[dict[str, Any]]:
    rows = await raw("SELECT source, SUM(visits) AS visits FROM visit_source WHERE kind = {} AND subject = {} "
                     "AND day >= {} GROUP BY source ORDER BY visits DESC, source", kind, subject, since_day)
    total = sum(int(row["visits"]) for row in rows)
    return [{"source": row["source"], "visits": int(row["visits"]),
             "share": int(row["visits"]) / total if total else 0.0} for row in rows]


async def idea_analytics(viewer: CurrentMember, idea_id: int, days: int,
                         now: dt.datetime | None = None) -> dict[str, Any]:
    """The idea's author (and staff) only: anyone else gets NotFound, as if there were no page."""
    rows = await raw(
        "SELECT idea.id, idea.author, idea.title, idea.status, idea.vote_count, "
        "(SELECT COALESCE(SUM(views), 0) FROM view_count WHERE kind = 'idea' AND subject = idea.id) AS views, "
        "(SELECT COUNT(*) FROM comment WHERE comment.idea = idea.id AND comment.deleted_at IS NULL "
        " AND comment.hidden_at IS NULL) AS comments, "
        "(SELECT COUNT(*) FROM follow WHERE follow.kind = 'idea' AND follow.target = idea.id) AS followers, "
        "(SELECT id FROM campaign WHERE campaign.idea = idea.id) AS campaign_id "
        "FROM idea WHERE idea.id = {}", idea_id)
    if not rows or not (viewer.is_staff or rows[0]["author"] == viewer.id):
        raise NotFound(gettext("Idea not found"))
    idea = dict(rows[0])
    win = window(days, now)
    series = await idea_series(idea_id, days, now)
    funnel = await campaign_funnel(idea["campaign_id"]) if idea["campaign_id"] else None
    return {
        "idea": idea,
        "days": days,
        "window": win,
        "series": {s.key: s for s in series},
        "sources": await visit_sources("idea", idea_id, win.first_day),
        "funnel": funnel,
    }


# Shown on the creator's page (insight/idea.html translates them): the sources that are not a tag.
SOURCE_NAMES = (N_("direct"), N_("internal"), N_("share"))
# Status and kind words the staff pages show as they are stored (staff/products.html and
# staff/_collections_items.html translate them).
STAFF_WORDS = (N_("funded"), N_("charging"), N_("in production"), N_("delivered"), N_("live"), N_("draft"),
               N_("hidden"), N_("archived"), N_("product"), N_("idea"))
