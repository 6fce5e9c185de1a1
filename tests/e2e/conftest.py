"""Browser tests: the real app in a subprocess (its own database), driven by Debian's Chromium.

The server gets a database of its own because the suite-wide autouse `clean_tables` fixture
(tests/conftest.py) empties the test database between tests:
- SQLite: a file in a temporary directory;
- PostgreSQL (DATABASE_URL=postgresql://...): a fresh database on the same server, created
  with asyncpg through the original URL and dropped at the end.

The tests are plain sync functions (sync Playwright must not run inside a running asyncio loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e import ensure_browser

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
CHROMIUM = ensure_browser.CHROMIUM
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
STAFF_EMAIL = "staff-e2e@crowdmade.test"
STRIPE_WEBHOOK_SECRET = "whsec_e2e_crowdmade"
STAFF_PASSWORD = "e2e-staff-password-2026"
DEFAULT_TIMEOUT_MS = 10_000


@dataclass
class LiveServer:
    url: str
    env: dict[str, str]
    log_path: Path
    stripe_url: str = ""
    staff_email: str = STAFF_EMAIL
    staff_password: str = STAFF_PASSWORD

    def fetch(self, sql: str) -> list[dict]:
        """Read the server's own database (SQLite file or PostgreSQL database), read-only use."""
        database_url = self.env["DATABASE_URL"]
        if database_url.startswith("sqlite:///"):
            import sqlite3

            with sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=10) as conn:
                conn.row_factory = sqlite3.Row
                return [dict(row) for row in conn.execute(sql).fetchall()]

        async def go() -> list[dict]:
            import asyncpg

            conn = await asyncpg.connect(database_url)
            try:
                return [dict(row) for row in await conn.fetch(sql)]
            finally:
                await conn.close()

        # Another thread: sync Playwright marks its own loop as running in this one.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, go()).result(timeout=30)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _admin_url() -> str | None:
    """The PostgreSQL URL the run was started with (tests/conftest.py rewrites DATABASE_URL)."""
    root_conftest = sys.modules.get("tests.conftest")
    admin = getattr(root_conftest, "ADMIN_URL", None)
    if admin:
        return admin
    current = os.environ.get("DATABASE_URL", "")
    if current.startswith(("postgresql://", "postgres://")):
        return urlunsplit(urlsplit(current)._replace(path="/postgres"))
    return None


def _pg(admin_url: str, sql: str) -> None:
    async def go() -> None:
        import asyncpg

        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    # A private loop: never touch the loop pytest-asyncio keeps for the session.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(go())
    finally:
        loop.close()


