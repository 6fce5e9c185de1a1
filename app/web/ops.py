"""Operations endpoints: /healthz (process up), /readyz (database reachable, migrations
current), /metrics (Prometheus, token-protected) and the staff integrity audit page."""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import re
import time

from litestar import Request, Response, get
from litestar.response import Redirect
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

from app.db import raw, utcnow
from app.settings import PROJECT_ROOT, get_settings

JOBS_QUEUED = Gauge("crowdmade_jobs_queued", "Jobs waiting to run")
JOBS_OLDEST = Gauge("crowdmade_jobs_oldest_age_seconds", "Age of the oldest due job that has not run")
JOBS_FAILED = Gauge("crowdmade_jobs_failed", "Jobs that gave up")
EMAILS_PENDING = Gauge("crowdmade_emails_pending", "Emails in the outbox not sent yet")
PLEDGES_CHARGING = Gauge("crowdmade_pledges_charging", "Pledges of funded campaigns still being charged")
PLEDGES_FAILED = Gauge("crowdmade_pledges_payment_failed", "Pledges whose payment failed and wait for a fix")
ORDERS_UNPAID = Gauge("crowdmade_orders_unpaid", "Shop orders placed and not paid yet")


@functools.cache
def expected_migrations() -> frozenset[str]:
    ids = set()
    for path in (PROJECT_ROOT / "migrations").glob("*.py"):
        match = re.search(r'^ID = "([^"]+)"', path.read_text(), re.MULTILINE)
        if match:
            ids.add(match.group(1))
    return frozenset(ids)


@get("/healthz", include_in_schema=False, opt={"skip_compression": True})
async def healthz() -> Response:
    return Response({"status": "ok"}, headers={"Cache-Control": "no-store"})


@get("/readyz", include_in_schema=False)
async def readyz() -> Response:
    started = time.perf_counter()
    try:
        applied = {row["name"] for row in await raw("SELECT name FROM migration")}
    except Exception as error:  # noqa: BLE001 (any database failure means not ready)
        return Response({"status": "unavailable", "database": f"unreachable: {type(error).__name__}"},
                        status_code=503, headers={"Cache-Control": "no-store"})
    missing = sorted(expected_migrations() - applied)
    body = {"status": "ok" if not missing else "unavailable", "database": "ok",
            "database_ms": round((time.perf_counter() - started) * 1000, 1), "migrations_pending": missing}
    return Response(body, status_code=200 if not missing else 503, headers={"Cache-Control": "no-store"})


async def _refresh_gauges() -> None:
    now = utcnow()
    jobs = await raw("SELECT status, COUNT(*) AS n, MIN(run_at) AS oldest FROM job WHERE status IN ('queued', 'failed') "
                     "GROUP BY status")
    by_status = {row["status"]: row for row in jobs}
    JOBS_QUEUED.set(by_status.get("queued", {}).get("n", 0))
    JOBS_FAILED.set(by_status.get("failed", {}).get("n", 0))
    due = await raw("SELECT MIN(run_at) AS oldest FROM job WHERE status = 'queued' AND run_at <= {}", now)
    oldest = due[0]["oldest"] if due else None
    if isinstance(oldest, str):  # SQLite returns text

        oldest = dt.datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    JOBS_OLDEST.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0)
    EMAILS_PENDING.set((await raw("SELECT COUNT(*) AS n FROM email_message WHERE status = 'queued'"))[0]["n"])
    pledges = {row["status"]: row["n"] for row in await raw(
        "SELECT status, COUNT(*) AS n FROM pledge WHERE status IN ('charging', 'payment_failed') GROUP BY status")}
    PLEDGES_CHARGING.set(pledges.get("charging", 0))
    PLEDGES_FAILED.set(pledges.get("payment_failed", 0))
    ORDERS_UNPAID.set((await raw("SELECT COUNT(*) AS n FROM shop_order WHERE status = 'placed'"))[0]["n"])


@get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    token = get_settings().metrics_token
    sent = request.headers.get("authorization", "")
    if not token or not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        # Without a configured token the endpoint stays closed rather than open to anyone.
        return Response({"detail": "A metrics token is required.", "status_code": 401}, status_code=401,
                        headers={"WWW-Authenticate": "Bearer"})
    await _refresh_gauges()
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


@get("/favicon.ico", include_in_schema=False)
async def favicon() -> Redirect:
    """Browsers and feed readers that ask for /favicon.ico without reading the page's <link>."""
    return Redirect("/static/img/favicon.svg", status_code=301, headers={"Cache-Control": "public, max-age=86400"})


ROUTES = [healthz, readyz, metrics, favicon]
