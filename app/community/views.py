"""Who viewed what: "N people viewed this today" and "people who viewed this also viewed".

A page view must not cost a database write (on SQLite every write takes the one write lock), so
views are buffered in memory and flushed in one transaction every few seconds by a background
task of each web process. Each viewer (a hashed member id or a returning visitor's id) counts
once per subject and day (a unique key), and "viewed together" pairs are counted incrementally
from the viewer's recently viewed list (a signed cookie), never recomputed over all views.

Where viewers came from (a share link's `?src=` tag, else the referring site, else "direct") is
counted per subject, day and source in `visit_source`, in the same flush. Each visitor is
attributed once per subject and day (its first source wins), deduplicated by a `viewer_day` row
of kind "<kind>:src". Unlike the viewer count, a first visit without our cookie counts too (keyed
by the visitor id it is given) when it comes from a link elsewhere, because that is what a click
on a shared link is; a cookie-less "direct" or "internal" visit does not (it looks like a bot),
and cookie-less visits may fill only half of the buffer, so a crawler cannot crowd out viewers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import re
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.db import raw, utcnow, write_transaction
from app.jobs.service import job_handler
from app.settings import get_settings

log = logging.getLogger("crowdmade.views")

RECENT_COOKIE = "cm_seen"
RECENT_MAX = 8
PAIR_WINDOW = 5  # a view pairs with this many of the viewer's latest views
FLUSH_SECONDS = 2.0
BUFFER_MAX = 2_000


@dataclass(frozen=True)
class PendingView:
    kind: str
    subject: int
    viewer: str
    day: str
    recent: tuple[int, ...]
    source: str | None = None  # where the visitor came from (None: not attributed)
    visitor: str | None = None  # the key the source is deduplicated by


_pending: list[PendingView] = []


def viewer_key(member_id: int | None, session_id: str | None) -> str | None:
    """A stable, non-reversible key for the viewer; None for a visitor we cannot recognise."""
    if member_id is not None:
        raw_key = f"m:{member_id}"
    elif session_id:
        raw_key = f"s:{session_id}"
    else:
        return None
    return hashlib.sha256(f"{get_settings().signing_key}:{raw_key}".encode()).hexdigest()[:32]


def record_view(kind: str, subject: int, viewer: str | None, recent: list[int], now: dt.datetime | None = None,
                *, source: str | None = None, visitor: str | None = None) -> None:
    """Buffer a view. `viewer` (None for a visitor without our cookie) counts towards the
    viewers; `source` is attributed once a day per `visitor` (defaults to `viewer`)."""
    visitor = visitor or viewer
    if viewer is None and not (source and visitor and source not in LOCAL_SOURCES):
        return
    day = (now or utcnow()).date().isoformat()
    pairs = tuple(other for other in recent[:PAIR_WINDOW] if other != subject) if viewer else ()
    if len(_pending) >= (BUFFER_MAX if viewer else BUFFER_MAX // 2):  # a flood (or no flusher): drop, don't grow
        return
    _pending.append(PendingView(kind, subject, viewer, day, pairs, source if visitor else None, visitor))


_SOURCE_TAG = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
LOCAL_SOURCES = ("direct", "internal")  # not attributed to a visitor without our cookie


def visit_source(src: str | None, referer: str | None, own_hosts: tuple[str, ...] = ()) -> str:
    """A share link's tag (`?src=share`), else the referring site's host ("internal" for our
    own pages), else "direct". Tags are short lowercase words; anything else is ignored."""
    tag = (src or "").strip().lower()
    if _SOURCE_TAG.fullmatch(tag):
        return tag
    try:
        host = (urlsplit(referer or "").hostname or "").lower()
    except ValueError:
        host = ""
    host = host.removeprefix("www.")
    if not host:
        return "direct"
    if host in {h.lower().removeprefix("www.") for h in own_hosts if h}:
        return "internal"
    return host[:40]


def source_of(request) -> str:  # noqa: ANN001 (a Litestar Request)
    """The visit source of a page request: `?src=`, the Referer's host, or "direct"."""
    own = (request.url.hostname or "", urlsplit(get_settings().base_url).hostname or "")
    return visit_source(request.query_params.get("src"), request.headers.get("referer"), own)


