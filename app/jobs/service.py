"""Durable background jobs in our own database.

`enqueue()` writes a row in the caller's transaction, so a job exists if and only if the
change that caused it committed. Workers claim due rows (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, an IMMEDIATE transaction on SQLite), run the handler, and either finish the
row or put it back with exponential backoff. A claim expires (`locked_until`), so a job
whose worker died is picked up again: handlers must be safe to run twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import socket
import traceback
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from app.db import is_sqlite, raw, utcnow, write_transaction
from app.jobs.tables import Job
from app.settings import get_settings

log = logging.getLogger("crowdmade.jobs")

Handler = Callable[[dict[str, Any]], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}
# kind -> (interval in seconds); enqueued once per interval bucket across all workers.
PERIODIC: dict[str, int] = {}

WORKER_ID = f"{socket.gethostname()}:{random.randrange(1 << 30):x}"


def job_handler(kind: str, *, every_seconds: int | None = None) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        HANDLERS[kind] = func
        if every_seconds:
            PERIODIC[kind] = every_seconds
        return func

    return register


async def enqueue(
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    run_at: dt.datetime | None = None,
    unique_key: str | None = None,
    max_attempts: int = 8,
) -> bool:
    """Add a job. With a unique_key, a second enqueue of the same key is a no-op."""
    query = Job.insert(
        Job(
            kind=kind,
            payload=json.dumps(payload or {}),
            run_at=run_at or utcnow(),
            unique_key=unique_key,
            max_attempts=max_attempts,
        )
    )
    if unique_key is not None:
        query = query.on_conflict(target=Job.unique_key, action="DO NOTHING")
    rows = await query.returning(Job.id)
    return bool(rows)


async def cancel(unique_key: str) -> bool:
    """Drop a queued job that has become pointless (a pledge's expiry once it is confirmed); one
    that a worker has already claimed runs, and its handler finds nothing to do."""
    rows = await raw("DELETE FROM job WHERE unique_key = {} AND status = 'queued' RETURNING id", unique_key)
    return bool(rows)


@dataclass
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    lease: dt.datetime | None = None  # when this claim expires and another worker may take the job


def _claimed(row: dict[str, Any], lease: dt.datetime) -> ClaimedJob:
    payload = row["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload or "{}")
    return ClaimedJob(row["id"], row["kind"], payload, row["attempts"], row["max_attempts"], lease)


_lease: ContextVar[dt.datetime | None] = ContextVar("crowdmade_job_lease", default=None)


def current_lease() -> dt.datetime | None:
    """When the running job's claim expires (None outside a job). Work the job leases in turn (a
    charge attempt) should end its lease then too: the next worker claims the job only after
    this moment, and must find that work free, not still leased for a moment longer."""
    return _lease.get()


async def claim_jobs(limit: int) -> list[ClaimedJob]:
    now = utcnow()
    lease = now + dt.timedelta(seconds=get_settings().job_lease_seconds)
    due = "(status = 'queued' AND run_at <= {}) OR (status = 'running' AND locked_until < {})"
    if is_sqlite():
        async with write_transaction():
            rows = await raw(f"SELECT id FROM job WHERE {due} ORDER BY run_at LIMIT {{}}", now, now, limit)
            if not rows:
                return []
            ids = [r["id"] for r in rows]
            marks = ", ".join("{}" for _ in ids)
            rows = await raw(
                "UPDATE job SET status = 'running', attempts = attempts + 1, locked_until = {} "
                f"WHERE id IN ({marks}) RETURNING id, kind, payload, attempts, max_attempts",
                lease,
                *ids,
            )
    else:
        rows = await raw(
            "UPDATE job SET status = 'running', attempts = attempts + 1, locked_until = {} "
            f"WHERE id IN (SELECT id FROM job WHERE {due} ORDER BY run_at LIMIT {{}} FOR UPDATE SKIP LOCKED) "
            "RETURNING id, kind, payload, attempts, max_attempts",
            lease,
            now,
            now,
            limit,
        )
    return [_claimed(r, lease) for r in rows]


def backoff_seconds(attempts: int) -> float:
    base = min(3600.0, 2.0 ** attempts)
    return base * (0.75 + random.random() / 2)


async def run_job(job: ClaimedJob) -> bool:
    handler = HANDLERS.get(job.kind)
    lease = _lease.set(job.lease)
    try:
        if handler is None:
            raise LookupError(f"no handler for job kind {job.kind!r}")
        await handler(job.payload)
    except Exception as error:  # a failing job must never stop the worker
        final = job.attempts >= job.max_attempts
        log.warning("job %s (%s) attempt %s failed: %s", job.id, job.kind, job.attempts, error)
        await Job.update(
            {
                Job.status: "failed" if final else "queued",
                Job.run_at: utcnow() + dt.timedelta(seconds=backoff_seconds(job.attempts)),
                Job.locked_until: None,
                Job.last_error: "".join(traceback.format_exception_only(error))[-2000:],
                Job.finished_at: utcnow() if final else None,
            }
        ).where(Job.id == job.id)
        return False
    finally:
        _lease.reset(lease)
    await Job.update(
        {Job.status: "done", Job.finished_at: utcnow(), Job.locked_until: None}
    ).where(Job.id == job.id)
    return True


async def enqueue_periodic(now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    epoch = int(now.timestamp())
    for kind, every in PERIODIC.items():
        bucket = epoch // every
        await enqueue(kind, {}, unique_key=f"periodic:{kind}:{bucket}", max_attempts=1)


async def run_due_jobs(limit: int = 20) -> int:
    """Claim and run what is due now; returns how many ran. Tests call this directly."""
    jobs = await claim_jobs(limit)
    for job in jobs:
        await run_job(job)
    return len(jobs)


async def drain(max_rounds: int = 50) -> int:
    """Run jobs until none are due (tests and the demo loader)."""
    total = 0
    for _ in range(max_rounds):
        ran = await run_due_jobs()
        total += ran
        if not ran:
            break
    return total


async def run_worker(stop: asyncio.Event, *, concurrency: int = 4, poll_seconds: float = 1.0) -> None:
    log.info("job worker %s started (concurrency %s)", WORKER_ID, concurrency)
    last_periodic = 0.0
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            if loop.time() - last_periodic >= 30:
                await enqueue_periodic()
                last_periodic = loop.time()
            jobs = await claim_jobs(concurrency)
            if jobs:
                await asyncio.gather(*(run_job(job) for job in jobs))
                continue
        except Exception:
            log.exception("job worker loop error; retrying")
        try:
            await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
        except TimeoutError:
            pass
    log.info("job worker %s stopped", WORKER_ID)


@job_handler("purge_finished_jobs", every_seconds=3600)
async def purge_finished_jobs(payload: dict[str, Any]) -> None:
    cutoff = utcnow() - dt.timedelta(days=7)
    await Job.delete().where((Job.status == "done") & (Job.finished_at < cutoff))
