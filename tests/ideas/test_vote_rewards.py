"""What a vote gives the voter: points within the daily cap, level notifications, vote badges,
and the vote undone when voting closed under it. PostgreSQL does a vote in one database
function (crowdmade_cast_vote), SQLite statement by statement; both run these tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import os

import asyncpg
import pytest

from app.db import is_sqlite, utcnow
from app.errors import Conflict
from app.ideas import service as ideas
from app.ideas.tables import Idea, Vote
from app.notifications.tables import Notification
from app.points import service as points
from app.points.tables import MemberBadge
from tests.factories import make_idea, make_member
from tests.support.audit import assert_audit_clean


async def test_a_vote_that_crosses_a_level_notifies_the_member_once():
    author = await make_member("Level Author")
    voter = await make_member("Almost Supporter")
    await points.award(voter.id, "adjustment", key="test:level", points=248, note="test")
    first, second = await make_idea(author, title="First idea"), await make_idea(author, title="Second idea")
    state = await ideas.vote(voter, first)
    assert state.points_awarded == 2
    await ideas.vote(voter, second)  # 252: still Supporter, no second notification
    titles = [r["title"] for r in await Notification.select(Notification.title).where(
        (Notification.member == voter.id) & (Notification.kind == "level"))]
    assert titles.count("You reached Supporter!") == 1
    assert "New badge: First vote" in titles
    assert await MemberBadge.count().where((MemberBadge.member == voter.id) & (MemberBadge.badge == "first_vote")) == 1
    await assert_audit_clean()


async def test_the_hundredth_vote_earns_the_hundred_votes_badge():
    author = await make_member("Prolific Author")
    voter = await make_member("Devoted Voter")
    now = utcnow()
    # 99 earlier votes written directly (their points are not what this test is about)
    rows = await Idea.insert(*[
        Idea(author=author.id, title=f"Earlier idea {n}", summary="s", description="d", status="voting",
             vote_count=1, submitted_at=now, voting_starts_at=now, voting_ends_at=now + dt.timedelta(days=30))
        for n in range(99)]).returning(Idea.id)
    await Vote.insert(*[Vote(member=voter.id, idea=r["id"], token=f"earlier{n}") for n, r in enumerate(rows)])
    await MemberBadge.insert(MemberBadge(member=voter.id, badge="first_vote"))
    last = await make_idea(author, title="The hundredth")
    assert not await MemberBadge.exists().where((MemberBadge.member == voter.id) & (MemberBadge.badge == "hundred_votes"))
    await ideas.vote(voter, last)
    assert await MemberBadge.exists().where((MemberBadge.member == voter.id) & (MemberBadge.badge == "hundred_votes"))
    assert await Notification.exists().where(
        (Notification.member == voter.id) & (Notification.key == f"badge:{voter.id}:hundred_votes"))


@pytest.mark.skipif(is_sqlite(), reason="SQLite runs one writer at a time: voting cannot close between a vote's statements")
async def test_voting_closing_between_the_vote_row_and_the_counter_undoes_the_vote():
    """Another connection closes voting and holds its lock: the vote reads the idea open,
    writes its row, waits on the counter's row, then finds voting closed. The member is told
    so, and nothing of the vote stays (row, counter, points)."""
    author = await make_member("Closing Author")
    voter = await make_member("Unlucky Voter")
    idea_id = await make_idea(author)
    closer = await asyncpg.connect(os.environ["DATABASE_URL"])
    try:
        closing = closer.transaction()
        await closing.start()
        await closer.execute("UPDATE idea SET status = 'archived' WHERE id = $1", idea_id)
        vote = asyncio.create_task(ideas.vote(voter, idea_id))
        await asyncio.sleep(0.5)  # the vote is now waiting on the idea row
        assert not vote.done()
        await closing.commit()
        with pytest.raises(Conflict, match="Voting is closed"):
            await vote
    finally:
        await closer.close()
    assert await Vote.count().where(Vote.idea == idea_id) == 0
    assert (await Idea.select(Idea.vote_count).where(Idea.id == idea_id).first())["vote_count"] == 0
    assert await points.points_today(voter.id, ("vote",)) == 0
    await assert_audit_clean()
