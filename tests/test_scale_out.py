"""Scale-out: two web processes and two job workers on one PostgreSQL database and one Redis.

The production shape (README: `crowdmade serve` behind a load balancer, `crowdmade worker` as
many times as you like) only works if nothing that matters lives in one process: votes are
counted in the database, sessions are database rows, the live progress stream is fanned out
through Redis pub/sub, and rate-limit counters are Redis keys. Every check below does
something through one process and looks at the effect through the other, over real HTTP.

PostgreSQL + Redis only: on SQLite (the default suite run) the tests are skipped.
The processes use this run's test database (tests/conftest.py) and a Redis database number of
their own (SCALE_OUT_REDIS_URL, default redis://127.0.0.1:6379/13) that is flushed before and
after; nothing else on the Redis server is touched.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.factories import PASSWORD, csrf_from, make_idea, make_member
from tests.support.processes import (
    AppProcess,
    eventually,
    free_port,
    start_process,
    stop_processes,
    wait_until_up,
)

REDIS_URL = os.environ.get("SCALE_OUT_REDIS_URL", "redis://127.0.0.1:6379/13")
LIVE_CHANNEL = "crowdmade:campaigns"  # app/campaigns/live.py CHANNEL
VOTERS = 40


class Cluster:
    def __init__(self, a: str, b: str, processes: list[AppProcess]) -> None:
        self.a, self.b, self.processes = a, b, processes

    def logs(self) -> str:
        return "\n".join(p.log_tail() for p in self.processes)


def _redis():
    import redis

    return redis.Redis.from_url(REDIS_URL)


@pytest.fixture(scope="module")
def cluster(request, database) -> Iterator[Cluster]:
    if os.environ["DATABASE_URL"].startswith("sqlite:"):
        pytest.skip("scale-out needs the production shape (PostgreSQL + Redis); this run uses SQLite "
                    "(set DATABASE_URL=postgresql://... to run it)")
    request.getfixturevalue("localstripe")  # the app processes use it through STRIPE_* (tests/conftest.py)
    client = _redis()
    try:
        client.ping()
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({error}); scale-out tests need it on PostgreSQL runs")
    client.flushdb()  # only this database number

    env = {**os.environ, "REDIS_URL": REDIS_URL, "JOBS_IN_PROCESS": "false", "PYTHONUNBUFFERED": "1"}
    port_a, port_b = free_port(), free_port()
    processes: list[AppProcess] = []
    try:
        # One of each entry point: the production command and plain uvicorn.
        processes.append(start_process("web-a", ["-m", "app.cli", "serve", "--workers", "1", "--host", "127.0.0.1",
                                                 "--port", str(port_a)], env))
        processes.append(start_process("web-b", ["-m", "uvicorn", "app.asgi:create_app", "--factory",
                                                 "--host", "127.0.0.1", "--port", str(port_b)], env))
        processes.append(start_process("worker-1", ["-m", "app.cli", "worker", "--concurrency", "2"], env))
        processes.append(start_process("worker-2", ["-m", "app.cli", "worker", "--concurrency", "2"], env))
        a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
        wait_until_up(processes[0], a + "/login")
        wait_until_up(processes[1], b + "/login")
        for worker in processes[2:]:
            if worker.process.poll() is not None:
                raise RuntimeError(f"{worker.name} exited with {worker.process.returncode}:\n{worker.log_tail()}")
        yield Cluster(a, b, processes)
    finally:
        stop_processes(processes)
        client.flushdb()
        client.close()


async def test_votes_split_across_two_processes_stay_exact(cluster, stripe):
    from app.accounts.service import create_api_token
    from app.ideas.tables import Idea, Vote

    author = await make_member("Scale Author")
    idea_id = await make_idea(author)
    members = [await make_member(f"Scale Voter {i}") for i in range(VOTERS)]
    tokens = [await create_api_token(m.id, "scale-out") for m in members]

    async with httpx.AsyncClient(base_url=cluster.a, timeout=30) as a, \
            httpx.AsyncClient(base_url=cluster.b, timeout=30) as b:
        async def vote(i: int, token: str, via: httpx.AsyncClient) -> httpx.Response:
            return await via.put(f"/api/v1/ideas/{idea_id}/vote", headers={"Authorization": f"Bearer {token}"})

        responses = await asyncio.gather(*(vote(i, t, a if i % 2 else b) for i, t in enumerate(tokens)))
        assert [r.status_code for r in responses] == [200] * VOTERS, (
            [r.text[:200] for r in responses if r.status_code != 200], cluster.logs())
        # The counter update is serialized by the row lock: each vote saw its own new total.
        assert sorted(r.json()["vote_count"] for r in responses) == list(range(1, VOTERS + 1))

        # Voting again (idempotent), through the other process this time: nothing changes.
        again = await asyncio.gather(*(vote(i, t, b if i % 2 else a) for i, t in enumerate(tokens[:10])))
        assert {r.status_code for r in again} == {200}
        assert {r.json()["vote_count"] for r in again} == {VOTERS}

        seen = [(await via.get(f"/api/v1/ideas/{idea_id}")).json()["vote_count"] for via in (a, b)]
    assert seen == [VOTERS, VOTERS]
    row = await Idea.select(Idea.vote_count).where(Idea.id == idea_id).first()
    assert row["vote_count"] == VOTERS
    assert await Vote.count().where(Vote.idea == idea_id) == VOTERS


async def _login_form(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await client.get("/login")
    assert page.status_code == 200, page.text[:300]
    return await client.post("/login", data={"email": email, "password": password,
                                             "_csrf_token": csrf_from(page.text)})


async def test_a_session_from_one_process_is_valid_on_the_other(cluster, stripe):
    member = await make_member("Sessiona Crossprocess")
    async with httpx.AsyncClient(base_url=cluster.a, timeout=15) as a:
        response = await _login_form(a, member.email, PASSWORD)
        assert response.status_code in (302, 303), response.text[:500]
        session = response.cookies.get("cm_session")
        assert session and not session.startswith("a."), response.headers
        assert (await a.get("/account")).status_code == 200

        # The same cookie, sent to the other process.
        async with httpx.AsyncClient(base_url=cluster.b, timeout=15, cookies={"cm_session": session}) as b:
            page = await b.get("/account")
            assert page.status_code == 200, page.text[:500]
            assert "Sessiona Crossprocess" in page.text

            # Logging out on B ends the session for A too (one row in the database).
            out = await b.post("/logout", data={"_csrf_token": csrf_from(page.text)})
            assert out.status_code in (302, 303), out.text[:300]
        after = await a.get("/account")
        assert after.status_code in (302, 303, 401), after.status_code
        assert "Sessiona Crossprocess" not in after.text


async def test_a_live_update_from_one_process_reaches_a_page_open_on_the_other(cluster, stripe):
    from app.mail.tables import EmailMessage
    from tests.campaigns.helpers import make_campaign, save_card

    campaign_id, campaign = await make_campaign(goal=5)
    variant_id = campaign["variants"][0]["id"]
    backer = await make_member("Scale Backer")
    quantity = 2
    redis_client = _redis()
    baseline = redis_client.pubsub_numsub(LIVE_CHANNEL)[0][1]

    async with httpx.AsyncClient(base_url=cluster.a, timeout=15) as a, \
            httpx.AsyncClient(base_url=cluster.b, timeout=httpx.Timeout(15, read=20)) as b:
        async with b.stream("GET", f"/campaigns/{campaign_id}/live") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            # B subscribes to the Redis channel when the first page opens the stream; a message
            # published before that would be lost, so wait until Redis has the subscriber.
            async def subscribed() -> bool:
                return redis_client.pubsub_numsub(LIVE_CHANNEL)[0][1] > baseline

            try:
                await eventually(subscribed, within=5, what="process B to subscribe to the live channel")
            except AssertionError:
                pass  # B may already have been subscribed (the baseline then includes it)

            token = await a.post("/api/v1/auth/tokens", json={"email": backer.email, "password": PASSWORD})
            assert token.status_code == 201, token.text
            auth = {"Authorization": f"Bearer {token.json()['token']}"}
            start = await a.post(f"/api/v1/campaigns/{campaign_id}/pledges", headers=auth,
                                 json={"variant": variant_id, "quantity": quantity, "consent": True})
            assert start.status_code == 201, (start.text, cluster.logs())
            await save_card(start.json()["setup_intent_client_secret"])
            confirmed = await a.post(f"/api/v1/pledges/{start.json()['pledge_id']}/confirm", headers=auth)
            assert confirmed.status_code == 200, (confirmed.text, cluster.logs())
            assert confirmed.json()["status"] == "active"

            wanted = f'data-testid="pledged-units">{quantity}<'

            async def progress_event() -> str:
                event = ""
                async for line in stream.aiter_lines():
                    if line.startswith("event:"):
                        event = line.partition(":")[2].strip()
                    elif line.startswith("data:") and event == "progress" and wanted in line:
                        return line
                    elif not line:
                        event = ""
                raise AssertionError("the stream ended")

            try:
                data = await asyncio.wait_for(progress_event(), timeout=5)
            except TimeoutError:
                raise AssertionError(f"no progress event with {wanted} on B within 5 s\n{cluster.logs()}") from None
            assert f'id="progress-{campaign_id}"' in data

        api = (await b.get(f"/api/v1/campaigns/{campaign_id}")).json()
        assert (api["pledged_units"], api["backers"]) == (quantity, 1)
    redis_client.close()

    # A job worker (not the web process: JOBS_IN_PROCESS=false) delivers the confirmation email.
    async def delivered():
        rows = await EmailMessage.select(EmailMessage.status).where(EmailMessage.recipient == backer.email.lower())
        return rows and all(r["status"] == "sent" for r in rows)

    await eventually(delivered, within=10, what="a worker to deliver the pledge email")


async def test_login_rate_limit_is_shared_through_redis(cluster, stripe):
    member = await make_member(f"Throttle {uuid.uuid4().hex[:6]}")
    async with httpx.AsyncClient(base_url=cluster.a, timeout=15) as a, \
            httpx.AsyncClient(base_url=cluster.b, timeout=15) as b:
        for attempt in range(5):
            wrong = await _login_form(a, member.email, "not the password")
            assert wrong.status_code == 400, (attempt, wrong.status_code, wrong.text[:300])
        blocked = await _login_form(b, member.email, PASSWORD)  # the right password, other process
    assert blocked.status_code == 429, (blocked.status_code, blocked.text[:500])
    assert "Too many failed attempts" in blocked.text
    redis_client = _redis()
    try:
        assert int(redis_client.get(f"throttle:login:acct:{member.email.lower()}")) == 6
    finally:
        redis_client.close()


async def test_two_workers_share_the_job_queue_without_running_a_job_twice(cluster, stripe):
    from app.db import write_transaction
    from app.jobs.tables import Job
    from app.mail.service import queue_email
    from app.mail.tables import EmailMessage

    run = uuid.uuid4().hex[:8]
    async with write_transaction():
        for i in range(30):
            await queue_email(kind="scale_out", subject_ref=f"scale:{run}:{i}", to=f"jobs.{i}@example.com",
                              subject=f"Scale-out {i}", template="notification",
                              context={"name": "Worker test", "title": f"Job {i}", "body": "", "link": "",
                                       "kind_label": "Tests", "unsubscribe": "http://testserver.local/x"})

    async def all_done():
        rows = await Job.select(Job.status, Job.attempts).where(Job.kind == "deliver_email")
        return len(rows) >= 30 and all(r["status"] == "done" for r in rows) and rows

    rows = await eventually(all_done, within=15, what="the workers to run every deliver_email job")
    assert {r["attempts"] for r in rows} == {1}  # claimed once each (FOR UPDATE SKIP LOCKED)
    sent = await EmailMessage.count().where((EmailMessage.kind == "scale_out") & (EmailMessage.status == "sent"))
    assert sent == 30

