"""PostgreSQL restarted under the app (issue 7): while it is down pages answer a calm 503 (API:
JSON) instead of a stack trace, the app recovers by itself, no committed write is lost, and the
integrity audit passes. PostgreSQL only (the embedded SQLite cannot go away)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from app.audit import format_report, run_audit
from app.db import is_sqlite
from app.ideas import service as ideas
from app.ideas.tables import Idea
from tests.factories import login, make_idea, make_member

pytestmark = [pytest.mark.serial,
              pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                                 reason="PostgreSQL only: restarts the server")]


def _cluster(action: str) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action, *(
        ["-m", "fast"] if action == "stop" else [])], check=True, capture_output=True, timeout=60)


async def test_postgres_restart_gives_503_then_recovers_without_losing_writes(client):
    assert not is_sqlite()
    author = await make_member("Restart Author")
    voter = await make_member("Restart Voter")
    idea_id = await make_idea(author)
    await ideas.vote(voter, idea_id)  # committed before the outage
    await login(client, voter.email)
    assert (await client.get("/ideas")).status_code == 200

    await asyncio.to_thread(_cluster, "stop")
    try:
        page = await client.get("/ideas")
        assert page.status_code == 503 and "Back in a moment" in page.text and "Traceback" not in page.text
        assert page.headers["retry-after"] == "5"
        api = await client.get("/api/v1/ideas")
        assert api.status_code == 503 and "briefly unavailable" in api.json()["detail"]
        client.cookies.clear()
        assert (await client.get("/")).status_code == 503  # a visitor too
    finally:
        await asyncio.to_thread(_cluster, "start")

    for _ in range(40):  # the pool replaces its dead connections by itself
        if (await client.get("/ideas")).status_code == 200:
            break
        await asyncio.sleep(0.25)
    assert (await client.get(f"/ideas/{idea_id}")).status_code == 200
    assert (await Idea.select(Idea.vote_count).where(Idea.id == idea_id).first())["vote_count"] == 1
    report = await run_audit()
    assert report.ok, format_report(report)
