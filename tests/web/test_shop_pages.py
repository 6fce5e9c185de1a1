"""The shop's own pages (terms, privacy, accessibility, company details): built-in texts with the
seller's details until staff write their own, linked from the footer and from the checkout and
pledge forms, which say what the button commits to."""

from __future__ import annotations

import re

from app.pages.tables import SitePage
from tests.campaigns.helpers import make_campaign
from tests.factories import csrf_from, login, make_member
from tests.shop.helpers import make_product


async def test_every_page_has_its_built_in_text_and_the_footer_links_them(client):
    home = await client.get("/")
    for path, title in (("/terms", "Terms of purchase"), ("/privacy", "Privacy policy"),
                        ("/accessibility", "Accessibility statement"), ("/company", "Company details")):
        assert f'href="{path}"' in home.text, path
        page = await client.get(path)
        assert page.status_code == 200 and f"<h1>{title}</h1>" in page.text, path
    company = await client.get("/company")
    assert "Crowdmade AB" in company.text and "559999-0000" in company.text and "SE559999000001" in company.text
    assert 'href="/withdraw"' in (await client.get("/terms")).text
    swedish = await client.get("/terms", headers={"Accept-Language": "sv"})
    assert "Köpvillkor" in swedish.text and "ångerrätt" in swedish.text.lower()


async def test_staff_edit_a_page_and_clearing_it_brings_the_built_in_text_back(client):
    staff = await make_member("Pages Staff", staff=True)
    member = await make_member("Pages Member")
    await login(client, member.email)
    assert (await client.get("/staff/pages")).status_code == 403
    await login(client, staff.email)
    listing = await client.get("/staff/pages")
    assert listing.status_code == 200 and "built-in text" in listing.text
    form = await client.get("/staff/pages/terms")
    token = csrf_from(form.text)
    bad = await client.post("/staff/pages/terms", data={"title": "x", "body": "Text", "_csrf_token": token})
    assert bad.status_code == 400 and "Give the page a title of 2 to 120 characters." in bad.text
    assert await SitePage.count() == 0
    saved = await client.post("/staff/pages/terms", data={
        "title": "Our terms", "body": "First paragraph.\n\nSecond <b>paragraph</b>.", "_csrf_token": token})
    assert saved.status_code == 303
    shown = await client.get("/terms")
    assert "<h1>Our terms</h1>" in shown.text and "<p>First paragraph.</p>" in shown.text
    assert "Second &lt;b&gt;paragraph&lt;/b&gt;." in shown.text  # text, never HTML
    cleared = await client.post("/staff/pages/terms", data={"title": "Our terms", "body": "", "_csrf_token": token})
    assert cleared.status_code == 303 and "Prices include VAT" in (await client.get("/terms")).text
    assert (await client.get("/staff/pages/nonsense")).status_code == 404


async def test_checkout_and_pledge_buttons_say_what_they_commit_to(client, stripe):
    buyer = await make_member("Button Buyer")
    product = await make_product("Button mug", price=9_900, variants={"One": 5})
    await login(client, buyer.email)
    home = await client.get("/")
    await client.post("/cart/lines", data={"variant_id": str(product["variants"]["One"]), "quantity": "1",
                                           "_csrf_token": csrf_from(home.text)})
    checkout = await client.get("/checkout")
    assert re.search(r'id="pay-button">Buy and pay <span id="pay-total">148,00', checkout.text.replace("\xa0", " "))
    assert 'href="/terms"' in checkout.text and 'href="/withdraw"' in checkout.text
    campaign_id, campaign = await make_campaign(goal=5, price="499")
    page = await client.get(f"/ideas/{campaign['idea']}")
    start = await client.post(f"/campaigns/{campaign_id}/pledge", data={
        "variant": str(campaign["variants"][0]["id"]), "quantity": "1", "consent": "yes",
        "_csrf_token": csrf_from(page.text)})
    card = await client.get(start.headers["location"])
    assert card.status_code == 200
    text = card.text.replace("\xa0", " ")
    assert "Pledge 499,00 kr, charged only if funded" in text and "Delivery: included" in text
    assert 'href="/terms"' in text and 'href="/withdraw"' in text
