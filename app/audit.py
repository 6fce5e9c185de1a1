"""The integrity audit (`crowdmade audit`, and /staff/audit): every invariant the money and
the counters depend on, checked against the rows themselves.

Each check is one SQL query that returns the rows violating it (portable between SQLite and
PostgreSQL), so the audit stays cheap enough to run after every load and fault test.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from app.db import raw, utcnow
from app.payments.gateway import PaymentOutcome, gateway

log = logging.getLogger("crowdmade.audit")

# Pledge states whose units and money stay on the campaign's counters (a failed campaign keeps
# its final numbers; a dropped pledge leaves a funded campaign funded).
COUNTED_PLEDGES = "('active', 'charging', 'paid', 'payment_failed', 'dropped', 'released')"
# Pledge states that hold a variant's limited units.
HOLDING_PLEDGES = "('pending', 'active', 'charging', 'paid', 'payment_failed', 'dropped')"
PAID_ORDER_STATES = "('paid', 'in_production', 'shipped', 'delivered', 'refunded')"


@dataclass
class Violation:
    check: str
    subject: str
    detail: str


@dataclass
class Check:
    name: str
    description: str
    sql: str
    describe: Any  # row -> (subject, detail)


@dataclass
class AuditReport:
    checked: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    ran_at: dt.datetime = field(default_factory=utcnow)

    @property
    def ok(self) -> bool:
        return not self.violations

    def by_check(self) -> dict[str, list[Violation]]:
        grouped: dict[str, list[Violation]] = {name: [] for name in self.checked}
        for violation in self.violations:
            grouped.setdefault(violation.check, []).append(violation)
        return grouped


CHECKS: list[Check] = [
    Check(
        "idea_votes", "Each idea's cached vote count equals its vote rows",
        """SELECT i.id, i.vote_count, COUNT(v.id) AS n FROM idea i LEFT JOIN vote v ON v.idea = i.id
           GROUP BY i.id, i.vote_count HAVING i.vote_count <> COUNT(v.id)""",
        lambda r: (f"idea {r['id']}", f"vote_count {r['vote_count']} but {r['n']} votes"),
    ),
    Check(
        "campaign_totals", "Each campaign's pledged units, amount and backers equal its counted pledges",
        f"""SELECT c.id, c.pledged_units, c.pledged_amount, c.backers,
                   COALESCE(SUM(p.quantity), 0) AS units, COALESCE(SUM(p.amount), 0) AS amount, COUNT(p.id) AS n
            FROM campaign c LEFT JOIN pledge p ON p.campaign = c.id AND p.status IN {COUNTED_PLEDGES}
            GROUP BY c.id, c.pledged_units, c.pledged_amount, c.backers
            HAVING c.pledged_units <> COALESCE(SUM(p.quantity), 0) OR c.pledged_amount <> COALESCE(SUM(p.amount), 0)
                OR c.backers <> COUNT(p.id)""",
        lambda r: (f"campaign {r['id']}", f"counters {r['pledged_units']} units / {r['pledged_amount']} / "
                                          f"{r['backers']} backers, pledges say {r['units']} / {r['amount']} / {r['n']}"),
    ),
    Check(
        "stretch_goals", "Each campaign's count of stretch goals to reach is right, and no goal its counters reached is still locked",
        """SELECT c.id, c.stretch_open, COUNT(g.id) AS n,
                  SUM(CASE WHEN (g.metric = 'units' AND g.threshold <= c.pledged_units)
                            OR (g.metric = 'amount' AND g.threshold <= c.pledged_amount)
                            OR (g.metric = 'backers' AND g.threshold <= c.backers) THEN 1 ELSE 0 END) AS missed
           FROM campaign c LEFT JOIN stretch_goal g ON g.campaign = c.id AND g.reached_at IS NULL
           GROUP BY c.id, c.stretch_open
           HAVING c.stretch_open <> COUNT(g.id) OR SUM(CASE WHEN (g.metric = 'units' AND g.threshold <= c.pledged_units)
                            OR (g.metric = 'amount' AND g.threshold <= c.pledged_amount)
                            OR (g.metric = 'backers' AND g.threshold <= c.backers) THEN 1 ELSE 0 END) > 0""",
        lambda r: (f"campaign {r['id']}", f"stretch_open {r['stretch_open']} but {r['n']} goals to reach, "
                                          f"{r['missed'] or 0} reached yet locked"),
    ),
    Check(
        "delivery_timeline", "Each campaign's count of delivery posts is right, its estimated delivery is the latest "
                             "date change's, and each shipping wave shipped as many pre-orders as carry its number",
        """SELECT c.id AS campaign, 'posts' AS what, c.delivery_posts AS said, COUNT(d.id) AS found
           FROM campaign c LEFT JOIN delivery_update d ON d.campaign = c.id
           GROUP BY c.id, c.delivery_posts HAVING c.delivery_posts <> COUNT(d.id)
           UNION ALL
           SELECT c.id, 'date', 0, 0 FROM campaign c JOIN delivery_update d ON d.campaign = c.id AND d.kind = 'date'
           WHERE d.id = (SELECT MAX(x.id) FROM delivery_update x WHERE x.campaign = c.id AND x.kind = 'date')
             AND c.estimated_delivery <> d.new_date
           UNION ALL
           SELECT d.campaign, 'wave ' || CAST(d.wave AS TEXT), d.shipped, COUNT(o.id)
           FROM delivery_update d LEFT JOIN shop_order o ON o.campaign_id = d.campaign AND o.wave = d.wave
           WHERE d.kind = 'wave' GROUP BY d.campaign, d.wave, d.shipped HAVING d.shipped <> COUNT(o.id)
           UNION ALL
           SELECT o.campaign_id, 'wave ' || CAST(o.wave AS TEXT), 0, COUNT(o.id) FROM shop_order o
           WHERE o.wave IS NOT NULL AND NOT EXISTS (SELECT 1 FROM delivery_update d WHERE d.campaign = o.campaign_id
                                                    AND d.kind = 'wave' AND d.wave = o.wave)
           GROUP BY o.campaign_id, o.wave""",
        lambda r: (f"campaign {r['campaign']}", "estimated delivery is not the latest date change's"
                   if r["what"] == "date" else f"{r['what']}: {r['said']} recorded, {r['found']} found"),
    ),
    Check(
        "variant_limits", "Each limited campaign variant holds exactly its pledges' units, within its limit",
        f"""SELECT v.id, v.reserved, v.limit_units, COALESCE(SUM(p.quantity), 0) AS units
            FROM campaign_variant v LEFT JOIN pledge p ON p.variant = v.id AND p.status IN {HOLDING_PLEDGES}
            GROUP BY v.id, v.reserved, v.limit_units
            HAVING v.reserved <> COALESCE(SUM(p.quantity), 0) OR (v.limit_units IS NOT NULL AND v.reserved > v.limit_units)""",
        lambda r: (f"campaign variant {r['id']}", f"reserved {r['reserved']} (limit {r['limit_units']}), pledges hold {r['units']}"),
    ),
    Check(
        "points_balance", "Each member's points balance and lifetime equal the ledger",
        """SELECT m.id, m.points_balance, m.points_lifetime, COALESCE(SUM(e.points), 0) AS balance,
                  COALESCE(SUM(CASE WHEN e.reason IN ('redeem', 'redeem_refund') THEN 0 ELSE e.points END), 0) AS lifetime
           FROM member m LEFT JOIN points_entry e ON e.member = m.id
           GROUP BY m.id, m.points_balance, m.points_lifetime
           HAVING m.points_balance <> COALESCE(SUM(e.points), 0)
               OR m.points_lifetime <> COALESCE(SUM(CASE WHEN e.reason IN ('redeem', 'redeem_refund') THEN 0 ELSE e.points END), 0)
               OR m.points_balance < 0""",
        lambda r: (f"member {r['id']}", f"balance {r['points_balance']} / lifetime {r['points_lifetime']}, "
                                        f"ledger says {r['balance']} / {r['lifetime']}"),
    ),
    Check(
        "points_keys", "No points idempotency key appears twice",
        "SELECT idempotency_key, COUNT(*) AS n FROM points_entry GROUP BY idempotency_key HAVING COUNT(*) > 1",
        lambda r: (f"key {r['idempotency_key']}", f"{r['n']} entries"),
    ),
    Check(
        "badges_once", "No badge is awarded twice to a member",
        "SELECT member, badge, COUNT(*) AS n FROM member_badge GROUP BY member, badge HAVING COUNT(*) > 1",
        lambda r: (f"member {r['member']}", f"badge {r['badge']} {r['n']} times"),
    ),
    Check(
        "stock", "Shop stock and sold units are never negative",
        "SELECT id, stock, sold FROM product_variant WHERE stock < 0 OR sold < 0",
        lambda r: (f"product variant {r['id']}", f"stock {r['stock']}, sold {r['sold']}"),
    ),
    Check(
        "stock_sold", "Each product variant's sold units equal the units of its paid, not restocked orders",
        """SELECT v.id, v.sold, COALESCE(SUM(l.quantity), 0) AS units
            FROM product_variant v LEFT JOIN order_line l ON l.variant_id = v.id
                 AND l."order" IN (SELECT id FROM shop_order WHERE kind = 'shop' AND paid_at IS NOT NULL
                                   AND stock_released = {})
                 AND NOT EXISTS (SELECT 1 FROM order_withdrawal_line w WHERE w.order_line = l.id AND w.restocked = {})
            GROUP BY v.id, v.sold HAVING v.sold <> COALESCE(SUM(l.quantity), 0)""",
        lambda r: (f"product variant {r['id']}", f"sold {r['sold']} but paid orders hold {r['units']}"),
    ),
    Check(
        "pledge_charges", "Each paid pledge has exactly one succeeded charge and one order",
        """SELECT p.id, (SELECT COUNT(*) FROM charge_attempt a WHERE a.pledge = p.id AND a.status = 'paid') AS charges,
                  (SELECT COUNT(*) FROM shop_order o WHERE o.pledge_id = p.id) AS orders
           FROM pledge p WHERE p.status = 'paid'
             AND ((SELECT COUNT(*) FROM charge_attempt a WHERE a.pledge = p.id AND a.status = 'paid') <> 1
                  OR (SELECT COUNT(*) FROM shop_order o WHERE o.pledge_id = p.id) <> 1)""",
        lambda r: (f"pledge {r['id']}", f"{r['charges']} succeeded charges, {r['orders']} orders"),
    ),
    Check(
        "unpaid_charged", "No pledge that is not paid has a succeeded charge",
        """SELECT p.id, p.status FROM pledge p WHERE p.status <> 'paid'
             AND EXISTS (SELECT 1 FROM charge_attempt a WHERE a.pledge = p.id AND a.status = 'paid')""",
        lambda r: (f"pledge {r['id']}", f"status {r['status']} but a charge succeeded"),
    ),
    Check(
        "order_charges", "Each paid shop order has exactly one succeeded payment (none when a voucher paid it all)",
        f"""SELECT o.number, o.status, (SELECT COUNT(*) FROM order_payment p WHERE p."order" = o.id AND p.status = 'paid') AS n
            FROM shop_order o WHERE o.kind = 'shop' AND (
              (o.paid_at IS NOT NULL AND (SELECT COUNT(*) FROM order_payment p WHERE p."order" = o.id AND p.status = 'paid')
                                          <> CASE WHEN o.total > 0 THEN 1 ELSE 0 END)
              OR (o.paid_at IS NULL AND (SELECT COUNT(*) FROM order_payment p WHERE p."order" = o.id AND p.status = 'paid') > 0)
              OR (o.status IN {PAID_ORDER_STATES} AND o.paid_at IS NULL))""",
        lambda r: (f"order {r['number']}", f"status {r['status']} with {r['n']} succeeded payments"),
    ),
    Check(
        "refunds", "Refunds never exceed the charge, and each order's refunded sum equals its refunds",
        """SELECT o.number, o.total, o.refunded, COALESCE(SUM(r.amount), 0) AS refunds
           FROM shop_order o LEFT JOIN order_refund r ON r."order" = o.id AND r.status <> 'failed'
           GROUP BY o.id, o.number, o.total, o.refunded
           HAVING o.refunded > o.total OR o.refunded <> COALESCE(SUM(r.amount), 0) OR o.refunded < 0""",
        lambda r: (f"order {r['number']}", f"total {r['total']}, refunded {r['refunded']}, refund rows {r['refunds']}"),
    ),
    Check(
        "withdrawals", "Each withdrawal that owes money has its refund (never refused, of the same amount; one that "
                       "waits for the goods, once they are back), its lines "
                       "add up to it, and a receipt email",
        """SELECT w.reference, w.amount, r.amount AS refund, r.status,
                  (SELECT COALESCE(SUM(l.amount), 0) FROM order_withdrawal_line l WHERE l.withdrawal = w.id) AS lines,
                  (SELECT COUNT(*) FROM email_message e WHERE e.kind = 'withdrawal_receipt'
                     AND e.subject_ref = 'withdrawal:' || CAST(w.id AS TEXT)) AS receipts
           FROM order_withdrawal w LEFT JOIN order_refund r ON r.id = w.refund_id
           WHERE (w.amount > 0 AND ((r.id IS NULL AND NOT (w.refund_waits AND w.goods_returned_at IS NULL))
                                    OR r.amount <> w.amount OR r.status = 'failed'))
              OR (w."order" IS NOT NULL AND (SELECT COALESCE(SUM(l.amount), 0) FROM order_withdrawal_line l
                                             WHERE l.withdrawal = w.id) <> w.amount)
              OR ((SELECT COUNT(*) FROM email_message e WHERE e.kind = 'withdrawal_receipt'
                    AND e.subject_ref = 'withdrawal:' || CAST(w.id AS TEXT)) <> 1
                  -- an erased member's emails are deleted with the account
                  AND NOT EXISTS (SELECT 1 FROM member m WHERE m.id = w.member AND m.deleted_at IS NOT NULL))""",
        lambda r: (f"withdrawal {r['reference']}", f"owes {r['amount']}, refund {r['refund']} ({r['status']}), "
                                                   f"lines {r['lines']}, {r['receipts']} receipts"),
    ),
    Check(
        "vat", "Each paid order has its VAT recorded: the rates' gross amounts add up to its total, each VAT "
               "amount is its gross amount's share at its rate (rounded half up)",
        """SELECT o.number, o.total, COALESCE(SUM(v.gross), 0) AS gross, COUNT(v.id) AS n,
                  SUM(CASE WHEN v.gross >= 0
                                AND v.vat <> (CAST(v.gross AS BIGINT) * v.rate * 2 + 100 + v.rate) / (2 * (100 + v.rate))
                           THEN 1 ELSE 0 END) AS wrong
           FROM shop_order o LEFT JOIN order_vat v ON v."order" = o.id
           WHERE o.paid_at IS NOT NULL
           GROUP BY o.id, o.number, o.total
           HAVING COUNT(v.id) = 0 OR COALESCE(SUM(v.gross), 0) <> o.total
               OR SUM(CASE WHEN v.gross >= 0
                                   AND v.vat <> (CAST(v.gross AS BIGINT) * v.rate * 2 + 100 + v.rate) / (2 * (100 + v.rate))
                           THEN 1 ELSE 0 END) > 0""",
        lambda r: (f"order {r['number']}", f"total {r['total']}, VAT rows {r['n']} with gross {r['gross']}, "
                                           f"{r['wrong'] or 0} wrong VAT amounts"),
    ),
    Check(
        "emails_once", "Each email key (kind, subject, recipient) is in the outbox at most once",
        """SELECT kind, subject_ref, recipient, COUNT(*) AS n FROM email_message
           GROUP BY kind, subject_ref, recipient HAVING COUNT(*) > 1""",
        lambda r: (f"email {r['kind']} {r['subject_ref']}", f"{r['n']} copies to {r['recipient']}"),
    ),
    Check(
        "vouchers", "Each spent voucher belongs to exactly one order of its member",
        """SELECT v.code, v.status, v.order_id FROM voucher v
           WHERE (v.status = 'spent' AND (v.order_id IS NULL OR NOT EXISTS (
                    SELECT 1 FROM shop_order o WHERE o.id = v.order_id AND o.member = v.member)))
              OR (v.status = 'issued' AND v.order_id IS NOT NULL)""",
        lambda r: (f"voucher {r['code']}", f"status {r['status']}, order {r['order_id']}"),
    ),
    Check(
        "jobs_stuck", "No job is stuck past its deadline (a running job past its lease, a queued job an hour late)",
        """SELECT id, kind, status, run_at, locked_until FROM job
           WHERE (status = 'running' AND locked_until < {}) OR (status = 'queued' AND run_at < {})""",
        lambda r: (f"job {r['id']} ({r['kind']})", f"{r['status']} since {r['run_at']}"),
    ),
]


async def _run(check: Check, now: dt.datetime) -> list[dict[str, Any]]:
    if check.name == "jobs_stuck":
        return await raw(check.sql, now - dt.timedelta(minutes=10), now - dt.timedelta(hours=1))
    if check.name == "stock_sold":
        return await raw(check.sql, False, True)
    return await raw(check.sql)


async def run_audit(*, stripe: bool = False, now: dt.datetime | None = None) -> AuditReport:
    """Run every check; with stripe=True also compare paid orders and pledges with Stripe."""
    now = now or utcnow()
    report = AuditReport(ran_at=now)
    for check in CHECKS:
        report.checked.append(check.name)
        for row in await _run(check, now):
            subject, detail = check.describe(row)
            report.violations.append(Violation(check.name, subject, detail))
    if stripe:
        report.checked.append("stripe")
        report.violations.extend(await _stripe_violations())
    for violation in report.violations:
        log.error("audit: %s %s: %s", violation.check, violation.subject, violation.detail)
    return report


async def _stripe_violations() -> list[Violation]:
    """Every succeeded payment we recorded is succeeded in Stripe for the same amount, and
    refunds there never exceed the charge."""

    found: list[Violation] = []
    rows = await raw(
        """SELECT 'pledge ' || CAST(a.pledge AS TEXT) AS subject, a.payment_intent_id, a.amount FROM charge_attempt a
           WHERE a.status = 'paid'
           UNION ALL
           SELECT 'order ' || o.number AS subject, p.payment_intent_id, p.amount FROM order_payment p
           JOIN shop_order o ON o.id = p."order" WHERE p.status = 'paid'""")
    for row in rows:
        try:
            result = await gateway().retrieve_payment(row["payment_intent_id"])
        except Exception as error:  # Stripe unreachable: say so instead of guessing
            found.append(Violation("stripe", row["subject"], f"could not check {row['payment_intent_id']}: {error}"))
            continue
        if result.outcome is not PaymentOutcome.PAID:
            found.append(Violation("stripe", row["subject"], f"{row['payment_intent_id']} is {result.status} in Stripe"))
    return found


def format_report(report: AuditReport) -> str:
    lines = []
    for name, violations in report.by_check().items():
        lines.append(f"{'FAIL' if violations else 'ok  '} {name}")
        lines.extend(f"     {v.subject}: {v.detail}" for v in violations)
    lines.append(f"{len(report.violations)} violation(s)" if report.violations else "All invariants hold.")
    return "\n".join(lines)
