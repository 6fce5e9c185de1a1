"""No page issues more SQL as its list grows (issue 6): each page is fetched with a small and a
larger list, and the number of statements must stay the same."""

from __future__ import annotations

from app.community import service as community
from app.ideas import service as ideas
from tests.campaigns.helpers import make_campaign, pledge_with_card
from tests.factories import login, make_idea, make_member
from tests.support.queries import count_queries


async def _queries(client, path: str) -> int:
    await client.get(path)  # warm caches that are filled once per process (e.g. categories)
    with count_queries() as counter:
        response = await client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return counter.count


async def test_ideas_list_and_home_do_not_grow_with_the_list(client):
    viewer = await make_member("Counting Viewer")
    author = await make_member("Counting Author")
    await login(client, viewer.email)
    first = [await make_idea(author, title=f"Counted idea {n}") for n in range(2)]
    await ideas.vote(viewer, first[0])
    small = {path: await _queries(client, path) for path in ("/ideas", "/", "/ideas?q=Counted")}
    more = [await make_idea(author, title=f"Counted idea {n}") for n in range(2, 12)]
    for idea_id in more[:5]:
        await ideas.vote(viewer, idea_id)
    large = {path: await _queries(client, path) for path in small}
    assert large == small


async def test_idea_page_does_not_grow_with_comments(client):
    viewer = await make_member("Comment Counter")
    author = await make_member("Comment Author")
    idea_id = await make_idea(author)
    await login(client, viewer.email)
    await community.add_comment(author, idea_id, "First!")
    small = await _queries(client, f"/ideas/{idea_id}")
    for n in range(8):
        parent = await community.add_comment(author if n % 2 else viewer, idea_id, f"Comment {n}")
        await community.add_comment(author, idea_id, f"Reply {n}", parent_id=parent)
    assert await _queries(client, f"/ideas/{idea_id}") == small


async def test_campaign_pages_and_my_pledges_do_not_grow(client, stripe):
    backer = await make_member("Pledge Counter")
    await login(client, backer.email)
    first, campaign = await make_campaign(goal=50)
    await pledge_with_card(backer, first, campaign["variants"][0]["id"])

    async def back_another_campaign() -> None:
        other, campaign = await make_campaign(goal=50)
        await pledge_with_card(backer, other, campaign["variants"][1]["id"], quantity=2)
        for n in range(2):
            await pledge_with_card(await make_member(f"Other backer {n}"), first, await _variant(first))

    await back_another_campaign()  # so "backers also backed" has something in both measurements
    paths = ("/campaigns", "/me/pledges", f"/ideas/{campaign['idea']}")
    small = {path: await _queries(client, path) for path in paths}
    for _ in range(3):
        await back_another_campaign()
    large = {path: await _queries(client, path) for path in paths}
    assert large == small


async def _variant(campaign_id: int) -> int:
    from app.campaigns import service as campaigns

    return (await campaigns.get_campaign(campaign_id))["variants"][0]["id"]
