"""The `crowdmade` command: run, serve, worker, migrate, demo, createstaff."""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import signal
import signal as signals
import socket
import subprocess
import sys
import time

import click
import httpx
import uvicorn
from piccolo.apps.migrations.commands.forwards import run_forwards

from app.accounts.service import create_staff
from app.audit import format_report, run_audit
from app.db import start_database, stop_database
from app.demo import DEMO_MEMBER, DEMO_STAFF, DEMO_SWEDISH, load_demo  # noqa: E402
from app.demo_scale import SCALES, load_scale
from app.errors import FormError
from app.ideas.service import ensure_categories
from app.jobs.service import run_worker
from app.payments.service import HANDLED
from app.settings import PROJECT_ROOT, SettingsError, get_settings, set_environment


def _settings_or_exit():
    try:
        return get_settings()
    except SettingsError as error:
        click.echo(click.style(str(error), fg="red"), err=True)
        sys.exit(2)


async def migrate_database() -> None:
    response = await run_forwards(app_name="crowdmade", migration_id="all", fake=False)
    if not response.success:
        raise click.ClickException(f"migrations failed: {response.message}")
    await start_database()
    try:
        await ensure_categories()
    finally:
        await stop_database()


@click.group()
def main() -> None:
    """Crowdmade: community-funded commerce."""


@main.command()
def migrate() -> None:
    """Apply database migrations."""
    _settings_or_exit()
    asyncio.run(migrate_database())
    click.echo("Database is up to date.")


@main.command()
@click.option("--seed", default=42, show_default=True, help="Random seed: the same seed gives the same data.")
@click.option("--scale", default="1", show_default=True,
              help="A number multiplies the demo data; large, small or tiny bulk-loads benchmark data "
                   "(large: 10,000 members, 100,000 ideas, 1,000,000 votes, ...; reused when present).")
@click.option("--reset", is_flag=True, help="Load even if demo data is already present (demo data only).")
def demo(seed: int, scale: str, reset: bool) -> None:
    """Load demo data: members, ideas in every state, votes, points; or benchmark-scale data."""
    _settings_or_exit()

    if scale in SCALES:
        asyncio.run(migrate_database())
        try:
            result = asyncio.run(load_scale(scale, seed=seed))
        except RuntimeError as error:
            raise click.ClickException(str(error)) from None
        if result["loaded"]:
            rows = ", ".join(f"{table} {n:,}" for table, n in result["rows"].items())
            click.echo(f"Loaded the {scale} data in {result['seconds']:.0f} s ({rows}).")
        else:
            click.echo(f"The {scale} data is already there: reused.")
        click.echo(f"Audit: all invariants hold ({result.get('audit_seconds', 0):.0f} s). "
                   f"Peak RSS {result['peak_rss_mb']:.0f} MB.")
        return
    try:
        factor = int(scale)
    except ValueError:
        raise click.BadParameter(f"use a number or one of {', '.join(SCALES)}", param_hint="--scale") from None

    asyncio.run(migrate_database())
    loaded = asyncio.run(load_demo(seed=seed, scale=factor, force=reset))
    click.echo("Demo data loaded." if loaded else "Demo data is already there (use --reset to load again).")


