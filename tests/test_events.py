"""Domain events (app/events.py): an inline subscriber commits or rolls back with the change; a
deferred one is a durable job written in the change's transaction, run after it, retried when it
fails and never lost; every event has a subscriber and a row in the README's table."""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

import app.handlers  # noqa: F401  (every subscriber)
from app import events
from app.accounts.events import ProfileCompleted
from app.accounts.tables import Member
from app.db import utcnow, write_transaction
from app.jobs import service as jobs
from app.jobs.tables import Job
from app.points.tables import MemberBadge
from tests.factories import make_member

ROOT = Path(__file__).resolve().parents[1]
EVENT_MODULES = sorted(f"app.{path.parent.name}.events" for path in (ROOT / "app").glob("*/events.py"))


@dataclass(frozen=True)
class ParcelScanned:  # an event of this test only
    order_id: int
    where: str


SEEN: list[ParcelScanned] = []
FAILURES: list[str] = []


@events.subscribe(ParcelScanned, deferred=True)
async def remember_scan(event: ParcelScanned) -> None:
    if FAILURES:
        raise RuntimeError(FAILURES.pop())
    SEEN.append(event)


@pytest.fixture(autouse=True)
def _reset():
    SEEN.clear()
    FAILURES.clear()


async def balance(member_id: int) -> int:
    return (await Member.select(Member.points_balance).where(Member.id == member_id).first())["points_balance"]


async def test_an_inline_subscriber_rolls_back_with_the_change(client):
    member = await make_member("Event Member")
    with pytest.raises(RuntimeError):
        async with write_transaction():
            await events.emit(ProfileCompleted(member.id))
            raise RuntimeError("the profile change failed")
    assert await balance(member.id) == 0
    assert not await MemberBadge.exists().where(MemberBadge.member == member.id)

    async with write_transaction():
        await events.emit(ProfileCompleted(member.id))
    assert await balance(member.id) == 25
    assert await MemberBadge.exists().where((MemberBadge.member == member.id) & (MemberBadge.badge == "profile_complete"))
    async with write_transaction():  # the same change reported twice awards once
        await events.emit(ProfileCompleted(member.id))
    assert await balance(member.id) == 25


async def test_a_deferred_subscriber_is_a_job_of_the_change(client):
    kind = "event:ParcelScanned:tests.test_events.remember_scan"
    with pytest.raises(RuntimeError):
        async with write_transaction():
            await events.emit(ParcelScanned(1, "Malmö"))
            raise RuntimeError("the change failed")
    assert await Job.count().where(Job.kind == kind) == 0

    async with write_transaction():
        await events.emit(ParcelScanned(7, "Göteborg"))
        assert SEEN == []  # not during the change
    assert await Job.count().where(Job.kind == kind) == 1
    await jobs.drain()
    assert SEEN == [ParcelScanned(7, "Göteborg")]
    assert (await Job.select(Job.status).where(Job.kind == kind).first())["status"] == "done"


async def test_a_failing_deferred_subscriber_keeps_its_event_and_runs_again(client):
    kind = "event:ParcelScanned:tests.test_events.remember_scan"
    FAILURES.append("the carrier's API is down")
    async with write_transaction():
        await events.emit(ParcelScanned(9, "Umeå"))
    await jobs.run_due_jobs()
    assert SEEN == []
    job = await Job.select(Job.status, Job.last_error, Job.payload).where(Job.kind == kind).first()
    assert job["status"] == "queued" and "carrier's API is down" in job["last_error"]
    assert json.loads(job["payload"]) == {"order_id": 9, "where": "Umeå"}  # the event, kept
    await Job.update({Job.run_at: utcnow() - dt.timedelta(seconds=1)}).where(Job.kind == kind)
    await jobs.run_due_jobs()
    assert SEEN == [ParcelScanned(9, "Umeå")]


def _domain_events() -> list[type]:
    found = []
    for name in EVENT_MODULES:
        module = importlib.import_module(name)
        found += [cls for _, cls in inspect.getmembers(module, inspect.isclass) if cls.__module__ == name]
    return found


def test_every_event_is_heard_and_listed_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in readme.splitlines() if line.startswith("| `")}
    found = _domain_events()
    assert len(found) >= 10
    for event in found:
        heard = events.subscribers(event)
        assert heard, f"{event.__name__}: nothing subscribes to it"
        row = rows.get(event.__name__)
        assert row, f"README: no row for {event.__name__} in the domain events table"
        assert event.__module__.split(".")[1] in row, f"README: {event.__name__}'s emitter"
        for subscriber in heard:
            assert subscriber.split(" ")[0].rsplit(".", 1)[1] in row, f"README: {event.__name__} -> {subscriber}"