async def flush() -> int:
    """Write the buffered views; returns how many were new (viewer, subject, day) views."""
    if not _pending:
        return 0
    batch = list(_pending)
    _pending.clear()
    new_views: Counter[tuple[str, int, str]] = Counter()
    pairs: Counter[tuple[str, int, int]] = Counter()
    sources: Counter[tuple[str, int, str, str]] = Counter()
    try:
        async with write_transaction():
            for view in batch:
                if view.source and view.visitor:
                    first = await raw(
                        "INSERT INTO viewer_day (kind, subject, day, viewer) VALUES ({}, {}, {}, {}) "
                        "ON CONFLICT (kind, subject, day, viewer) DO NOTHING RETURNING id",
                        f"{view.kind}:src", view.subject, view.day, view.visitor)
                    if first:
                        sources[(view.kind, view.subject, view.day, view.source)] += 1
                if view.viewer is None:
                    continue
                inserted = await raw(
                    "INSERT INTO viewer_day (kind, subject, day, viewer) VALUES ({}, {}, {}, {}) "
                    "ON CONFLICT (kind, subject, day, viewer) DO NOTHING RETURNING id",
                    view.kind, view.subject, view.day, view.viewer)
                if not inserted:
                    continue
                new_views[(view.kind, view.subject, view.day)] += 1
                for other in view.recent:
                    pairs[(view.kind, view.subject, other)] += 1
                    pairs[(view.kind, other, view.subject)] += 1
            # Sorted, so two processes flushing at once take row locks in the same order.
            for (kind, subject, day), n in sorted(new_views.items()):
                await raw("INSERT INTO view_count (kind, subject, day, views) VALUES ({}, {}, {}, {}) "
                          "ON CONFLICT (kind, subject, day) DO UPDATE SET views = view_count.views + {}",
                          kind, subject, day, n, n)
            for (kind, subject, other), n in sorted(pairs.items()):
                await raw("INSERT INTO viewed_together (kind, subject, other, viewers) VALUES ({}, {}, {}, {}) "
                          "ON CONFLICT (kind, subject, other) DO UPDATE SET viewers = viewed_together.viewers + {}",
                          kind, subject, other, n, n)
            for (kind, subject, day, source), n in sorted(sources.items()):
                await raw("INSERT INTO visit_source (kind, subject, day, source, visits) VALUES ({}, {}, {}, {}, {}) "
                          "ON CONFLICT (kind, subject, day, source) DO UPDATE SET visits = visit_source.visits + {}",
                          kind, subject, day, source, n, n)
    except Exception:  # noqa: BLE001 (view counts are not worth a failed page or a crashed task)
        log.exception("could not write %s views; they are dropped", len(batch))
        return 0
    return sum(new_views.values())


async def run_flusher(stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=FLUSH_SECONDS)
        await flush()


async def viewers_today(kind: str, subject: int, now: dt.datetime | None = None) -> int:
    rows = await raw("SELECT views FROM view_count WHERE kind = {} AND subject = {} AND day = {}",
                     kind, subject, (now or utcnow()).date().isoformat())
    return rows[0]["views"] if rows else 0


async def viewed_also(kind: str, subject: int, limit: int = 4) -> list[int]:
    """Ids most often viewed by the viewers of `subject`, best first (ties by id)."""
    rows = await raw("SELECT other FROM viewed_together WHERE kind = {} AND subject = {} "
                     "ORDER BY viewers DESC, other LIMIT {}", kind, subject, limit)
    return [row["other"] for row in rows]


@job_handler("prune_viewer_days", every_seconds=6 * 3600)
async def prune_viewer_days(_: dict | None = None) -> None:
    """Who-viewed rows only matter for today's count; keep two days."""
    cutoff = (utcnow() - dt.timedelta(days=2)).date().isoformat()
    async with write_transaction():
        await raw("DELETE FROM viewer_day WHERE day < {}", cutoff)


# ---- the recently viewed cookie (signed, so a client cannot plant pairs) ---------------------


def _sign(value: str) -> str:
    return hmac.new(get_settings().signing_key.encode(), f"seen:{value}".encode(), hashlib.sha256).hexdigest()[:16]


def read_recent(cookie: str | None) -> list[int]:
    if not cookie or "." not in cookie:
        return []
    value, signature = cookie.rsplit(".", 1)
    if not hmac.compare_digest(signature, _sign(value)):
        return []
    return [int(part) for part in value.split("-") if part.isdecimal()][:RECENT_MAX]


def remember(cookie: str | None, subject: int) -> tuple[list[int], str]:
    """(the list before this view, the new cookie value with `subject` first)."""
    before = read_recent(cookie)
    after = [subject, *[other for other in before if other != subject]][:RECENT_MAX]
    value = "-".join(str(i) for i in after)
    return before, f"{value}.{_sign(value)}"
