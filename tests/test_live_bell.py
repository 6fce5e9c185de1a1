"""The bell's unread count is pushed (issue 5): a notification written in a transaction tells the
member's open pages once it commits (never after a rollback), in-process or through Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from app.campaigns import live
from app.db import after_commit, write_transaction
from app.notifications import service as notifications
from app.settings import get_settings
from tests.factories import make_member


async def test_after_commit_runs_only_after_a_commit():
    ran: list[str] = []

    async def mark(label: str) -> None:
        ran.append(label)

    async with write_transaction():
        after_commit(lambda: mark("committed"))
        async with write_transaction():  # a nested call joins: still after the outer commit
            after_commit(lambda: mark("nested"))
        assert ran == []
    assert ran == ["committed", "nested"]
    with pytest.raises(RuntimeError):
        async with write_transaction():
            after_commit(lambda: mark("rolled back"))
            raise RuntimeError("boom")
    await asyncio.sleep(0)
    assert "rolled back" not in ran


async def test_a_notification_pushes_the_bell_after_commit():
    member = await make_member("Bell Reader")
    async with live.subscribe_member(member.id) as queue:
        async with write_transaction():
            assert await notifications.notify(member.id, "reply", key="bell:test:1", title="Someone replied")
            await asyncio.sleep(0.05)
            assert queue.empty()  # not before the commit: the page would re-read the old count
        assert await asyncio.wait_for(queue.get(), timeout=2) == member.id
        # the same key again writes nothing and pushes nothing
        assert not await notifications.notify(member.id, "reply", key="bell:test:1", title="Someone replied")
        await asyncio.sleep(0.05)
        assert queue.empty()
    assert await notifications.unread_count(member.id) == 1


async def test_the_bell_crosses_processes_through_redis(monkeypatch):
    monkeypatch.setattr(get_settings(), "redis_url", "redis://127.0.0.1:6379/0")
    monkeypatch.setattr(live, "CHANNEL", f"crowdmade:test:{uuid.uuid4().hex}")
    monkeypatch.setattr(live, "_redis", None)
    monkeypatch.setattr(live, "_redis_listener", None)
    async with live.subscribe_member(77) as queue, live.subscribe(77) as campaign_queue:
        received = None
        for _ in range(50):  # pub/sub drops messages sent before the listener has subscribed
            await live.publish_member(77)
            try:
                received = await asyncio.wait_for(queue.get(), timeout=0.2)
                break
            except TimeoutError:
                continue
        assert received == 77
        assert campaign_queue.empty()  # a member's event is not campaign 77's
    live._redis_listener.cancel()


async def test_the_page_listens_for_the_bell(client):
    from tests.factories import login

    member = await make_member("Bell Page")
    await login(client, member.email)
    page = (await client.get("/ideas")).text
    assert 'sse-connect="/notifications/live"' in page and 'hx-trigger="load, sse:bell' in page
    client.cookies.clear()
    assert (await client.get("/notifications/live", follow_redirects=False)).status_code in (303, 401)


async def test_the_bell_refreshing_does_not_use_up_a_flash_message(client):
    """The bell re-reads itself when told; if that happens while a redirect carries a flash message,
    the message must still reach the page it was meant for."""
    from tests.factories import csrf_from, login

    member = await make_member("Flash Keeper")
    await login(client, member.email)
    token = csrf_from((await client.get("/account")).text)
    saved = await client.post("/account", data={"display_name": "Flash Keeper", "handle": member.handle,
                                                "bio": "", "location": "", "_csrf_token": token})
    assert saved.status_code == 303
    bell = await client.get("/notifications/bell", headers={"HX-Request": "true"})
    assert bell.status_code == 200 and "cm_flash" not in bell.headers.get("set-cookie", "")
    page = await client.get(saved.headers["location"])
    assert 'class="flash' in page.text
