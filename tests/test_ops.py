"""Health, readiness, metrics and the integrity audit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from app.audit import run_audit
from app.db import raw, utcnow
from app.ideas import service as ideas
from app.settings import get_settings
from tests.factories import login, make_idea, make_member


async def test_healthz_and_readyz(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["migrations_pending"] == []
    assert "set-cookie" not in ready.headers  # probes get no visitor session


async def test_favicon_ico_points_at_the_svg_icon(client):
    response = await client.get("/favicon.ico")
    assert response.status_code == 301 and response.headers["location"] == "/static/img/favicon.svg"
    icon = await client.get(response.headers["location"])
    assert icon.status_code == 200 and "svg" in icon.headers["content-type"]


async def test_readyz_reports_a_pending_migration(client):
    rows = await raw("SELECT name FROM migration ORDER BY name DESC LIMIT 1")
    await raw("DELETE FROM migration WHERE name = {}", rows[0]["name"])
    try:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["migrations_pending"] == [rows[0]["name"]]
    finally:
        await raw("INSERT INTO migration (name, app_name, ran_on) VALUES ({}, 'crowdmade', {})", rows[0]["name"],
                  utcnow().replace(tzinfo=None))


async def test_metrics_need_the_token(client, monkeypatch):
    assert (await client.get("/metrics")).status_code == 401  # no token configured: closed
    monkeypatch.setattr(get_settings(), "metrics_token", "s3cret-metrics")
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
    await client.get("/ideas")
    scraped = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics"})
    assert scraped.status_code == 200
    for name in ("crowdmade_jobs_queued", "crowdmade_emails_pending", "crowdmade_pledges_charging",
                 "crowdmade_requests_total", "crowdmade_request_duration_seconds"):
        assert name in scraped.text


async def test_audit_passes_after_activity_and_names_a_broken_counter():
    author = await make_member("Audit Author")
    idea_id = await make_idea(author)
    voters = [await make_member() for _ in range(8)]
    await asyncio.gather(*(ideas.vote(v, idea_id) for v in voters))
    assert (await run_audit()).ok

    await raw("UPDATE idea SET vote_count = vote_count + 1 WHERE id = {}", idea_id)
    await raw("UPDATE member SET points_balance = points_balance + 5 WHERE id = {}", voters[0].id)
    report = await run_audit()
    broken = {(v.check, v.subject) for v in report.violations}
    assert ("idea_votes", f"idea {idea_id}") in broken
    assert ("points_balance", f"member {voters[0].id}") in broken

    # The command line names the violation and exits non-zero (what CI and operators run).
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "app.cli", "audit"], capture_output=True,
                                   text=True, env=os.environ.copy(), timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"idea {idea_id}: vote_count 9 but 8 votes" in done.stdout


async def test_staff_see_the_audit_page(client):
    member = await make_member("Audit Member")
    await login(client, member.email)
    assert (await client.get("/staff/audit")).status_code == 403
    staff = await make_member("Audit Staff", staff=True)
    await client.post("/logout", data={})
    client.cookies.clear()
    await login(client, staff.email)
    page = await client.get("/staff/audit")
    assert page.status_code == 200
    assert "All invariants hold." in page.text


def test_production_logs_are_json_lines(tmp_path):
    """A production process logs one JSON object per line (what a log shipper expects)."""
    import json

    env = {**os.environ, "CROWDMADE_ENV": "production", "SECRET_KEY": "x" * 40, "SMTP_URL": "smtp://127.0.0.1:2525",
           "STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_PUBLISHABLE_KEY": "pk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"}
    script = ("import logging, time; from app.asgi import create_app; app = create_app(manage_database=False); "
              "app.logger.info('hello from production'); logging.getLogger('crowdmade.test').warning('shipped'); "
              "time.sleep(0.5)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    lines = [line for line in (done.stderr + done.stdout).splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    assert {"message": "shipped", "level": "WARNING", "logger": "crowdmade.test"}.items() <= records[-1].items(), done.stderr
