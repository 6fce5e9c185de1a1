"""Test setup: a fresh database per run (SQLite file, or a new PostgreSQL database when
DATABASE_URL points at PostgreSQL), migrations applied once, tables emptied per test."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

_tmp = Path(tempfile.mkdtemp(prefix="crowdmade-test-"))
# The server's own URL, kept aside: xdist workers inherit the environment of the controller,
# whose DATABASE_URL this file already pointed at a test database that only it would create.
_base_url = os.environ.setdefault("CROWDMADE_TEST_SERVER_URL", os.environ.get("DATABASE_URL", ""))
if _base_url.startswith(("postgresql://", "postgres://")):
    _parts = urlsplit(_base_url)
    TEST_DB_NAME = f"crowdmade_test_{uuid.uuid4().hex[:10]}"
    ADMIN_URL = _base_url
    os.environ["DATABASE_URL"] = urlunsplit(_parts._replace(path=f"/{TEST_DB_NAME}"))
else:
    TEST_DB_NAME = None
    ADMIN_URL = None
    os.environ["DATABASE_URL"] = f"sqlite:///{_tmp / 'test.sqlite3'}"
os.environ.update(
    CROWDMADE_ENV="test",
    VAR_DIR=str(_tmp / "var"),
    SECRET_KEY="test-secret-key-0123456789abcdef0123456789",
    BASE_URL="http://testserver.local",
    SUPPORT_THRESHOLD="3",
    JOBS_IN_PROCESS="false",
    PAGE_CACHE_SECONDS="0",  # tests/web/test_page_cache.py turns it on where it is the subject
    SHARED_PAGE_SECONDS="0",  # members' pages still render in two layers, the shared one each time
)
from tests.support.processes import free_port  # noqa: E402

LOCALSTRIPE_PORT = free_port()
LOCALSTRIPE_URL = f"http://127.0.0.1:{LOCALSTRIPE_PORT}"
os.environ.update(
    STRIPE_SECRET_KEY="sk_test_crowdmade",
    STRIPE_PUBLISHABLE_KEY="pk_test_crowdmade",
    STRIPE_API_BASE=LOCALSTRIPE_URL,
    STRIPE_JS_URL=f"{LOCALSTRIPE_URL}/js.stripe.com/v3/",
    STRIPE_WEBHOOK_SECRET="whsec_test_crowdmade",
    STRIPE_MAX_NETWORK_RETRIES="0",
    EARLY_ACCESS_HOURS="0",
)
os.environ.pop("SMTP_URL", None)
os.environ.pop("REDIS_URL", None)


async def _create_pg_database() -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{TEST_DB_NAME}"')
    finally:
        await conn.close()


async def _drop_pg_database() -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEST_DB_NAME}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session", autouse=True)
async def database():
    if TEST_DB_NAME:
        await _create_pg_database()
    import app.handlers  # noqa: F401  (every job handler, as in a worker)
    from app.cli import migrate_database
    from app.db import start_database, stop_database

    await migrate_database()
    await start_database()
    yield
    await stop_database()
    if TEST_DB_NAME:
        await _drop_pg_database()


@pytest.fixture(scope="session")
def localstripe():
    """localstripe in its own process (GPL: never imported by the app), one per test run."""
    import subprocess
    import sys
    import time

    import httpx

    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.localstripe_server", "--port", str(LOCALSTRIPE_PORT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            httpx.get(f"{LOCALSTRIPE_URL}/js.stripe.com/v3/", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield LOCALSTRIPE_URL
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
async def stripe(localstripe):
    """A clean localstripe for one test."""
    import httpx

    async with httpx.AsyncClient() as http:
        await http.delete(f"{localstripe}/_config/data")
    yield localstripe


async def clean_database() -> None:
    """Empty every table (and the in-process rate-limit counters)."""
    from app.db import is_sqlite, raw
    from app.ideas.service import ensure_categories
    from app.tables import ALL_TABLES
    from app.throttle import counters

    counters.cache_clear()
    names = [t._meta.tablename for t in reversed(ALL_TABLES)]
    if is_sqlite():
        for name in names:
            await raw(f'DELETE FROM "{name}"')
    else:
        await raw("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE")
    await ensure_categories()


@pytest.fixture(autouse=True)
async def clean_tables(database):
    from app.community import views

    await clean_database()
    views._pending.clear()  # page views buffered by an earlier test name rows that are gone
    yield


@pytest.fixture
async def client(database):
    import httpx

    from app.asgi import create_app

    # httpx's ASGI transport runs the app on the test's own event loop, where the
    # database pool lives (Litestar's AsyncTestClient would run it on another loop).
    app = create_app(run_jobs=False, manage_database=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as test_client:
        yield test_client