@main.command()
@click.option("--email", required=True)
@click.option("--password", required=True, prompt=True, hide_input=True)
@click.option("--name", default="Staff", show_default=True)
@click.option("--admin", is_flag=True, help="Also an admin (manages staff and settings).")
def createstaff(email: str, password: str, name: str, admin: bool) -> None:
    """Create a staff account (or make an existing member staff)."""
    _settings_or_exit()

    async def go() -> int:
        await start_database()
        try:
            return await create_staff(email=email, password=password, display_name=name, admin=admin)
        finally:
            await stop_database()

    asyncio.run(migrate_database())
    try:
        member_id = asyncio.run(go())
    except FormError as error:
        raise click.ClickException("; ".join(f"{k}: {v}" for k, v in error.errors.items())) from None
    click.echo(f"Staff account #{member_id} ready: {email}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=None, type=int, help="Default: $PORT or 8000.")
@click.option("--no-demo", is_flag=True, help="Do not load demo data on first start.")
def run(host: str, port: int | None, no_demo: bool) -> None:
    """Development: migrate, load demo data on first start, serve with jobs in-process."""
    settings = _settings_or_exit()
    port = port or settings.port
    base = f"http://{host}:{port}"
    if settings.base_url == "http://127.0.0.1:8000" and base != settings.base_url:
        set_environment(BASE_URL=base)
    if not settings.stripe_secret_key:
        start_localstripe(base)
    asyncio.run(migrate_database())
    if not no_demo:
        if asyncio.run(load_demo(seed=42, scale=1, force=False)):
            click.echo("Loaded demo data.")

    click.echo("")
    click.echo(click.style(f"  Crowdmade is running at {base}", fg="green", bold=True))
    click.echo(f"  Member login: {DEMO_MEMBER[0]} / {DEMO_MEMBER[1]}")
    click.echo(f"  Staff login:  {DEMO_STAFF[0]} / {DEMO_STAFF[1]}")
    click.echo(f"  Svenska:      {DEMO_SWEDISH[0]} / {DEMO_SWEDISH[1]}  (pages and emails in Swedish)")
    click.echo(f"  Emails:       {base}/dev/mailbox")
    click.echo(f"  API docs:     {base}/schema")
    click.echo("")
    uvicorn.run("app.asgi:create_app", factory=True, host=host, port=port, log_level="info", proxy_headers=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends it SIGTERM when `crowdmade run` ends, however it ends
    (uvicorn re-raises SIGTERM after its shutdown, so `atexit` does not run then)."""

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signals.SIGTERM)
    except OSError:  # not Linux: atexit still covers Ctrl-C
        pass


def start_localstripe(base_url: str) -> None:
    """Development without Stripe keys: localstripe (a GPL dev tool) as a child process.

    It is started as a separate program from the dev/test tooling, never imported here.
    """

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.localstripe_server", "--port", str(port)], cwd=PROJECT_ROOT,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 (only async-signal-safe work: one prctl call)
    )
    atexit.register(process.terminate)  # Ctrl-C; a SIGTERM to us reaches it through PR_SET_PDEATHSIG
    api = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{api}/js.stripe.com/v3/", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    secret = "whsec_localstripe_dev"

    # Subscribed to the events the app handles, as a Stripe dashboard endpoint is (README).
    httpx.post(f"{api}/_config/webhooks/crowdmade", json={"url": f"{base_url}/webhooks/stripe", "secret": secret,
                                                          "events": sorted(HANDLED)}, timeout=5)
    set_environment(
        STRIPE_SECRET_KEY="sk_test_localstripe", STRIPE_PUBLISHABLE_KEY="pk_test_localstripe",
        STRIPE_WEBHOOK_SECRET=secret, STRIPE_API_BASE=api, STRIPE_JS_URL=f"{api}/js.stripe.com/v3/",
    )
    click.echo(f"  Stripe:       localstripe at {api} (test card 4242 4242 4242 4242)")


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)  # noqa: S104 (a production server listens publicly)
@click.option("--port", default=None, type=int)
@click.option("--workers", default=2, show_default=True)
def serve(host: str, port: int | None, workers: int) -> None:
    """Production: N web workers (uvicorn); run `crowdmade worker` for background jobs."""
    settings = _settings_or_exit()
    if not settings.is_production:
        click.echo(click.style(f"  Warning: CROWDMADE_ENV is {settings.crowdmade_env!r}; set CROWDMADE_ENV=production "
                               "for a real deployment (Secure cookies, HSTS, no dev mailbox).", fg="yellow"), err=True)
    set_environment(JOBS_IN_PROCESS="false")

    uvicorn.run(
        "app.asgi:create_app",
        factory=True,
        host=host,
        port=port or settings.port,
        workers=workers,
        proxy_headers=False,
        log_level="info",
    )


@main.command()
@click.option("--concurrency", default=4, show_default=True)
def worker(concurrency: int) -> None:
    """Run background jobs (emails, scheduled moves). Run as many as you like."""
    _settings_or_exit()
    import app.handlers  # noqa: F401  (every job handler and event subscriber)

    async def go() -> None:
        await start_database()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await run_worker(stop, concurrency=concurrency)
        finally:
            await stop_database()

    asyncio.run(go())


@main.command()
@click.option("--stripe/--no-stripe", default=False, help="Also check every recorded payment with Stripe.")
def audit(stripe: bool) -> None:
    """Check every invariant (counts, totals, ledger, stock, charges, refunds, emails, jobs);
    exits 1 and names each violation when one fails."""
    _settings_or_exit()

    async def go():
        await start_database()
        try:
            return await run_audit(stripe=stripe)
        finally:
            await stop_database()

    report = asyncio.run(go())
    click.echo(format_report(report))
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
