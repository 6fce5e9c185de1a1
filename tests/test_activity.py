"""The home page's activity feed (issue 5): new ideas open for votes, greenlights, live and
funded campaigns and reached goals, newest first, announced to open pages after the commit."""

from __future__ import annotations

import asyncio

from app.campaigns import live
from app.community import activity
from tests.campaigns.helpers import make_campaign, pledge_with_card
from tests.factories import make_idea, make_member


async def test_feed_lists_the_moments_and_home_pages_are_told(client, stripe):
    author = await make_member("Feed Author")
    async with live.subscribe_activity() as queue:
        idea_id = await make_idea(author, title="Storm-proof umbrella")
        assert await asyncio.wait_for(queue.get(), timeout=2) == 0  # approved: open for votes
        campaign_id, campaign = await make_campaign(goal=1)
        backer = await make_member("Feed Backer")
        await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"])
        await asyncio.sleep(0.05)
        told = 0
        while not queue.empty():
            queue.get_nowait()
            told += 1
        assert told >= 2  # the campaign's idea, the campaign going live and its goal
    items = await activity.recent_activity()
    sentences = [f"{i['title']} {i['what']}" for i in items]
    assert f"{campaign['idea.title']} reached its goal" == sentences[0]
    assert "Storm-proof umbrella is open for votes" in sentences
    assert f"{campaign['idea.title']} is live for pre-orders" in sentences
    home = (await client.get("/")).text
    assert "Happening now" in home and 'sse-connect="/activity/live"' in home
    assert "Storm-proof umbrella</a> is open for votes" in home
    fragment = (await client.get("/activity")).text
    assert "reached its goal" in fragment and "<html" not in fragment
    assert idea_id
