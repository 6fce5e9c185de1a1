"""Redis down (issue 7): shared rate limits fall back to the process and live updates to the
in-process fan-out, with a warning in the log and no error for members."""

from __future__ import annotations

import logging

from app import throttle
from app.campaigns import live
from app.settings import get_settings
from tests.campaigns.helpers import make_campaign, pledge_with_card
from tests.factories import csrf_from, login, make_member
from tests.support.processes import free_port


async def test_redis_down_degrades_without_errors(client, stripe, monkeypatch, caplog):
    monkeypatch.setattr(get_settings(), "redis_url", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    monkeypatch.setattr(get_settings(), "login_max_failures", 2)
    throttle.counters.cache_clear()
    monkeypatch.setattr(live, "_redis", None)
    monkeypatch.setattr(live, "_redis_listener", None)
    caplog.set_level(logging.WARNING)
    try:
        member = await make_member("Redisless Member")
        statuses = []
        for _ in range(4):  # wrong passwords: field errors, then the (process-local) limit
            token = csrf_from((await client.get("/login")).text)
            response = await client.post("/login", data={"email": member.email, "password": "nope nope nope",
                                                          "_csrf_token": token})
            statuses.append(response.status_code)
        assert 500 not in statuses and statuses[-1] == 429
        assert "rate limits fall back to this process" in caplog.text

        # A pledge publishes a live update: delivered in-process, the pledge succeeds.
        campaign_id, campaign = await make_campaign(goal=3)
        backer = await make_member("Redisless Backer")
        received = []
        async with live.subscribe(campaign_id) as queue:
            await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"])
            received.append(queue.get_nowait())
        assert received == [campaign_id]
        assert "redis publish failed; delivering locally" in caplog.text
        other = await make_member("Page Reader")
        client.cookies.clear()
        await login(client, other.email)
        assert (await client.get(f"/ideas/{campaign['idea']}")).status_code == 200
    finally:
        throttle.counters.cache_clear()
