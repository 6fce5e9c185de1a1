"""The points ledger: append-only entries with idempotency keys; balances derived.

`Member.points_balance` / `points_lifetime` are caches of the ledger's sums, changed only in
the same transaction as the entry they sum, so they can never drift from the rows.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass

from app import i18n
from app.accounts.language import member_locale
from app.accounts.levels import LEVELS, Level, LevelProgress, level_for  # noqa: F401 (re-exported)
from app.accounts.tables import Member
from app.db import is_sqlite, raw, utcnow, write_transaction
from app.errors import FormError
from app.i18n import N_, gettext
from app.notifications.service import notify
from app.points.tables import PointsEntry
from app.settings import get_settings
from app.shop.tables import Voucher
from app.web.templating import number


@dataclass(frozen=True)
class Rule:
    points: int
    daily_cap: int | None = None
    label: str = ""  # English, N_-marked: translate where shown (rule_label, or _() in templates)


# DESIGN section 5: one table of rules; change points here.
RULES: dict[str, Rule] = {
    "signup_verified": Rule(50, label=N_("Signed up and verified your email")),
    "profile_complete": Rule(25, label=N_("Completed your profile")),
    "idea_accepted": Rule(100, label=N_("Your idea was accepted for voting")),
    "vote": Rule(2, daily_cap=50, label=N_("Voted for an idea")),
    "vote_reversed": Rule(-2, label=N_("Withdrew a vote")),
    "comment": Rule(5, daily_cap=50, label=N_("Commented")),
    "comment_removed": Rule(-5, label=N_("A comment was removed")),
    "pledge_paid": Rule(10, label=N_("Pledge paid (per unit)")),
    "idea_greenlit": Rule(500, label=N_("Your idea was greenlit")),
    "idea_funded": Rule(1000, label=N_("Your idea was funded")),
    "review": Rule(20, label=N_("Verified-buyer review")),
    "review_removed": Rule(-20, label=N_("A review was hidden by staff")),
    "idea_removed": Rule(-100, label=N_("An idea was removed by our team")),
    "referral": Rule(200, label=N_("A friend you invited placed their first order")),
    "adjustment": Rule(0, label=N_("Adjustment by staff")),
    "redeem": Rule(0, label=N_("Redeemed for a voucher")),
    "redeem_refund": Rule(0, label=N_("Voucher returned")),
}

# Spending is not "earning": it lowers the balance, never the lifetime total (and level).
SPENDING_REASONS = frozenset({"redeem", "redeem_refund"})


def rule_label(reason: str) -> str:
    rule = RULES.get(reason)
    return gettext(rule.label) if rule else reason.replace("_", " ").capitalize()


async def _lock_member(member_id: int) -> None:
    """Serialise ledger writes for one member (PostgreSQL row lock; SQLite's IMMEDIATE does it).

    FOR NO KEY UPDATE, not FOR UPDATE: by the time points are awarded, the same transaction has
    usually inserted a row that references the member (a vote, a pledge), which holds a key-share
    lock on it. FOR UPDATE conflicts with other transactions' key shares, so two of one member's
    votes at once deadlocked; FOR NO KEY UPDATE still makes ledger writers wait for each other."""
    if not is_sqlite():
        await raw('SELECT "id" FROM "member" WHERE "id" = {} FOR NO KEY UPDATE', member_id)


def day_start(now: dt.datetime) -> dt.datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


async def points_today(member_id: int, reasons: tuple[str, ...]) -> int:
    # Plain SQL: the ledger is written on every vote, and building Piccolo queries cost more CPU
    # than running them (make bench, votes).
    marks = ", ".join("{}" for _ in reasons)
    rows = await raw(f'SELECT COALESCE(SUM("points"), 0) AS "used" FROM "points_entry" WHERE "member" = {{}} '
                     f'AND "reason" IN ({marks}) AND "created_at" >= {{}}', member_id, *reasons, day_start(utcnow()))
    return int(rows[0]["used"])


async def award(
    member_id: int,
    reason: str,
    *,
    key: str,
    reference: str = "",
    points: int | None = None,
    note: str = "",
    cap_reasons: tuple[str, ...] | None = None,
) -> int:
    """Write one ledger entry unless `key` was used before. Returns the points written (0 if none).

    With a daily cap (from the rule), the award is cut to what is left of today's cap; the
    cap counts the reasons in `cap_reasons` net (so a withdrawn vote frees its points).
    """
    rule = RULES[reason]
    amount = rule.points if points is None else points
    async with write_transaction():
        await _lock_member(member_id)
        if rule.daily_cap is not None and amount > 0:
            used = await points_today(member_id, cap_reasons or (reason,))
            amount = max(0, min(amount, rule.daily_cap - used))
            if amount == 0:
                return 0
        lifetime_delta = 0 if reason in SPENDING_REASONS else amount
        insert = ('INSERT INTO "points_entry" ("member", "points", "reason", "reference", "idempotency_key", "note", '
                  '"created_at") VALUES ({}, {}, {}, {}, {}, {}, {}) ON CONFLICT ("idempotency_key") DO NOTHING RETURNING "id"')
        entry = (member_id, amount, reason, reference, key, note, utcnow())
        balance = ('UPDATE "member" SET "points_balance" = "points_balance" + {}, "points_lifetime" = "points_lifetime" + {} '
                   'WHERE "id" = {}')
        if is_sqlite():
            if not await raw(insert, *entry):
                return 0
            updated = await raw(f'{balance} RETURNING "points_lifetime"', amount, lifetime_delta, member_id)
        else:
            # One statement: the balance moves only when the entry was written (a used key writes neither).
            updated = await raw(f'WITH "entry" AS ({insert}) {balance} AND EXISTS (SELECT 1 FROM "entry") '
                                'RETURNING "points_lifetime"', *entry, amount, lifetime_delta, member_id)
            if not updated:
                return 0
        after = updated[0]["points_lifetime"] if updated else 0
        await notify_level_up(member_id, after - lifetime_delta, after)
        return amount


def levelled_up(lifetime_before: int, lifetime_after: int) -> bool:
    return level_for(lifetime_after).level.threshold > level_for(lifetime_before).level.threshold


async def notify_level_up(member_id: int, lifetime_before: int, lifetime_after: int) -> None:
    """Tell the member when lifetime points moved them up a level (inside the award's transaction)."""
    if levelled_up(lifetime_before, lifetime_after):
        after_level = level_for(lifetime_after).level

        with i18n.use_locale(await member_locale(member_id)):
            title = gettext("You reached %(level)s!", level=gettext(after_level.name))
            body = gettext("%(points)s lifetime points. Thank you for making things with us.", points=lifetime_after)
        await notify(member_id, "level", key=f"level:{member_id}:{after_level.name}",
                     title=title, body=body, link="/points")


async def reverse(member_id: int, *, original_key: str, reason: str, reference: str = "") -> int:
    """Write the reversal of the entry with `original_key`, once. Returns the points reversed."""
    async with write_transaction():
        found = await raw('SELECT "points" FROM "points_entry" WHERE "idempotency_key" = {} AND "member" = {}',
                          original_key, member_id)
        original = found[0] if found else None
        if original is None or original["points"] == 0:
            return 0
        written = await award(
            member_id,
            reason,
            key=f"{original_key}:reversed",
            reference=reference,
            points=-original["points"],
        )
        return written


async def history(member_id: int, *, limit: int = 50, before_id: int | None = None) -> list[dict]:
    query = PointsEntry.select().where(PointsEntry.member == member_id)
    if before_id is not None:
        query = query.where(PointsEntry.id < before_id)
    return await query.order_by(PointsEntry.id, ascending=False).limit(limit)


async def adjust(staff_id: int, member_id: int, points: int, reason: str) -> int:
    """Staff: add or remove points with a reason the member sees in their history."""
    reason = (reason or "").strip()
    errors = {}
    if not reason or len(reason) > 200:
        errors["reason"] = gettext("Say why (up to 200 characters); the member sees it.")
    if points == 0 or abs(points) > 100_000:
        errors["points"] = gettext("Use a non-zero number of points (at most 100,000).")
    if errors:
        raise FormError(errors)
    return await award(member_id, "adjustment", key=f"adjustment:{uuid.uuid4().hex}", points=points,
                       reference=f"staff:{staff_id}", note=reason)


# ---- redemption ------------------------------------------------------------------------------

VOUCHER_POINTS = 1_000
VOUCHER_AMOUNT = 10_000  # minor units: 100 SEK off a catalog order


async def redeem_voucher(member_id: int) -> dict:
    """Spend VOUCHER_POINTS on a voucher. The balance check and the spend share one locked
    transaction, so concurrent redemptions can never spend more than the balance."""
    async with write_transaction():
        await _lock_member(member_id)
        row = await Member.select(Member.points_balance).where(Member.id == member_id).first()
        if row is None or row["points_balance"] < VOUCHER_POINTS:
            raise FormError({"points": gettext("You need %(points)s points for a voucher.", points=number(VOUCHER_POINTS))})
        code = f"CM{secrets.token_hex(4).upper()}"
        with i18n.use_locale(await member_locale(member_id)):
            note = gettext("Voucher %(code)s", code=code)
        await award(member_id, "redeem", key=f"redeem:{uuid.uuid4().hex}", points=-VOUCHER_POINTS, reference=f"voucher:{code}",
                    note=note)
        rows = await Voucher.insert(Voucher(code=code, member=member_id, points=VOUCHER_POINTS, amount=VOUCHER_AMOUNT,
                                            currency=get_settings().currency)).returning(*Voucher.all_columns())
        return rows[0]


async def vouchers_of(member_id: int) -> list[dict]:
    return await Voucher.select().where(Voucher.member == member_id).order_by(Voucher.id, ascending=False)


async def give_back_voucher(order_id: int) -> None:
    """A cancelled order returns its voucher's points (once)."""
    async with write_transaction():
        rows = await Voucher.update({Voucher.status: "cancelled"}).where(
            (Voucher.order_id == order_id) & (Voucher.status == "spent")).returning(Voucher.member, Voucher.points, Voucher.code)
        for row in rows:
            with i18n.use_locale(await member_locale(row["member"])):
                note = gettext("Voucher %(code)s returned", code=row["code"])
            await award(row["member"], "redeem_refund", key=f"redeem_refund:{row['code']}", points=row["points"],
                        reference=f"voucher:{row['code']}", note=note)


async def reward_referral(member_id: int) -> int:
    """The referrer earns points when the invited friend's first order is paid (once per friend)."""
    row = await Member.select(Member.referred_by).where(Member.id == member_id).first()
    if not row or not row["referred_by"] or row["referred_by"] == member_id:
        return 0
    return await award(row["referred_by"], "referral", key=f"referral:{member_id}", reference=f"member:{member_id}")
