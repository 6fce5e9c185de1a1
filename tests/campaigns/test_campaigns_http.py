"""Campaign pages and API over HTTP: greenlight form, pledge flow, my pledges, access control,
live updates."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

from app.campaigns.tables import Campaign, Pledge
from app.mail.tables import EmailMessage
from tests.campaigns.helpers import make_campaign, pledge_with_card, save_card
from tests.factories import PASSWORD, csrf_from, login, make_idea, make_member


async def _bearer(client, member) -> dict:
    token = (await client.post("/api/v1/auth/tokens", json={"email": member.email, "password": PASSWORD})).json()["token"]
    return {"Authorization": f"Bearer {token}"}


async def test_staff_greenlight_form_shows_field_errors_then_creates_campaign(client, stripe):
    staff = await make_member("Form Staff", staff=True)
    author = await make_member("Form Author")
    idea_id = await make_idea(author, staff=staff)
    await login(client, staff.email)
    page = await client.get(f"/staff/ideas/{idea_id}/greenlight")
    assert page.status_code == 200 and "Greenlight a pre-order campaign" in page.text
    token = csrf_from(page.text)
    bad = await client.post(f"/staff/ideas/{idea_id}/greenlight", data={
        "price": "ten", "goal_units": "0", "duration_days": "90", "estimated_delivery": "", "_csrf_token": token})
    assert bad.status_code == 400
    assert "Write the price as a number" in bad.text and "between 1 and 60 days" in bad.text
    assert await Campaign.count() == 0
    delivery = (dt.date.today() + dt.timedelta(days=120)).isoformat()
    ok = await client.post(f"/staff/ideas/{idea_id}/greenlight", data={
        "price": "499", "goal_units": "5", "duration_days": "30", "estimated_delivery": delivery,
        "variant_name_0": "S", "variant_limit_0": "20", "variant_name_1": "M", "_csrf_token": token})
    assert ok.status_code == 303
    idea_page = await client.get(f"/ideas/{idea_id}")
    assert "Pre-order" in idea_page.text and "0</strong> of 5 units" in idea_page.text
    assert "20 left" in idea_page.text
    # members cannot greenlight
    member = await make_member("Not Staff")
    headers = await _bearer(client, member)
    response = await client.post(f"/api/v1/staff/ideas/{idea_id}/greenlight", headers=headers,
                                 json={"price": 100, "goal_units": 1, "estimated_delivery": delivery})
    assert response.status_code == 403


async def test_pledge_flow_through_the_pages(client, stripe):
    campaign_id, campaign = await make_campaign(goal=5)
    backer = await make_member("Page Backer")
    await login(client, backer.email)
    page = await client.get(f"/ideas/{campaign['idea']}")
    token = csrf_from(page.text)
    no_consent = await client.post(f"/campaigns/{campaign_id}/pledge",
                                   data={"variant": campaign["variants"][0]["id"], "quantity": "2", "_csrf_token": token})
    assert no_consent.status_code == 303 and await Pledge.count() == 0
    response = await client.post(f"/campaigns/{campaign_id}/pledge", data={
        "variant": campaign["variants"][0]["id"], "quantity": "2", "consent": "yes", "amount": "1", "_csrf_token": token})
    assert response.status_code == 303
    card_url = response.headers["location"]
    card_page = await client.get(card_url)
    assert card_page.status_code == 200
    assert 'data-testid="pledge-amount">' in card_page.text and "charged only if the campaign is funded" in card_page.text
    secret = re.search(r'data-client-secret="([^"]+)"', card_page.text).group(1)
    setup_id = await save_card(secret)
    pledge_id = int(card_url.split("/")[2])
    confirm = await client.post(f"/pledges/{pledge_id}/confirm", data={"setup_intent": setup_id, "_csrf_token": token})
    assert confirm.status_code == 303 and confirm.headers["location"] == "/me/pledges"
    mine = await client.get("/me/pledges")
    assert "Active" in mine.text and campaign["idea.title"] in mine.text
    pledge = await Pledge.select().where(Pledge.id == pledge_id).first()
    assert pledge["amount"] == 2 * 50000  # the client-sent amount was ignored
    # htmx change returns just the row
    change = await client.post(f"/pledges/{pledge_id}/change", data={"variant": campaign["variants"][1]["id"], "quantity": "3"},
                               headers={"HX-Request": "true", "x-csrftoken": token})
    assert change.status_code == 200 and "<html" not in change.text and "Saved." in change.text
    assert (await Pledge.select(Pledge.quantity).where(Pledge.id == pledge_id).first())["quantity"] == 3
    cancel = await client.post(f"/pledges/{pledge_id}/cancel", data={"_csrf_token": token})
    assert cancel.status_code == 303
    assert (await Campaign.select(Campaign.pledged_units).where(Campaign.id == campaign_id).first())["pledged_units"] == 0


async def test_api_pledges_are_private_and_amounts_are_the_servers(client, stripe):
    campaign_id, campaign = await make_campaign(goal=5)
    owner, other = await make_member("Owner"), await make_member("Other")
    owner_h, other_h = await _bearer(client, owner), await _bearer(client, other)
    started = await client.post(f"/api/v1/campaigns/{campaign_id}/pledges", headers=owner_h, json={
        "variant": campaign["variants"][0]["id"], "quantity": 2, "consent": True, "amount": 1, "status": "paid"})
    assert started.status_code == 201
    body = started.json()
    assert body["amount"] == 100000 and body["setup_intent_client_secret"].startswith("seti_")
    pledge_id = body["pledge_id"]
    not_saved = await client.post(f"/api/v1/pledges/{pledge_id}/confirm", headers=owner_h)
    assert not_saved.status_code == 400 and "card" in not_saved.json()["extra"]["errors"]
    await save_card(body["setup_intent_client_secret"])
    for method, url, kwargs in (("post", f"/api/v1/pledges/{pledge_id}/confirm", {}),
                                ("patch", f"/api/v1/pledges/{pledge_id}", {"json": {"quantity": 5}}),
                                ("delete", f"/api/v1/pledges/{pledge_id}", {})):
        response = await getattr(client, method)(url, headers=other_h, **kwargs)
        assert response.status_code == 404, (method, response.text)
    assert (await client.get("/api/v1/me/pledges", headers=other_h)).json() == []
    confirmed = await client.post(f"/api/v1/pledges/{pledge_id}/confirm", headers=owner_h)
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "active"
    changed = await client.patch(f"/api/v1/pledges/{pledge_id}", headers=owner_h, json={"quantity": 1, "amount": 5})
    assert changed.json()["amount"] == 50000
    api_campaign = (await client.get(f"/api/v1/campaigns/{campaign_id}")).json()
    assert (api_campaign["pledged_units"], api_campaign["backers"]) == (1, 1)
    listed = (await client.get("/api/v1/campaigns?sort=almost")).json()
    assert listed[0]["id"] == campaign_id
    staff = await make_member("Closer", staff=True)
    closed = await client.post(f"/api/v1/staff/campaigns/{campaign_id}/close", headers=await _bearer(client, staff))
    assert closed.status_code == 200 and closed.json()["status"] == "failed"
    again = await client.post(f"/api/v1/staff/campaigns/{campaign_id}/close", headers=await _bearer(client, staff))
    assert again.status_code == 409
    assert await EmailMessage.count().where(EmailMessage.kind == "pledge_confirmed") == 1


async def test_campaign_list_and_staff_dashboard(client, stripe):
    campaign_id, campaign = await make_campaign(goal=2)
    backer = await make_member("Listed Backer")
    await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"])
    listing = await client.get("/campaigns?sort=funded")
    assert listing.status_code == 200 and campaign["idea.title"] in listing.text and "50%" in listing.text
    fragment = await client.get("/campaigns?sort=ending", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text
    staff = await make_member("Dash Staff", staff=True)
    await login(client, staff.email)
    dashboard = await client.get(f"/staff/campaigns/{campaign_id}")
    assert dashboard.status_code == 200 and "Settlement" in dashboard.text and "Active" in dashboard.text
    member_client_blocked = await make_member("Curious")
    await client.post("/logout", data={"_csrf_token": csrf_from(dashboard.text)})
    await login(client, member_client_blocked.email)
    assert (await client.get(f"/staff/campaigns/{campaign_id}")).status_code == 403


async def test_live_fan_out_tells_open_pages_about_a_new_pledge(client, stripe):
    """The SSE endpoint relays these notices (httpx's in-process transport cannot stream, so
    the browser suite checks the page itself; here: the fan-out and the fragment it sends)."""
    from app.campaigns import live

    campaign_id, campaign = await make_campaign(goal=4)
    backer = await make_member("Streaming Backer")
    async with live.subscribe(campaign_id) as first, live.subscribe(campaign_id) as second:
        await pledge_with_card(backer, campaign_id, campaign["variants"][0]["id"], quantity=3)
        assert await asyncio.wait_for(first.get(), timeout=5) == campaign_id
        assert await asyncio.wait_for(second.get(), timeout=5) == campaign_id
    fragment = await client.get(f"/campaigns/{campaign_id}/progress")
    assert 'data-testid="pledged-units">3<' in fragment.text and 'data-testid="backers">1<' in fragment.text
    assert (await client.get("/campaigns/999999/live")).status_code == 404


async def test_live_fan_out_crosses_processes_through_redis(monkeypatch):
    """With REDIS_URL every process publishes to Redis and relays what it hears."""
    import uuid

    from app.campaigns import live
    from app.settings import get_settings

    monkeypatch.setattr(get_settings(), "redis_url", "redis://127.0.0.1:6379/0")
    monkeypatch.setattr(live, "CHANNEL", f"crowdmade:test:{uuid.uuid4().hex}")
    monkeypatch.setattr(live, "_redis", None)
    monkeypatch.setattr(live, "_redis_listener", None)
    async with live.subscribe(4242) as queue:
        received = None
        for _ in range(50):  # pub/sub drops messages sent before the listener has subscribed
            await live.publish(4242)
            try:
                received = await asyncio.wait_for(queue.get(), timeout=0.2)
                break
            except TimeoutError:
                continue
        assert received == 4242
    live._redis_listener.cancel()


async def test_backers_also_backed_counts_incrementally(client, stripe):
    staff = await make_member("Rec Staff", staff=True)
    first_id, first = await make_campaign(goal=5, staff=staff)
    second_id, second = await make_campaign(goal=5, staff=staff)
    third_id, third = await make_campaign(goal=5, staff=staff)
    fans = [await make_member(f"Fan {n}") for n in range(3)]
    for fan in fans:
        await pledge_with_card(fan, first_id, first["variants"][0]["id"])
        await pledge_with_card(fan, second_id, second["variants"][0]["id"])
    await pledge_with_card(fans[0], third_id, third["variants"][0]["id"])
    from app.campaigns import service as campaigns

    recs = await campaigns.also_backed(first_id)
    assert [(r["id"], r["backers_together"]) for r in recs] == [(second_id, 3), (third_id, 1)]
    page = await client.get(f"/ideas/{first['idea']}")
    assert "Backers of this also backed" in page.text and second["idea.title"] in page.text
    assert 'name="twitter:card"' in page.text


async def test_stripe_down_gives_a_clear_message_and_reserves_nothing(client, stripe, monkeypatch):
    from app.campaigns.tables import CampaignVariant
    from app.payments import gateway as gateway_module

    campaign_id, campaign = await make_campaign(goal=5)
    backer = await make_member("Unlucky Backer")
    await login(client, backer.email)
    page = await client.get(f"/ideas/{campaign['idea']}")
    broken = gateway_module.Gateway("sk_test_x", "http://127.0.0.1:9", "pk_test_x", None, 0)
    from app.payments import cards

    monkeypatch.setattr(cards, "gateway", lambda: broken)
    response = await client.post(f"/campaigns/{campaign_id}/pledge", data={
        "variant": campaign["variants"][0]["id"], "quantity": "1", "consent": "yes", "_csrf_token": csrf_from(page.text)})
    assert response.status_code == 303
    assert "unavailable" in (await client.get(response.headers["location"])).text
    assert await Pledge.count().where(Pledge.status == "pending") == 0
    assert sum(v["reserved"] for v in await CampaignVariant.select(CampaignVariant.reserved)) == 0
