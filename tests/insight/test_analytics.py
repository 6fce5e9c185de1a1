"""Creator analytics (author and staff only), where visitors came from, and campaign funnels."""

from __future__ import annotations

import asyncio
import functools
import re

import httpx

from app.asgi import create_app
from app.campaigns.tables import Pledge
from app.community import views
from app.community.tables import Comment, Follow
from app.db import raw, utcnow
from app.insight import service as insight
from tests.campaigns.helpers import make_campaign
from tests.factories import login, make_idea, make_member
from tests.insight.helpers import chart_numbers, day_of


@functools.cache
def _app():  # noqa: ANN202
    return create_app(run_jobs=False, manage_database=False)


def _visitor(**headers) -> httpx.AsyncClient:
    """A separate browser (its own cookies) on the same app."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(), client=("127.0.0.1", 50002)),
                             base_url="http://testserver.local", headers=headers)


def _sources(page: str) -> dict[str, int]:
    section = page.split('id="sources"')[1].split("</section>")[0]
    rows = re.findall(r'<th scope="row">([^<]+)(?:<span[^>]*>[^<]*</span>)?</th>\s*<td class="num">([\d,]+)</td>', section)
    return {name: int(n.replace(",", "")) for name, n in rows}


async def test_creator_analytics_is_for_the_author_and_staff_only(client):
    author = await make_member("Analytics Author")
    idea_id = await make_idea(author, title="Modular shelf")
    anonymous = await client.get(f"/ideas/{idea_id}/analytics")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")

    other = await make_member("Nosy Member")
    await login(client, other.email)
    for path in (f"/ideas/{idea_id}/analytics", "/ideas/999999/analytics"):
        response = await client.get(path)
        assert response.status_code == 404 and "Modular shelf" not in response.text
    assert f"/ideas/{idea_id}/analytics" not in (await client.get(f"/ideas/{idea_id}")).text

    await login(client, author.email)
    page = await client.get(f"/ideas/{idea_id}/analytics")
    assert page.status_code == 200 and "Your idea's numbers" in page.text and "Modular shelf" in page.text
    assert f'href="/ideas/{idea_id}/analytics"' in (await client.get(f"/ideas/{idea_id}")).text

    staff = await make_member("Analytics Staff", staff=True)
    await login(client, staff.email)
    assert (await client.get(f"/ideas/{idea_id}/analytics")).status_code == 200


async def test_share_link_carries_a_source_and_visits_are_counted_by_source(client):
    author = await make_member("Shared Author")
    idea_id = await make_idea(author, title="Rain poncho")
    page = (await client.get(f"/ideas/{idea_id}")).text
    assert f'value="http://testserver.local/ideas/{idea_id}?src=share"' in page

    # Two friends click the shared link (their first visit: no cookie yet), one reloads it.
    for _ in range(2):
        async with _visitor() as friend:
            assert (await friend.get(f"/ideas/{idea_id}?src=share")).status_code == 200
            await friend.get(f"/ideas/{idea_id}?src=share")
    async with _visitor(referer="https://www.instagram.com/p/abc") as follower:
        await follower.get(f"/ideas/{idea_id}")
    async with _visitor() as browser:
        await browser.get("/ideas")  # a returning visitor (our cookie) who comes from the list
        await browser.get(f"/ideas/{idea_id}", headers={"referer": "http://testserver.local/ideas"})
    async with _visitor() as typed:
        await typed.get("/")
        await typed.get(f"/ideas/{idea_id}")
        await typed.get(f"/ideas/{idea_id}?src=newsletter")  # the same visitor, later: counted once
    async with _visitor() as bot:  # never keeps a cookie, no referrer: looks like a crawler
        for _ in range(3):
            bot.cookies = httpx.Cookies()
            await bot.get(f"/ideas/{idea_id}")
    async with _visitor() as odd:
        await odd.get("/")
        await odd.get(f"/ideas/{idea_id}?src=%3Cscript%3E")  # not a tag: falls back to the referrer
    await views.flush()

    await login(client, author.email)
    analytics = (await client.get(f"/ideas/{idea_id}/analytics")).text
    assert _sources(analytics) == {"share": 2, "instagram.com": 1, "internal": 1, "direct": 2}
    assert "<script>" not in analytics
    rows = await raw("SELECT source, visits FROM visit_source WHERE subject = {} ORDER BY source", idea_id)
    assert {r["source"]: r["visits"] for r in rows} == {"direct": 2, "instagram.com": 1, "internal": 1, "share": 2}
    # The views chart counts returning viewers (a cookie) once a day, as "N people viewed this today".
    assert chart_numbers(analytics, "chart-idea")[day_of(0)] == str(await views.viewers_today("idea", idea_id))


async def test_concurrent_visits_and_flushes_count_each_visitor_once():
    author = await make_member("Popular Author")
    idea_id = await make_idea(author)
    visitors = [views.viewer_key(None, f"a.friend-{n}") for n in range(30)]

    async def visit(key: str, source: str) -> None:
        views.record_view("idea", idea_id, None, [], source=source, visitor=key)
        await asyncio.sleep(0)

    await asyncio.gather(*(visit(key, "share") for key in visitors), *(visit(key, "newsletter") for key in visitors[:10]),
                         *(visit(key, "direct") for key in visitors))  # cookie-less and direct: not attributed
    await asyncio.gather(views.flush(), views.flush(), views.flush())
    await asyncio.gather(*(visit(key, "share") for key in visitors))
    await asyncio.gather(views.flush(), views.flush())
    sources = await insight.visit_sources("idea", idea_id, utcnow().date().isoformat())
    assert [(s["source"], s["visits"]) for s in sources] == [("share", 30)]
    assert await views.viewers_today("idea", idea_id) == 0  # cookie-less first visits are not viewers


def test_visit_source_rules():
    own = ("crowdmade.example",)
    assert views.visit_source("share", "https://facebook.com/", own) == "share"
    assert views.visit_source(" Newsletter ", None, own) == "newsletter"
    assert views.visit_source("<b>", "https://www.facebook.com/x", own) == "facebook.com"
    assert views.visit_source("x" * 80, None, own) == "direct"
    assert views.visit_source(None, "https://crowdmade.example/ideas", own) == "internal"
    assert views.visit_source(None, "not a url", own) == "direct"
    assert views.visit_source(None, "http://[bad", own) == "direct"
    assert views.visit_source("", "", own) == "direct"


async def test_analytics_shows_votes_pledges_comments_and_followers(client):
    author = await make_member("Counting Author")
    campaign_id, campaign = await make_campaign(goal=10, author=author)
    idea_id = campaign["idea"]
    variant = campaign["variants"][0]["id"]
    for n in range(3):
        backer = await make_member()
        await Pledge.insert(Pledge(campaign=campaign_id, member=backer.id, variant=variant, quantity=1, amount=500,
                                   status="active", payment_method_id="pm_x"))
        await Comment.insert(Comment(idea=idea_id, author=backer.id, body=f"Love it {n}",
                                     deleted_at=utcnow() if n == 2 else None))
        await Follow.insert(Follow(member=backer.id, kind="idea", target=idea_id))
    await login(client, author.email)
    page = (await client.get(f"/ideas/{idea_id}/analytics")).text
    kpis = dict(re.findall(r'<span class="kpi-label">([^<]+)</span><strong class="kpi-value">([^<]+)</strong>', page))
    assert (kpis["Pledges"], kpis["Comments"], kpis["Followers"]) == ("3", "2", "3")
    assert chart_numbers(page, "chart-idea")[day_of(0)] == "0"  # views (first column) today
    assert "From views to paid pre-orders" in page


def test_funnel_rates():
    steps = insight.funnel_steps([("Viewed", "viewers", 200), ("Voted", "voters", 50), ("Pledged", "backers", 10),
                                  ("Paid", "payers", 8)])
    assert [s["from_previous"] for s in steps] == [None, 0.25, 0.2, 0.8]
    assert [s["from_first"] for s in steps] == [1.0, 0.25, 0.05, 0.04]
    assert [s["width"] for s in steps] == [100.0, 25.0, 5.0, 4.0]
    empty = insight.funnel_steps([("Viewed", "viewers", 0), ("Voted", "voters", 0)])
    assert [s["from_previous"] for s in empty] == [None, None] and empty[1]["width"] == 0


async def test_campaign_funnel_page(client):
    staff = await make_member("Funnel Staff", staff=True)
    campaign_id, campaign = await make_campaign(goal=10, staff=staff)
    idea_id = campaign["idea"]
    variant = campaign["variants"][0]["id"]
    await raw("UPDATE idea SET vote_count = 40 WHERE id = {}", idea_id)
    await raw("INSERT INTO view_count (kind, subject, day, views) VALUES ('idea', {}, '2026-01-01', 150), "
              "('idea', {}, '2026-01-02', 50)", idea_id, idea_id)
    twice = await make_member("Twice Backer")
    for member, status in [(twice, "paid"), (twice, "active"), (await make_member(), "paid"),
                           (await make_member(), "payment_failed"), (await make_member(), "active"),
                           (await make_member(), "pending")]:
        await Pledge.insert(Pledge(campaign=campaign_id, member=member.id, variant=variant, quantity=1, amount=500,
                                   status=status, payment_method_id="" if status == "pending" else "pm_x"))
    funnel = await insight.campaign_funnel(campaign_id)
    assert [(s["name"], s["count"]) for s in funnel["steps"]] == [
        ("Viewed the idea", 200), ("Voted", 40), ("Pledged", 4), ("Paid", 2)]

    await login(client, staff.email)
    page = (await client.get(f"/staff/campaigns/{campaign_id}/funnel")).text
    assert "20.0% of viewers" in page and "10.0% of voters" in page and "50.0% of backers" in page
    assert "1.0% of views became a paid pledge" in page
    assert 'role="img"' in page and "<desc" in page
    assert f'href="/staff/campaigns/{campaign_id}/funnel"' in (await client.get(f"/staff/campaigns/{campaign_id}")).text
    assert (await client.get("/staff/campaigns/999999/funnel")).status_code == 404
    member = await make_member("Funnel Member")
    await login(client, member.email)
    assert (await client.get(f"/staff/campaigns/{campaign_id}/funnel")).status_code == 403
