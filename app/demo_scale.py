"""`crowdmade demo --scale large|small|tiny`: benchmark-size data, loaded in bulk.

Large: 10,000 members, 100,000 ideas (every status, mostly voting), 1,000,000 votes, 1,000
campaigns (live, funded, charging, failed, in production) with variants, 200,000 pledges, 2,000
products with variants and stock, 100,000 shop orders (plus the pre-order orders of the paid
pledges) with lines, events, payments and refunds, and the points ledger behind every balance.

The rows are generated in Python (deterministic per seed) and written in bulk, bypassing the
services: PostgreSQL with COPY (asyncpg `copy_records_to_table`), SQLite with `executemany`,
everything in ONE transaction, so a failed load leaves nothing behind. Every cached counter
is computed from the very rows that are written (idea vote counts and hot scores, campaign
totals, reserved units, stock and sold units, order totals, member points), Stripe is bypassed
with fake ids (`pm_bench_...`, `pi_bench_...`) and matching `charge_attempt` / `order_payment`
rows, no email or job is queued, and the integrity audit runs at the end: a load that breaks
any invariant fails loudly.

The bench staff member (`staff@<scale>.bench.crowdmade.test`) is the marker: it is written in
the same transaction as everything else, so when it exists the whole data set is there and a
second run reuses it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import re
import resource
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.accounts.passwords import hash_password
from app.accounts.tables import Member
from app.audit import format_report, run_audit
from app.campaigns.service import CONSENT_VERSION, consent_text
from app.db import raw, start_database, stop_database, utcnow
from app.demo import BIOS, DESCRIPTION, FIRST, IDEAS, LAST, TOUCHES, TOWNS
from app.ideas.service import ensure_categories, hot_score
from app.orders.vat import vat_in
from app.settings import get_settings

BENCH_PASSWORD = "bench-password-2026"  # noqa: S105 (a public test fixture)
# every bench member's password (the bench logs in with it)
BENCH_DOMAIN = "bench.crowdmade.test"


@dataclass(frozen=True)
class ScaleCounts:
    members: int
    ideas: int
    votes: int
    campaigns: int
    pledges: int
    products: int
    orders: int


SCALES: dict[str, ScaleCounts] = {
    "large": ScaleCounts(members=10_000, ideas=100_000, votes=1_000_000, campaigns=1_000, pledges=200_000,
                         products=2_000, orders=100_000),
    "small": ScaleCounts(members=500, ideas=5_000, votes=50_000, campaigns=50, pledges=10_000, products=100,
                         orders=5_000),
    "tiny": ScaleCounts(members=40, ideas=120, votes=600, campaigns=10, pledges=120, products=8, orders=60),
}

# Ideas that are not in voting (fractions of all ideas); campaigns are exactly `campaigns`.
IDEA_MIX = {"draft": 0.04, "submitted": 0.03, "changes_requested": 0.02, "rejected": 0.03, "archived": 0.10,
            "greenlit": 0.005, "removed": 0.002}
VOTED = ("voting", "archived", "greenlit", "campaign")
CAMPAIGN_MIX = (("live", 0.45), ("funded", 0.10), ("charging", 0.10), ("failed", 0.15), ("in_production", 0.20))
COUNTED = frozenset({"active", "charging", "paid", "payment_failed", "dropped", "released"})
HOLDING = frozenset({"pending", "active", "charging", "paid", "payment_failed", "dropped"})
PAID_ORDER = frozenset({"paid", "in_production", "shipped", "delivered", "refunded"})
ADJECTIVES = ["", "", "", "Lightweight ", "Recycled ", "Kids' ", "Compact ", "Heavy-duty ", "Vegan ", "Classic ",
              "Modular ", "Organic ", "Travel ", "Winter ", "Summer "]
SIZES = ["S", "M", "L", "XL"]
COLOURS = ["Black", "Forest", "Sand", "Navy", "Rust"]
STREETS = ["Storgatan", "Kungsgatan", "Drottninggatan", "Sveavägen", "Vasagatan", "Ringvägen", "Parkgatan"]


def marker_email(scale: str) -> str:
    return f"staff@{scale}.{BENCH_DOMAIN}"


def member_email(scale: str, n: int) -> str:
    """The email of the n-th bench member (n from 1)."""

    return f"{FIRST[n % len(FIRST)].lower()}.{n}@{scale}.{BENCH_DOMAIN}"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- where the rows go -----------------------------------------------------------------------


class Sink:
    """Bulk writes in one transaction: COPY on PostgreSQL, executemany on SQLite."""

    kind = ""

    async def open(self) -> None: ...
    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]: ...
    async def write(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None: ...
    async def execute(self, sql: str) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


class PostgresSink(Sink):
    kind = "postgres"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn = None
        self.txn = None

    async def open(self) -> None:
        self.conn = await asyncpg.connect(self.dsn)
        await self.conn.execute("SET synchronous_commit = off")
        self.txn = self.conn.transaction()
        await self.txn.start()

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        count = iter(range(1, 100))
        sql = re.sub(r"\{\}", lambda _: f"${next(count)}", sql)
        return [dict(r) for r in await self.conn.fetch(sql, *args)]

    async def write(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        if rows:
            await self.conn.copy_records_to_table(table, records=rows, columns=list(columns))

    async def execute(self, sql: str) -> None:
        await self.conn.execute(sql)

    async def commit(self) -> None:
        await self.txn.commit()
        await self.conn.close()

    async def rollback(self) -> None:
        if self.conn is not None and not self.conn.is_closed():
            try:
                await self.txn.rollback()
            finally:
                await self.conn.close()


class SQLiteSink(Sink):
    kind = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn = None

    async def open(self) -> None:
        import piccolo.engine.sqlite  # noqa: F401  (registers the adapters Piccolo reads back)

        def go() -> Any:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("BEGIN IMMEDIATE")
            return conn

        self.conn = await asyncio.to_thread(go)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        sql = sql.replace("{}", "?")
        return await asyncio.to_thread(lambda: [dict(r) for r in self.conn.execute(sql, args).fetchall()])

    async def write(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        if rows:
            cols = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            rows = [tuple(json.dumps(v) if isinstance(v, dict) else v for v in row) for row in rows]
            sql = f'INSERT INTO "{table}" ({cols}) VALUES ({marks})'
            await asyncio.to_thread(self.conn.executemany, sql, rows)

    async def execute(self, sql: str) -> None:
        await asyncio.to_thread(self.conn.execute, sql)

    async def commit(self) -> None:
        await asyncio.to_thread(self.conn.execute, "COMMIT")
        self.conn.close()

    async def rollback(self) -> None:
        if self.conn is not None:
            try:
                await asyncio.to_thread(self.conn.execute, "ROLLBACK")
            finally:
                self.conn.close()


def make_sink() -> Sink:
    settings = get_settings()
    if settings.is_sqlite:
        return SQLiteSink(str(settings.sqlite_path))
    return PostgresSink(settings.database_url.replace("postgres://", "postgresql://", 1))


# ---- the generator ---------------------------------------------------------------------------


TABLES = ("member", "idea", "idea_event", "vote", "points_entry", "campaign", "campaign_variant", "campaign_event",
          "pledge", "pledge_event", "charge_attempt", "product", "product_variant", "shop_order", "order_line",
          "order_event", "order_payment", "order_refund", "member_badge", "order_vat")


def _spread(rng: random.Random, total: int, caps: list[int], skew: float = 0.9, offset: float = 10.0) -> list[int]:
    """Split `total` over len(caps) buckets, Zipf-like by position (bucket 0 the biggest), each
    at most its cap; exact sum (as long as the caps allow it)."""
    n = len(caps)
    if n == 0:
        return []
    weights = [1.0 / (i + offset) ** skew for i in range(n)]
    scale = total / sum(weights)
    counts = [min(cap, int(w * scale)) for w, cap in zip(weights, caps, strict=True)]
    room = sum(caps) - sum(counts)
    deficit = min(total - sum(counts), room)
    open_ = [i for i in range(n) if counts[i] < caps[i]]
    while deficit > 0 and open_:
        i = open_[rng.randrange(len(open_))]
        counts[i] += 1
        deficit -= 1
        if counts[i] >= caps[i]:
            open_.remove(i)
    return counts


class Loader:
    def __init__(self, sink: Sink, scale: str, counts: ScaleCounts, seed: int, progress: Any, now: dt.datetime) -> None:
        self.sink = sink
        self.scale = scale
        self.c = counts
        self.rng = random.Random(seed)
        self.bar = progress
        self.now = now
        self.settings = get_settings()
        self.base: dict[str, int] = {}
        self.points: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # member -> [balance, lifetime]
        self.ledger: list[tuple] = []
        self.written: dict[str, int] = defaultdict(int)
        self.tasks: dict[str, Any] = {}
        self.badges: dict[tuple[int, str], dt.datetime] = {}  # (member, badge) -> when, first award wins
        self.member_votes: dict[int, int] = defaultdict(int)
        self.campaigns_backed: dict[int, int] = defaultdict(int)

    # -- helpers

    def task(self, name: str, total: int) -> Any:
        if self.bar is None:
            return None
        self.tasks[name] = self.bar.add_task(name, total=total)
        return self.tasks[name]

    def advance(self, name: str, n: int = 1) -> None:
        if self.bar is not None and name in self.tasks:
            self.bar.advance(self.tasks[name], n)

    async def put(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        await self.sink.write(table, columns, rows)
        self.written[table] += len(rows)

    def days_ago(self, low: float, high: float) -> dt.datetime:
        return self.now - dt.timedelta(days=self.rng.uniform(low, high))

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.datetime:
        if end <= start:
            return start
        return start + (end - start) * self.rng.random()

    def award(self, member: int, points: int, reason: str, key: str, reference: str, at: dt.datetime) -> None:
        self.ledger.append((self.base["points_entry"] + len(self.ledger) + 1 + self.written["points_entry"],
                            member, points, reason, reference, key, "", at))
        account = self.points[member]
        account[0] += points
        if reason not in ("redeem", "redeem_refund"):
            account[1] += points

    def badge(self, member: int, code: str, at: dt.datetime) -> None:
        key = (member, code)
        if key not in self.badges or at < self.badges[key]:
            self.badges[key] = at

    LEDGER_COLUMNS = ("id", "member", "points", "reason", "reference", "idempotency_key", "note", "created_at")

    async def flush_ledger(self, force: bool = False) -> None:
        if self.ledger and (force or len(self.ledger) >= 50_000):
            rows, self.ledger = self.ledger, []
            await self.put("points_entry", self.LEDGER_COLUMNS, rows)

    # -- the phases

    async def run(self) -> dict[str, int]:
        for table in TABLES:
            rows = await self.sink.fetch(f'SELECT COALESCE(MAX(id), 0) AS m FROM "{table}"')
            self.base[table] = int(rows[0]["m"])
        self.categories = {r["slug"]: r["id"] for r in await self.sink.fetch("SELECT id, slug FROM category")}
        if not self.categories:
            raise RuntimeError("no categories: run `crowdmade migrate` first")
        await self.members()
        await self.ideas()
        await self.votes()
        await self.campaigns()
        await self.shop()
        await self.flush_ledger(force=True)
        base = self.base["member_badge"]
        await self.put("member_badge", ("id", "member", "badge", "awarded_at"),
                       [(base + n, member, code, at) for n, ((member, code), at) in enumerate(sorted(self.badges.items()), 1)])
        await self.balances()
        return dict(self.written)

    async def members(self) -> None:
        self.task("members", self.c.members + 1)
        password_hash = hash_password(BENCH_PASSWORD)
        base = self.base["member"]
        rows = []
        self.staff_id = base + 1
        self.member_ids: list[int] = []
        self.verified: list[int] = []
        self.joined: dict[int, dt.datetime] = {}
        # The staff marker first (id base+1), then the members.
        for n in range(0, self.c.members + 1):
            member_id = base + 1 + n
            if n == 0:
                email, name, handle, staff = marker_email(self.scale), "Bench Staff", f"staff.{self.scale}", True
            else:
                first, last = FIRST[n % len(FIRST)], LAST[(n * 7 + n // len(FIRST)) % len(LAST)]
                email, name, handle, staff = member_email(self.scale, n), f"{first} {last}", f"{first.lower()}.{self.scale}{n}", False
            verified = n == 0 or n % 19 != 7
            joined = self.days_ago(30, 720)
            rows.append((member_id, email, joined + dt.timedelta(hours=1) if verified else None, name, handle, password_hash,
                         staff, staff, self.rng.choice(BIOS) if self.rng.random() < 0.5 else "",
                         self.rng.choice(TOWNS) if self.rng.random() < 0.5 else "", 0, 0, "", None, False, joined, None))
            if n:
                self.member_ids.append(member_id)
                self.joined[member_id] = joined
                if verified:
                    self.verified.append(member_id)
                    self.award(member_id, 50, "signup_verified", f"signup_verified:{member_id}", "", joined + dt.timedelta(hours=1))
            self.advance("members")
        await self.put("member", ("id", "email", "email_verified_at", "display_name", "handle", "password_hash",
                                  "is_staff", "is_admin", "bio", "location", "points_balance", "points_lifetime",
                                  "stripe_customer_id", "referred_by", "wishlist_public", "created_at", "deleted_at"), rows)

    async def ideas(self) -> None:
        rng = self.rng
        total = self.c.ideas
        self.task("ideas", total)
        statuses: list[str] = ["campaign"] * self.c.campaigns
        for status, share in IDEA_MIX.items():
            statuses += [status] * max(1, int(total * share))
        statuses += ["voting"] * (total - len(statuses))
        statuses = statuses[:total]
        rng.shuffle(statuses)
        catalogue = [(cat, title, summary) for cat, items in IDEAS.items() for title, summary in items]
        base = self.base["idea"]
        authors = self.verified
        self.ideas_by_status: dict[str, list[int]] = defaultdict(list)
        self.idea_info: dict[int, tuple] = {}  # id -> (author, status, voting starts, voting ends, title)

        # Votes per voted idea, decided up front so the idea rows carry their counts.
        voted = [base + 1 + i for i, s in enumerate(statuses) if s in VOTED]
        rng.shuffle(voted)
        # Campaign and greenlit ideas were the popular ones: move them to the front of the ranking.
        popular = {base + 1 + i for i, s in enumerate(statuses) if s in ("campaign", "greenlit")}
        voted.sort(key=lambda i: 0 if i in popular else 1)
        cap = max(0, len(authors) - 1)
        counts = _spread(rng, self.c.votes, [cap] * len(voted))
        self.vote_counts = dict(zip(voted, counts, strict=True))
        threshold = self.settings.support_threshold

        rows, events = [], []
        decisions: list[tuple] = []
        event_id = self.base["idea_event"]
        idea_columns = ("id", "author", "title", "summary", "description", "category", "status", "status_message",
                        "vote_count", "hot_score", "ready_for_review", "created_at", "updated_at", "submitted_at",
                        "voting_starts_at", "voting_ends_at")
        event_columns = ("id", "idea", "actor", "from_status", "to_status", "message", "created_at")
        for i, status in enumerate(statuses):
            idea_id = base + 1 + i
            category, title, summary = catalogue[i % len(catalogue)]
            title = f"{rng.choice(ADJECTIVES)}{title}"
            if i >= len(catalogue):
                title = f"{title} #{i // len(catalogue) + 1}"
            title = title[:120]
            author = rng.choice(authors)
            description = DESCRIPTION.format(summary=summary, touch=rng.choice(TOUCHES))
            starts = ends = submitted = None
            if status in ("voting", "removed"):
                starts = self.days_ago(0.05, 20)
            elif status == "archived":
                starts = self.days_ago(31, 400)
            elif status in ("greenlit", "campaign"):
                starts = self.days_ago(25, 400)
            if starts is not None:
                ends = starts + dt.timedelta(days=self.settings.voting_days)
                created = starts - dt.timedelta(days=rng.uniform(0.5, 5))
                submitted = created + (starts - created) * 0.3
            else:
                created = self.days_ago(0.5, 60)
                if status != "draft":
                    submitted = created + dt.timedelta(hours=rng.uniform(1, 48))
                    submitted = min(submitted, self.now)
            votes = self.vote_counts.get(idea_id, 0)
            hot = hot_score(votes, starts) if starts is not None else 0.0
            message = {"rejected": "Thanks! This one is too close to a product we already sell.",
                       "changes_requested": "Lovely idea! Could you add a sketch and say which sizes you need?",
                       "removed": "It copies another company's registered design."}.get(status, "")
            rows.append((idea_id, author, title, summary, description, self.categories.get(category), status, message,
                         votes, hot, votes >= threshold, created, created, submitted, starts, ends))
            # The status history, as move_idea writes it.
            moves = []
            if status != "draft":
                moves.append(("draft", "submitted", "", submitted, author))
            if status in ("rejected", "changes_requested"):
                moves.append(("submitted", status, message, submitted + dt.timedelta(hours=12), self.staff_id))
            if starts is not None:
                moves.append(("submitted", "voting", "", starts, self.staff_id))
            if status == "archived":
                moves.append(("voting", "archived", "The voting window closed.", ends, None))
            if status == "removed":
                moves.append(("voting", "removed", message, starts + dt.timedelta(hours=6), self.staff_id))
            if status in ("greenlit", "campaign"):
                moves.append(("voting", "greenlit", "Greenlit for a pre-order campaign", starts + dt.timedelta(days=20), self.staff_id))
            if status == "campaign":
                moves.append(("greenlit", "campaign", "Pre-order campaign created", starts + dt.timedelta(days=20), self.staff_id))
            for from_status, to_status, text, at, actor in moves:
                event_id += 1
                events.append((event_id, idea_id, actor, from_status, to_status, text, at))
            if starts is not None:
                self.award(author, 100, "idea_accepted", f"idea_accepted:{idea_id}", f"idea:{idea_id}", starts)
                self.badge(author, "first_idea", starts)
            if status in ("greenlit", "campaign"):
                self.award(author, 500, "idea_greenlit", f"idea_greenlit:{idea_id}", f"idea:{idea_id}",
                           starts + dt.timedelta(days=20))
                self.badge(author, "idea_greenlit", starts + dt.timedelta(days=20))
            if status == "removed":  # as moderation removes one: its points go, its decision is kept
                at = starts + dt.timedelta(hours=6)
                self.award(author, -100, "idea_removed", f"idea_accepted:{idea_id}:reversed", f"idea:{idea_id}", at)
                decisions.append(("idea", idea_id, author, title, "remove", "illegal", message, self.staff_id, at))
            self.ideas_by_status[status].append(idea_id)
            self.idea_info[idea_id] = (author, status, starts, ends, title)
            if len(rows) >= 20_000:
                await self.put("idea", idea_columns, rows)
                await self.put("idea_event", event_columns, events)
                self.advance("ideas", len(rows))
                rows, events = [], []
        await self.put("idea", idea_columns, rows)
        await self.put("idea_event", event_columns, events)
        await self.put("moderation_decision", ("kind", "target", "author", "title", "action", "ground", "statement",
                                               "staff", "created_at"), decisions)
        self.advance("ideas", len(rows))
        await self.flush_ledger()

    async def votes(self) -> None:
        rng = self.rng
        self.task("votes", self.c.votes)
        vote_id = self.base["vote"]
        rows: list[tuple] = []
        columns = ("id", "member", "idea", "token", "created_at")
        voters = self.verified
        for idea_id, wanted in self.vote_counts.items():
            if not wanted:
                continue
            author, status, starts, ends, _ = self.idea_info[idea_id]
            chosen = [m for m in rng.sample(voters, min(len(voters), wanted + 1)) if m != author][:wanted]
            last = min(ends, self.now)
            if status in ("greenlit", "campaign"):
                last = min(last, starts + dt.timedelta(days=20))
            for member in chosen:
                vote_id += 1
                at = self.between(starts, last)
                token = f"{vote_id:032x}"
                rows.append((vote_id, member, idea_id, token, at))
                self.badge(member, "first_vote", at)
                self.member_votes[member] += 1
                if self.member_votes[member] == 100:
                    self.badge(member, "hundred_votes", at)
                self.award(member, 2, "vote", f"vote:{token}", f"idea:{idea_id}", at)
            if len(rows) >= 50_000:
                await self.put("vote", columns, rows)
                self.advance("votes", len(rows))
                rows = []
                await self.flush_ledger()
        await self.put("vote", columns, rows)
        self.advance("votes", len(rows))
        await self.flush_ledger()

    async def campaigns(self) -> None:
        rng = self.rng
        ideas = self.ideas_by_status["campaign"]
        self.task("campaigns and pledges", self.c.pledges)
        plan: list[str] = []
        for status, share in CAMPAIGN_MIX:
            plan += [status] * max(1, round(len(ideas) * share))
        plan = (plan + ["live"] * len(ideas))[:len(ideas)]
        rng.shuffle(plan)
        caps = [max(0, len(self.verified) - 1)] * len(ideas)
        backers_per = _spread(rng, self.c.pledges, caps, skew=0.8, offset=5)
        rng.shuffle(backers_per)
        c_base, v_base, p_base = self.base["campaign"], self.base["campaign_variant"], self.base["pledge"]
        campaign_rows, variant_rows, event_rows, pledge_rows, pledge_events, attempts = [], [], [], [], [], []
        orders: list[tuple] = []
        ce_id, pe_id, a_id = self.base["campaign_event"], self.base["pledge_event"], self.base["charge_attempt"]
        variant_id, pledge_id = v_base, p_base
        self.live_campaigns: list[tuple[int, int]] = []
        currency = self.settings.currency

        for index, (idea_id, status, backers) in enumerate(zip(ideas, plan, backers_per, strict=True)):
            campaign_id = c_base + 1 + index
            author, _, v_starts, _, title = self.idea_info[idea_id]
            price = rng.choice((349, 499, 699, 899, 1290)) * 100
            early_units = rng.choice((0, 0, 25, 50, 100))
            early_price = int(price * 0.8) if early_units else None
            created = v_starts + dt.timedelta(days=20)
            if status == "live":
                starts = self.between(created, self.now)
                ends = self.now + dt.timedelta(days=rng.uniform(3, 40))
            else:
                ends = self.between(created + dt.timedelta(days=30), self.now - dt.timedelta(days=1))
                starts = ends - dt.timedelta(days=30)
            starts = max(starts, created)
            early_access_ends = min(starts + dt.timedelta(hours=24), ends)
            names = ["One size"] if rng.random() < 0.3 else SIZES
            variants = []
            for position, name in enumerate(names):
                variant_id += 1
                variants.append([variant_id, name, position, 0, None])  # id, name, position, reserved, limit
            # Pledges: distinct backers (never the author), in time order.
            pool = [m for m in rng.sample(self.verified, min(len(self.verified), backers + 1)) if m != author][:backers]
            times = sorted(self.between(starts, min(ends, self.now)) for _ in pool)
            early_free = early_units
            units = amount = counted = early_taken = 0
            campaign_pledges = []
            for member, at in zip(pool, times, strict=True):
                pledge_id += 1
                quantity = 1 if rng.random() < 0.8 else rng.choice((2, 2, 3))
                variant = rng.choice(variants)
                early = min(quantity, early_free) if early_price else 0
                early_free -= early
                value = early * (early_price or 0) + (quantity - early) * price
                roll = rng.random()
                pledge_status = {
                    "live": "active" if roll < 0.96 else "cancelled",
                    "funded": "active",
                    "failed": "released" if roll < 0.97 else "cancelled",
                    "charging": "paid" if roll < 0.97 else "payment_failed",
                    "in_production": "paid" if roll < 0.97 else "dropped",
                }[status]
                if pledge_status == "cancelled":
                    early_free += early  # a cancelled pledge gives its early-bird units back
                    early = 0
                    value = quantity * price
                if pledge_status in COUNTED:
                    units += quantity
                    amount += value
                    counted += 1
                if pledge_status in HOLDING:
                    variant[3] += quantity
                if pledge_status in ("pending", "active"):
                    early_taken += early
                campaign_pledges.append((pledge_id, member, variant, quantity, early, value, pledge_status, at))
            # Goals that agree with the outcome.
            if status == "failed":
                goal = units + rng.randrange(10, 500)
            elif status == "live":
                goal = max(1, int(units * rng.choice((0.5, 0.8, 1.2, 2.0, 4.0)))) if units else rng.randrange(20, 200)
            else:
                goal = max(1, int(units * rng.uniform(0.3, 0.95)))
                if units == 0:
                    status = "failed"  # nobody backed it: it cannot have been funded
                    goal = rng.randrange(20, 200)
            goal_reached_at = None
            if units >= goal:
                goal_reached_at = campaign_pledges[-1][7] if campaign_pledges else starts
            closed = None if status == "live" else ends
            campaign_rows.append((campaign_id, idea_id, status, currency, price, early_price, early_units, early_taken,
                                  goal, units, amount, counted, starts, early_access_ends, ends,
                                  (ends + dt.timedelta(days=150)).date(), goal_reached_at, closed, created, self.staff_id))
            if status == "live":
                self.live_campaigns.append((campaign_id, idea_id))
            for variant in variants:
                limit = None
                if len(variants) > 1 and variant[1] in ("S", "XL") and rng.random() < 0.5:
                    limit = variant[3] + rng.choice((0, 5, 20, 100))  # some sold out
                variant_rows.append((variant[0], campaign_id, variant[1], variant[2], limit, variant[3]))
            moves = [("", "scheduled", "Greenlit", created), ("scheduled", "live", "Scheduled start", starts)]
            if status != "live":
                outcome = "failed" if status == "failed" else "funded"
                moves.append(("live", outcome, "Deadline reached", ends))
                if status in ("charging", "in_production"):
                    moves.append(("funded", "charging", "Charging cards", ends + dt.timedelta(minutes=5)))
                if status == "in_production":
                    moves.append(("charging", "in_production", "Sent to the factory", ends + dt.timedelta(days=3)))
            for from_status, to_status, text, at in moves:
                ce_id += 1
                event_rows.append((ce_id, campaign_id, self.staff_id if from_status in ("", "charging") else None,
                                   from_status, to_status, text, at))
            if status in ("funded", "charging", "in_production"):
                self.award(author, 1000, "idea_funded", f"idea_funded:{idea_id}", f"campaign:{campaign_id}", ends)
                self.badge(author, "funded_creator", ends)
            backed = [p for p in campaign_pledges if p[6] in ("active", "charging", "paid")]
            if backed:
                self.badge(backed[0][1], "first_backer", backed[0][7])
            for p in backed:
                self.campaigns_backed[p[1]] += 1
                if self.campaigns_backed[p[1]] == 10:
                    self.badge(p[1], "ten_campaigns", p[7])
            deadline = ends.strftime("%d %b %Y %H:%M UTC")
            for pid, member, variant, quantity, early, value, pledge_status, at in campaign_pledges:
                updated = at
                pledge_moves = [("", "pending", "", at), ("pending", "active", "Card saved", at)]
                if pledge_status == "cancelled":
                    cancelled_at = self.between(at, min(ends, self.now))
                    pledge_moves.append(("active", "cancelled", "Cancelled by the backer", cancelled_at))
                    updated = cancelled_at
                elif pledge_status == "released":
                    pledge_moves.append(("active", "released", "The campaign was not funded", ends))
                    updated = ends
                elif pledge_status in ("paid", "payment_failed", "dropped"):
                    charged = ends + dt.timedelta(minutes=10)
                    pledge_moves.append(("active", "charging", "Charging", charged))
                    a_id += 1
                    if pledge_status == "paid":
                        pledge_moves.append(("charging", "paid", "Charged", charged))
                        attempts.append((a_id, pid, 1, f"pledge-{pid}-attempt-1", value, "paid", f"pi_bench_p{pid}", "",
                                         "", None, charged, charged))
                        orders.append(("preorder", member, "in_production" if status == "in_production" else "paid",
                                       value, pid, campaign_id, f"pi_bench_p{pid}", charged,
                                       [(title, variant[1], None, None, quantity, value // quantity, value)]))
                        self.award(member, 10 * quantity, "pledge_paid", f"pledge_paid:{pid}", f"pledge:{pid}", charged)
                    else:
                        pledge_moves.append(("charging", "payment_failed", "Your card was declined.", charged))
                        attempts.append((a_id, pid, 1, f"pledge-{pid}-attempt-1", value, "declined", f"pi_bench_p{pid}",
                                         "", "Your card was declined.", None, charged, charged))
                        if pledge_status == "dropped":
                            pledge_moves.append(("payment_failed", "dropped", "Not paid within 7 days",
                                                 charged + dt.timedelta(days=7)))
                    updated = pledge_moves[-1][3]
                failed_at = ends + dt.timedelta(minutes=10) if pledge_status in ("payment_failed", "dropped") else None
                pledge_rows.append((pid, campaign_id, member, variant[0], quantity, early, value, pledge_status,
                                    f"seti_bench_{pid}", f"pm_bench_{pid}", CONSENT_VERSION,
                                    consent_text(f"{value / 100:.2f} {currency}", deadline), at,
                                    "Your card was declined." if failed_at else "", failed_at, failed_at is not None,
                                    1 if failed_at else 0, self.now if pledge_status == "payment_failed" else failed_at,
                                    at, updated))
                for from_status, to_status, text, when in pledge_moves:
                    pe_id += 1
                    pledge_events.append((pe_id, pid, from_status, to_status, text, "{}", when))
            self.advance("campaigns and pledges", len(campaign_pledges))
        await self.put("campaign", ("id", "idea", "status", "currency", "price", "early_bird_price", "early_bird_units",
                                    "early_bird_taken", "goal_units", "pledged_units", "pledged_amount", "backers",
                                    "starts_at", "early_access_ends_at", "ends_at", "estimated_delivery",
                                    "goal_reached_at", "closed_at", "created_at", "created_by"), campaign_rows)
        await self.put("campaign_variant", ("id", "campaign", "name", "position", "limit_units", "reserved"), variant_rows)
        await self.put("campaign_event", ("id", "campaign", "actor", "from_status", "to_status", "message", "created_at"),
                       event_rows)
        for chunk in _chunks(pledge_rows, 50_000):
            await self.put("pledge", ("id", "campaign", "member", "variant", "quantity", "early_bird_units", "amount",
                                      "status", "setup_intent_id", "payment_method_id", "consent_version",
                                      "consent_text", "consent_at", "failure_message", "failed_at", "retried",
                                      "reminders_sent", "last_reminder_at", "created_at", "updated_at"), chunk)
        for chunk in _chunks(pledge_events, 100_000):
            await self.put("pledge_event", ("id", "pledge", "from_status", "to_status", "message", "data", "created_at"),
                           chunk)
        for chunk in _chunks(attempts, 100_000):
            await self.put("charge_attempt", ("id", "pledge", "attempt", "idempotency_key", "amount", "status",
                                              "payment_intent_id", "client_secret", "message", "claimed_until",
                                              "created_at", "finished_at"), chunk)
        self.preorders = orders
        await self.flush_ledger()

    async def shop(self) -> None:
        rng = self.rng
        currency = self.settings.currency
        self.task("products and orders", self.c.products + self.c.orders + len(self.preorders))
        catalogue = [(cat, title, summary) for cat, items in IDEAS.items() for title, summary in items]
        p_base, v_base = self.base["product"], self.base["product_variant"]
        products, variants = [], []
        self.product_variants: list[tuple[int, int, str, int, str]] = []  # (variant, product, name, price, product name)
        by_variant: dict[int, list] = {}
        variant_id = v_base
        for i in range(self.c.products):
            product_id = p_base + 1 + i
            category, title, summary = catalogue[i % len(catalogue)]
            name = f"{rng.choice(ADJECTIVES)}{title}"
            if i >= len(catalogue):
                name = f"{name} {COLOURS[i % len(COLOURS)]} {i // len(catalogue) + 1}"
            name = name[:120]
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] + f"-{self.scale[0]}{i + 1}"
            price = rng.choice((149, 249, 399, 599, 899, 1290, 1990)) * 100
            status = "active" if rng.random() < 0.95 else "hidden"
            published = self.days_ago(30, 700)
            products.append([product_id, slug, name, summary, f"{summary}. Made to last, easy to repair.",
                             "Materials: recycled polyester. Care: machine wash cold.", self.categories.get(category),
                             None, None, currency, price, status, rng.choice((1, 2, 3, 5)), 0, 0, 0.0, 0, published,
                             published, published])
            names = SIZES if rng.random() < 0.5 else (["One size"] if rng.random() < 0.5 else COLOURS[:3])
            for position, variant_name in enumerate(names):
                variant_id += 1
                own_price = None if rng.random() < 0.8 else price + 5000
                row = [variant_id, product_id, variant_name, f"B{product_id}-{position}", position, own_price,
                       rng.randrange(0, 400), 0, True]
                variants.append(row)
                by_variant[variant_id] = row
                if status == "active":
                    self.product_variants.append((variant_id, product_id, variant_name, own_price or price, name))
            self.advance("products and orders")
        product_by_id = {p[0]: p for p in products}

        # Orders: the shop's, then the pre-orders of the paid pledges.
        o_base = self.base["shop_order"]
        l_id, e_id, pay_id, r_id = (self.base["order_line"], self.base["order_event"], self.base["order_payment"],
                                    self.base["order_refund"])
        order_rows, line_rows, event_rows, payment_rows, refund_rows = [], [], [], [], []
        order_columns = ("id", "number", "member", "status", "kind", "currency", "subtotal", "shipping", "discount",
                         "total", "refunded", "pledge_id", "campaign_id", "payment_intent_id", "setup_intent_id",
                         "payment_method_id", "voucher_code", "shipping_method", "ship_to", "reserved_until",
                         "stock_released", "failure_message", "carrier", "tracking_number", "paid_at", "shipped_at",
                         "delivered_at", "cancelled_at", "created_at", "updated_at")

        buyers = self.verified
        order_id = o_base
        for n in range(self.c.orders + len(self.preorders)):
            order_id += 1
            number = f"CM-B{order_id:08X}"
            if n < self.c.orders:
                member = rng.choice(buyers)
                roll = rng.random()
                status = ("delivered" if roll < 0.55 else "shipped" if roll < 0.70 else "paid" if roll < 0.85
                          else "cancelled" if roll < 0.97 else "refunded")
                if status in ("delivered", "refunded"):
                    created = self.days_ago(45, 400)
                elif status == "shipped":
                    created = self.days_ago(3, 10)
                elif status == "paid":
                    created = self.days_ago(0.01, 3)
                else:
                    created = self.days_ago(1, 300)
                chosen = rng.sample(self.product_variants, min(len(self.product_variants), rng.choice((1, 1, 1, 2, 2, 3))))
                items = [(name, variant_name, product_id, vid, q, price, price * q)
                         for vid, product_id, variant_name, price, name in chosen for q in [1 if rng.random() < 0.85 else 2]]
                subtotal = sum(item[6] for item in items)
                method = rng.choice(("standard", "standard", "express"))
                shipping = 4900 if method == "standard" else 9900
                total = subtotal + shipping
                paid = created + dt.timedelta(minutes=2) if status != "cancelled" else None
                shipped = delivered = cancelled = None
                if status in ("shipped", "delivered", "refunded"):
                    shipped = created + dt.timedelta(days=rng.uniform(0.5, 2))
                if status in ("delivered", "refunded"):
                    delivered = shipped + dt.timedelta(days=rng.uniform(1, 4))
                if status == "cancelled":
                    cancelled = created + dt.timedelta(minutes=30)
                refunded = total if status == "refunded" else 0
                town = rng.choice(TOWNS)
                address = {"name": f"Member {member}", "line1": f"{rng.choice(STREETS)} {rng.randrange(1, 90)}",
                           "line2": "", "postal_code": f"{rng.randrange(10000, 99999)}", "city": town, "country": "SE",
                           "phone": "", "shipping_label": "Standard" if method == "standard" else "Express"}
                released = status == "cancelled"
                order_rows.append((order_id, number, member, status, "shop", currency, subtotal, shipping, 0, total,
                                   refunded, None, None, f"pi_bench_o{order_id}" if paid else "", f"seti_bench_o{order_id}",
                                   f"pm_bench_o{order_id}", "", method, json.dumps(address),
                                   created + dt.timedelta(minutes=30), released,
                                   "The checkout expired before payment." if released else "",
                                   "postnord" if shipped else "", f"BENCH{order_id:010d}" if shipped else "",
                                   paid, shipped, delivered, cancelled, created,
                                   refunded and delivered + dt.timedelta(days=5) or delivered or shipped or paid or cancelled))
                for item in items:
                    l_id += 1
                    line_rows.append((l_id, order_id, *item))
                    if paid and not released:
                        by_variant[item[3]][7] += item[4]  # sold
                        product_by_id[item[2]][16] += item[4]  # sold_count
                moves = [("", "placed", "", created)]
                if paid:
                    moves.append(("placed", "paid", "Payment received", paid))
                    pay_id += 1
                    payment_rows.append((pay_id, order_id, 1, f"order-{order_id}-attempt-1", total, "paid",
                                         f"pi_bench_o{order_id}", "", "", paid, paid))
                if shipped:
                    moves.append(("paid", "shipped", "", shipped))
                if delivered:
                    moves.append(("shipped", "delivered", "", delivered))
                if cancelled:
                    moves.append(("placed", "cancelled", "The checkout expired before payment.", cancelled))
                if status == "refunded":
                    at = delivered + dt.timedelta(days=5)
                    moves.append(("delivered", "refunded", "Refunded in full", at))
                    r_id += 1
                    refund_rows.append((r_id, order_id, total, "Returned", self.staff_id, f"refund-bench-{order_id}",
                                        f"re_bench_{order_id}", "succeeded", at))
            else:
                kind, member, status, value, pid, campaign_id, intent, paid, items = self.preorders[n - self.c.orders]
                order_rows.append((order_id, number, member, status, kind, currency, value, 0, 0, value, 0, pid,
                                   campaign_id, intent, "", "", "", "", "{}", None, False, "", "", "", paid, None, None,
                                   None, paid, paid))
                for item in items:
                    l_id += 1
                    line_rows.append((l_id, order_id, *item))
                moves = [("", "placed", "Pre-order", paid), ("placed", "paid", "Pledge charged", paid)]
                if status == "in_production":
                    moves.append(("paid", "in_production", "In production", paid + dt.timedelta(days=3)))
            for from_status, to_status, text, at in moves:
                e_id += 1
                event_rows.append((e_id, order_id, from_status, to_status, text, None, at))
            self.advance("products and orders")
            if len(order_rows) >= 20_000:
                await self._write_orders(order_columns, order_rows, line_rows, event_rows, payment_rows, refund_rows,
                                         products, variants)
                products = variants = None
                order_rows, line_rows, event_rows, payment_rows, refund_rows = [], [], [], [], []
        await self._write_orders(order_columns, order_rows, line_rows, event_rows, payment_rows, refund_rows,
                                 products, variants)
        # sold units are only final now: write them (product rows went first for the foreign keys).
        await self._write_sold(list(product_by_id.values()), list(by_variant.values()))

    async def _write_orders(self, order_columns, orders, lines, events, payments, refunds, products, variants) -> None:  # noqa: ANN001
        if products is not None:
            # First batch: products and variants go in now (sold counters are set at the end).
            self._product_rows, self._variant_rows = products, variants
            await self.put("product", ("id", "slug", "name", "summary", "description", "details", "category", "campaign",
                                       "idea", "currency", "price", "status", "ships_in_days", "rating_count",
                                       "rating_sum", "rating_avg", "sold_count", "published_at", "created_at",
                                       "updated_at"), [tuple(p) for p in products])
            await self.put("product_variant", ("id", "product", "name", "sku", "position", "price", "stock", "sold",
                                               "active"), [tuple(v) for v in variants])
        await self.put("shop_order", order_columns, orders)
        await self.put("order_line", ("id", "order", "title", "variant", "product_id", "variant_id", "quantity",
                                      "unit_price", "total"), lines)
        await self.put("order_event", ("id", "order", "from_status", "to_status", "message", "actor", "created_at"), events)
        await self.put("order_payment", ("id", "order", "attempt", "idempotency_key", "amount", "status",
                                         "payment_intent_id", "client_secret", "message", "created_at", "finished_at"),
                       payments)
        await self.put("order_refund", ("id", "order", "amount", "reason", "staff", "idempotency_key", "stripe_refund_id",
                                        "status", "created_at"), refunds)
        # Each paid order's VAT, as move_order records it (every generated line carries the default 25 %).
        paid = [o for o in orders if o[order_columns.index("paid_at")] is not None]
        start = self.base["order_vat"] + self.written.get("order_vat", 0) + 1
        total = order_columns.index("total")
        await self.put("order_vat", ("id", "order", "rate", "gross", "vat"),
                       [(start + n, o[0], 25, o[total], vat_in(o[total], 25)) for n, o in enumerate(paid)])

    async def _write_sold(self, products: list, variants: list) -> None:
        """Set the sold counters from the orders just written (a temporary table and one UPDATE each)."""
        sold_variants = [(v[0], v[7]) for v in variants if v[7]]
        sold_products = [(p[0], p[16]) for p in products if p[16]]
        for table, column, rows in (("product_variant", "sold", sold_variants), ("product", "sold_count", sold_products)):
            if not rows:
                continue
            await self.sink.execute(f"CREATE TEMPORARY TABLE bench_sold_{table} (id INTEGER PRIMARY KEY, n INTEGER)")
            await self.sink.write(f"bench_sold_{table}", ("id", "n"), rows)
            await self.sink.execute(
                f'UPDATE "{table}" SET "{column}" = (SELECT n FROM bench_sold_{table} s WHERE s.id = "{table}".id) '
                f"WHERE id IN (SELECT id FROM bench_sold_{table})")
            await self.sink.execute(f"DROP TABLE bench_sold_{table}")

    async def balances(self) -> None:
        rows = [(member, account[0], account[1]) for member, account in self.points.items()]
        await self.sink.execute("CREATE TEMPORARY TABLE bench_points (id INTEGER PRIMARY KEY, balance INTEGER, lifetime INTEGER)")
        await self.sink.write("bench_points", ("id", "balance", "lifetime"), rows)
        await self.sink.execute(
            "UPDATE member SET points_balance = (SELECT balance FROM bench_points p WHERE p.id = member.id), "
            "points_lifetime = (SELECT lifetime FROM bench_points p WHERE p.id = member.id) "
            "WHERE id IN (SELECT id FROM bench_points)")
        await self.sink.execute("DROP TABLE bench_points")
        if self.sink.kind == "postgres":
            for table in [t for t in TABLES if self.written.get(t)]:
                await self.sink.execute(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                    f'GREATEST((SELECT COALESCE(MAX(id), 0) FROM "{table}"), 1))')


def _chunks(rows: list, size: int) -> Iterable[list]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


# ---- entry points ----------------------------------------------------------------------------


async def scale_loaded(scale: str) -> bool:
    """The marker (the bench staff member) is there: the whole data set of this scale is."""

    return await Member.exists().where(Member.email == marker_email(scale))


async def load_scale(scale: str | ScaleCounts = "large", *, name: str | None = None, seed: int = 42,
                     progress: bool = True, manage_database: bool = True, audit: bool = True,
                     force: bool = False) -> dict[str, Any]:
    """Load a scale's data unless its marker is already there. Returns what happened:
    {"loaded": bool, "seconds", "rows": {table: n}, "peak_rss_mb", "violations"}.

    `scale` is a name from SCALES or explicit counts (then `name` tags the emails and slugs).
    Raises RuntimeError when the audit finds any violation after the load.
    """

    counts = SCALES[scale] if isinstance(scale, str) else scale
    tag = name or (scale if isinstance(scale, str) else "custom")
    if not re.fullmatch(r"[a-z0-9]{1,12}", tag):
        raise ValueError("the scale name must be 1-12 lowercase letters or digits")
    if manage_database:
        await start_database()
    started = time.perf_counter()
    result: dict[str, Any] = {"scale": tag, "loaded": False, "rows": {}, "violations": []}
    try:
        if await scale_loaded(tag) and not force:
            result["seconds"] = 0.0
        else:
            if force and await scale_loaded(tag):
                raise RuntimeError(f"the {tag} data is already loaded; use a fresh database to load it again")
            result["rows"] = await _load(counts, tag, seed, progress)
            result["loaded"] = True
            result["seconds"] = round(time.perf_counter() - started, 1)
        if audit:
            audit_started = time.perf_counter()
            report = await run_audit(now=utcnow())
            result["audit_seconds"] = round(time.perf_counter() - audit_started, 1)
            result["violations"] = [f"{v.check} {v.subject}: {v.detail}" for v in report.violations]
            if not report.ok:
                raise RuntimeError(f"the integrity audit failed after loading the {tag} data:\n{format_report(report)}")
    finally:
        if manage_database:
            await stop_database()
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return result


async def _load(counts: ScaleCounts, tag: str, seed: int, progress: bool) -> dict[str, int]:
    await ensure_categories()
    now = utcnow().replace(microsecond=0)
    sink = make_sink()
    await sink.open()
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, disable=not progress) as bar:
            rows = await Loader(sink, tag, counts, seed, bar, now).run()
        await sink.commit()
    except BaseException:
        await sink.rollback()
        raise
    if sink.kind == "postgres":
        # Fresh statistics (the planner sees 100,000 ideas at once) and the visibility map, so
        # counts can be index-only scans: autovacuum would get there later, the bench starts now.
        for table in TABLES:
            if rows.get(table):
                await raw(f'VACUUM ANALYZE "{table}"')
    return rows
