"""Comments, moderation, mentions, follows, notifications, badges, leaderboard, updates."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from app.community import service as community
from app.errors import Conflict, Forbidden
from app.mail.tables import EmailMessage
from app.notifications import service as notifications
from app.notifications.tables import Notification
from app.points import badges
from app.points.tables import MemberBadge, PointsEntry
from tests.factories import csrf_from, login, make_idea, make_member


async def test_comment_is_shown_as_text_threaded_and_mentions_notify(client):
    author = await make_member("Idea Author")
    alice = await make_member("Alice Commenter")
    bob = await make_member("Bob Replier")
    idea_id = await make_idea(author)
    first = await community.add_comment(alice, idea_id, "<img src=x onerror=alert(1)> love it")
    await community.add_comment(bob, idea_id, f"Agreed @{alice.handle}!", parent_id=first)
    page = await client.get(f"/ideas/{idea_id}")
    assert "&lt;img src=x onerror=alert(1)&gt; love it" in page.text and "<img src=x" not in page.text
    kinds = {(n["member"], n["kind"]) for n in await Notification.select(Notification.member, Notification.kind)}
    assert (alice.id, "reply") in kinds  # replied to (the mention does not notify twice)
    assert (author.id, "reply") in kinds
    assert await Notification.count().where((Notification.member == alice.id) & Notification.kind.is_in(["reply", "mention"])) == 1
    assert await EmailMessage.count().where(EmailMessage.kind == "notify_reply") == 3
    thread = await community.thread(idea_id, None)
    assert len(thread) == 1 and len(thread[0]["replies"]) == 1


async def test_the_comment_count_leaves_out_deleted_and_hidden_comments_and_counts_replies(client):
    author = await make_member("Counted Author")
    writer = await make_member("Counted Writer")
    staff = await make_member("Counting Moderator", staff=True)
    idea_id = await make_idea(author)
    kept = await community.add_comment(writer, idea_id, "Keep this one")
    await community.add_comment(author, idea_id, "A reply", parent_id=kept)
    reply = await community.add_comment(writer, idea_id, "A reply to the reply", parent_id=kept)
    await community.add_comment(author, idea_id, "Deep reply", parent_id=reply)
    deleted = await community.add_comment(writer, idea_id, "Deleted soon")
    hidden = await community.add_comment(writer, idea_id, "Hidden soon")
    await community.delete_comment(writer, deleted)
    await community.hide_comment(staff, hidden, "Off topic")
    page = await client.get(f"/ideas/{idea_id}")
    assert '<span class="count">4</span>' in page.text


async def test_hidden_comment_loses_its_points_once():
    """Reports and decisions live in app/moderation (tests/moderation); hiding itself is exact."""
    author = await make_member("Author")
    writer = await make_member("Writer")
    staff = await make_member("Moderator", staff=True)
    idea_id = await make_idea(author)
    comment_id = await community.add_comment(writer, idea_id, "Buy cheap watches at spam.example")
    with pytest.raises(Forbidden):
        await community.hide_comment(writer, comment_id, "nope")
    hid = await asyncio.gather(*(community.hide_comment(staff, comment_id, "Spam") for _ in range(3)))
    assert sorted(hid) == [False, False, True]
    entries = await PointsEntry.select(PointsEntry.points).where(PointsEntry.member == writer.id)
    assert sorted(e["points"] for e in entries) == [-5, 5]
    assert await community.restore_comment(staff, comment_id) is True
    assert await community.restore_comment(staff, comment_id) is False


async def test_comment_points_cap_and_edit_window():
    author = await make_member("Author")
    chatty = await make_member("Chatty")
    idea_id = await make_idea(author)
    ids = [await community.add_comment(chatty, idea_id, f"comment {n}") for n in range(12)]
    total = sum(e["points"] for e in await PointsEntry.select(PointsEntry.points).where(
        (PointsEntry.member == chatty.id) & (PointsEntry.reason == "comment")))
    assert total == 50
    await community.edit_comment(chatty, ids[0], "edited text")
    late = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)
    with pytest.raises(Conflict, match="15 minutes"):
        await community.edit_comment(chatty, ids[1], "too late", now=late)


async def test_follow_idea_and_get_status_changes(client):
    author = await make_member("Followed Author")
    fan = await make_member("Fan")
    staff = await make_member("Staff", staff=True)
    idea_id = await make_idea(author, staff=staff)
    assert await community.follow(fan, "idea", idea_id)
    assert not await community.follow(fan, "idea", idea_id)  # once
    from app.db import utcnow
    from app.ideas import service as ideas
    from app.ideas.tables import Idea

    await Idea.update({Idea.voting_ends_at: utcnow()}).where(Idea.id == idea_id)
    await ideas.close_voting(idea_id)
    notes = await notifications.recent(fan.id)
    assert notes and "voting closed" in notes[0]["title"]
    await login(client, fan.email)
    bell = await client.get("/notifications/bell")
    assert 'data-testid="bell-count">1<' in bell.text
    page = await client.get("/notifications")
    token = csrf_from(page.text)
    read = await client.post(f"/notifications/{notes[0]['id']}/read", data={"_csrf_token": token})
    assert read.status_code == 303 and read.headers["location"] == f"/ideas/{idea_id}"
    assert await notifications.unread_count(fan.id) == 0
    api_token = (await client.post("/api/v1/auth/tokens", json={"email": fan.email, "password": "correct horse battery"})).json()["token"]
    headers = {"Authorization": f"Bearer {api_token}"}
    assert (await client.delete(f"/api/v1/ideas/{idea_id}/follow", headers=headers)).json()["following"] is False
    assert (await client.put(f"/api/v1/ideas/{idea_id}/follow", headers=headers)).json()["following"] is True


async def test_email_settings_digest_and_unsubscribe(client):
    member = await make_member("Settings Sam")
    await notifications.set_mode(member.id, "reply", "off")
    await notifications.notify(member.id, "reply", key="k1", title="A reply")
    assert await EmailMessage.count() == 0  # off: in-site only
    await notifications.set_mode(member.id, "update", "digest")
    await notifications.notify(member.id, "update", key="k2", title="Update one", link="/ideas/1")
    await notifications.notify(member.id, "update", key="k3", title="Update two", link="/ideas/1")
    assert await EmailMessage.count() == 0
    today = dt.datetime.now(dt.UTC).date()
    assert await notifications.send_digests(today) == 1
    assert await notifications.send_digests(today) == 0  # once per day
    digest = await EmailMessage.select().where(EmailMessage.kind == "digest").first()
    assert "Update one" in digest["text_body"] and "Update two" in digest["text_body"]
    await notifications.notify(member.id, "mention", key="k4", title="You were mentioned")
    email = await EmailMessage.select().where(EmailMessage.kind == "notify_mention").first()
    link = email["text_body"].split("Unsubscribe: ")[1].strip().replace("http://testserver.local", "")
    page = await client.get(link)
    assert "Stop emails about" in page.text
    params = dict(p.split("=") for p in link.split("?")[1].split("&"))
    bad = await client.post("/unsubscribe", data={**params, "t": "0" * 32, "_csrf_token": csrf_from(page.text)})
    assert bad.status_code == 400
    done = await client.post("/unsubscribe", data={**params, "_csrf_token": csrf_from(page.text)})
    assert done.status_code == 200 and "won't get emails" in done.text
    assert (await notifications.settings_for(member.id))["mention"] == "off"


async def test_badges_once_and_leaderboard(client):
    author = await make_member("Badge Author")
    voters = [await make_member(f"Voter {n}") for n in range(3)]
    idea_id = await make_idea(author)
    from app.ideas import service as ideas

    await asyncio.gather(*(ideas.vote(v, idea_id) for v in voters for _ in range(3)))
    assert await MemberBadge.count().where(MemberBadge.badge == "first_vote") == 3
    assert await MemberBadge.count().where((MemberBadge.member == author.id) & (MemberBadge.badge == "first_idea")) == 1
    board = await badges.leaderboard("week")
    assert board[0]["member"] == author.id and board[0]["points"] == 100
    assert [r["member"] for r in board[1:]] == sorted(v.id for v in voters)  # ties by member id
    api = await client.get("/api/v1/leaderboard?period=all")
    assert api.status_code == 200 and api.json()[0]["points"] == 100
    assert (await client.get("/api/v1/leaderboard?period=year")).status_code == 400
    page = await client.get(f"/members/{author.handle}")
    assert "Idea maker" in page.text


async def test_staff_adjustment_is_visible_to_the_member(client):
    member = await make_member("Adjusted")
    staff = await make_member("Adjuster", staff=True)
    await login(client, staff.email)
    page = await client.get(f"/members/{member.handle}")
    response = await client.post(f"/staff/members/{member.handle}/points",
                                 data={"points": "40", "reason": "Great feedback at the meetup", "_csrf_token": csrf_from(page.text)})
    assert response.status_code == 303
    await client.post("/logout", data={"_csrf_token": csrf_from(page.text)})
    await login(client, member.email)
    history = await client.get("/points")
    assert "Great feedback at the meetup" in history.text and "+40" in history.text