def _cli(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [PYTHON, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"crowdmade {args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )


def _wait_until_up(url: str, process: subprocess.Popen, server: LiveServer, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(url + "/signup", timeout=2) as response:  # noqa: S310 (local URL)
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer within {timeout} s:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def e2e_localstripe() -> Iterator[str]:
    """A localstripe of the browser tests' own (not the suite-wide one on LOCALSTRIPE_PORT, which
    `stripe` fixtures elsewhere empty between tests): in its own process, on 127.0.0.1."""
    port = _free_port()
    api = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(  # noqa: S603
        [PYTHON, "-m", "tests.support.localstripe_server", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"localstripe exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"{api}/js.stripe.com/v3/", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("localstripe did not answer within 30 s")
            time.sleep(0.1)
        yield api
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _register_webhook(api: str, url: str, secret: str) -> None:
    """localstripe signs and POSTs its events (customer.*, payment_intent.*) to `url`."""
    import json

    request = urllib.request.Request(  # noqa: S310 (local URL)
        f"{api}/_config/webhooks/crowdmade-e2e",
        data=json.dumps({"url": url, "secret": secret}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        if response.status != 200:
            raise RuntimeError(f"localstripe refused the webhook registration: {response.status}")


@pytest.fixture(scope="session")
def live_server(request, e2e_localstripe) -> Iterator[LiveServer]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(
            f"{CHROMIUM} is missing: run `python -m tests.e2e.ensure_browser` (never `playwright install`)"
        )
    tmp = Path(tempfile.mkdtemp(prefix="crowdmade-e2e-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"

    admin_url = _admin_url()
    pg_name = None
    if admin_url:
        pg_name = f"crowdmade_e2e_{uuid.uuid4().hex[:10]}"
        _pg(admin_url, f'CREATE DATABASE "{pg_name}"')
        database_url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{pg_name}"))
    else:
        database_url = f"sqlite:///{tmp / 'e2e.sqlite3'}"

    # Inherit the test run's environment minus outside services: no SMTP (emails land in
    # /dev/mailbox), no Redis, and Stripe only as the e2e localstripe (tests/conftest.py points
    # STRIPE_* at the suite-wide one, which may not run): its STRIPE_* variables are set below.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SMTP_URL", "REDIS_URL", "PORT"} and not k.startswith("STRIPE_")
    }
    env.update(
        CROWDMADE_ENV="development",
        DATABASE_URL=database_url,
        JOBS_IN_PROCESS="true",
        SUPPORT_THRESHOLD="2",
        VAR_DIR=str(tmp / "var"),
        BASE_URL=url,
        SECRET_KEY="e2e-secret-key-0123456789abcdef0123456789",
        SIGNUP_PER_HOUR="1000",
        PICCOLO_CONF="app.piccolo_conf",
        PYTHONUNBUFFERED="1",
        # Stripe: the e2e localstripe, as `crowdmade run` wires it in development.
        STRIPE_SECRET_KEY="sk_test_e2e",
        STRIPE_PUBLISHABLE_KEY="pk_test_e2e",
        STRIPE_WEBHOOK_SECRET=STRIPE_WEBHOOK_SECRET,
        STRIPE_API_BASE=e2e_localstripe,
        STRIPE_JS_URL=f"{e2e_localstripe}/js.stripe.com/v3/",
        STRIPE_MAX_NETWORK_RETRIES="0",
        # Campaigns open to everyone at once (no early-access window for Insiders).
        EARLY_ACCESS_HOURS="0",
    )
    _register_webhook(e2e_localstripe, f"{url}/webhooks/stripe", STRIPE_WEBHOOK_SECRET)
    server = LiveServer(url=url, env=env, log_path=tmp / "server.log", stripe_url=e2e_localstripe)
    process = None
    log_file = open(server.log_path, "wb")  # noqa: SIM115 (closed in finally)
    try:
        _cli(env, "migrate")
        _cli(env, "createstaff", "--email", STAFF_EMAIL, "--password", STAFF_PASSWORD, "--name", "Sam Staff")
        process = subprocess.Popen(  # noqa: S603
            [
                PYTHON,
                "-m",
                "uvicorn",
                "app.asgi:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_until_up(url, process, server)
        yield server
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        log_file.close()
        if request.session.testsfailed:
            print(f"\n--- e2e server log (last lines) ---\n{server.log_tail()}", file=sys.stderr)
        if pg_name and admin_url:
            try:
                _pg(admin_url, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            except Exception as error:  # noqa: BLE001 (cleanup must not hide the test result)
                print(f"could not drop {pg_name}: {error}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(autouse=True)
def clean_tables():
    """Overrides the suite-wide async `clean_tables`: the browser tests never touch the test
    database (the server has its own), and an async fixture cannot run here anyway: between
    sync calls Playwright marks its own event loop as running in this thread."""
    yield


@pytest.fixture(scope="module")
def browser(live_server):
    """One Chromium per test module. Module scope, not session: while sync Playwright is
    alive, pytest-asyncio cannot run async fixtures in this thread, so the browser must be
    gone before any other test directory's async fixtures run in the same pytest session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_context(browser, live_server):
    """Factory for browser contexts (one per simulated person); all closed after the test."""
    contexts = []

    def make(**options):
        options.setdefault("base_url", live_server.url)
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(**options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    target = os.environ.get("E2E_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def png_file(tmp_path_factory) -> Path:
    """A small, real PNG made with Pillow (a sketch-like gradient with a shape)."""
    from PIL import Image, ImageDraw

    path = tmp_path_factory.mktemp("upload") / "sketch.png"
    image = Image.new("RGB", (320, 240), (245, 239, 230))
    draw = ImageDraw.Draw(image)
    for x in range(320):
        draw.line([(x, 200), (x, 240)], fill=(217, 72 + x // 4, 15))
    draw.rounded_rectangle([90, 40, 230, 180], radius=24, outline=(60, 50, 40), width=6)
    draw.ellipse([135, 80, 185, 130], fill=(217, 72, 15))
    image.save(path, "PNG")
    return path


@dataclass
class Accounts:
    author_state: dict
    staff_state: dict


@pytest.fixture(scope="module")
def accounts(browser, live_server) -> Accounts:
    """A verified member who writes ideas and a logged-in staff member (browser storage states)."""
    from tests.e2e import flows

    states = []
    for role in ("author", "staff"):
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        try:
            if role == "author":
                flows.sign_up_verified(context, "Ada Author")
            else:
                flows.log_in(context.new_page(), live_server.staff_email, live_server.staff_password)
            states.append(context.storage_state())
        finally:
            context.close()
    return Accounts(author_state=states[0], staff_state=states[1])


@pytest.fixture
def approved_idea(new_context, accounts, png_file):
    """Factory: an idea written by the shared author and approved by staff, through the browser."""
    from tests.e2e import flows

    author = new_context(storage_state=accounts.author_state).new_page()
    staff = new_context(storage_state=accounts.staff_state).new_page()

    def make(title: str, *, image: bool = True) -> int:
        idea_id = flows.submit_idea(author, title=title, image=png_file if image else None)
        flows.approve_idea(staff, title, idea_id)
        return idea_id

    return make


@pytest.fixture
def campaign(new_context, accounts, approved_idea):
    """Factory: an approved idea greenlit by staff through the browser; returns (idea, campaign)."""
    from tests.e2e import flows

    staff = new_context(storage_state=accounts.staff_state).new_page()

    def make(title: str, **terms) -> tuple[int, int]:
        idea_id = approved_idea(title, image=False)
        return idea_id, flows.greenlight(staff, idea_id, **terms)

    return make


@pytest.fixture
def watched(new_context, live_server):
    """Browser contexts whose pages are all watched (console errors, failed requests, unsafe
    requests without the CSRF header): `watched.context(...)`, then `watched.assert_clean()`."""
    from tests.e2e import flows

    return flows.Watched(new_context, live_server)
