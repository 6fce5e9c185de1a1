"""XSS corpus (issue 7): hostile text in every user-text field (idea titles, summaries and
descriptions, comments, mentions, display names, reviews, product questions, shipping
addresses) is shown as text on every page, fragment and email that renders it."""

from __future__ import annotations

import re

from app.community import service as community
from app.mail.tables import EmailMessage
from app.orders import fulfilment
from app.shop import catalog, checkout, reviews
from app.shop.checkout import CheckoutInput
from tests.campaigns.helpers import save_card
from tests.factories import login, make_idea, make_member
from tests.shop.helpers import make_product
from tests.shop.social_helpers import make_order

PAYLOADS = [
    '<script>alert("x1")</script>',
    '"><img src=x onerror=alert("x2")>',
    "</textarea><svg onload=alert('x3')>",
    "javascript:alert('x4')",
    "{{ 7*191919 }}{% raw %}",  # template injection would print 1343433
]
# What must never reach a page unescaped: an executable tag or handler, or a javascript: link.
DANGER = re.compile(r"<script>alert|<img src=x onerror|<svg onload|href=\"javascript:|href='javascript:", re.I)


def _assert_inert(where: str, html: str) -> None:
    found = DANGER.search(html)
    assert found is None, f"{where}: unescaped payload near {html[max(0, found.start() - 80):found.end() + 80]!r}"


async def test_hostile_text_is_shown_as_text_everywhere(client, stripe):
    payload = " ".join(PAYLOADS)
    staff = await make_member("Xss Staff", staff=True)
    villain = await make_member('Eve <img src=x onerror=alert("n")>')
    victim = await make_member("Victim Reader")
    idea_id = await make_idea(villain, title='Bag <script>alert("x1")</script>'[:120], summary=payload[:280],
                              description=payload * 2, staff=staff)
    comment_id = await community.add_comment(villain, idea_id, f"@{victim.handle} {payload}")
    await community.add_comment(victim, idea_id, payload, parent_id=comment_id)
    product = await make_product("Plain tote")
    await make_order(villain, [product], status="delivered")
    await reviews.submit_review(villain, product["id"], rating=1, title=PAYLOADS[1][:120], body=payload)
    await catalog.ask_question(villain, product["slug"], payload)
    placed = await checkout.place_order(villain, CheckoutInput(
        lines=[(product["variants"]["One size"], 1)], shipping="standard",
        address={"name": PAYLOADS[1][:100], "line1": PAYLOADS[0], "line2": PAYLOADS[2], "postal_code": "111 22",
                 "city": "Stockholm", "country": "SE", "phone": ""}))
    await save_card(placed.setup_intent_client_secret)
    await checkout.pay_order(villain, placed.number)
    await fulfilment.set_status(staff, placed.order_id, "shipped", carrier="PostNord", tracking_number="XSS123")

    pages = {
        "visitor": ["/", "/ideas", f"/ideas/{idea_id}", "/ideas?q=Bag", f"/members/{villain.handle}", "/leaderboard",
                    f"/shop/{product['slug']}", f"/shop/{product['slug']}/reviews"],
        villain.email: [f"/orders/{placed.number}", "/orders", "/notifications", f"/ideas/{idea_id}"],
        victim.email: ["/notifications", f"/ideas/{idea_id}"],
        staff.email: [f"/staff/orders/{placed.number}", "/staff/orders", "/staff/orders.csv", "/staff/review",
                      f"/shop/{product['slug']}"],
    }
    for who, paths in pages.items():
        client.cookies.clear()
        if who != "visitor":
            await login(client, who)
        for path in paths:
            response = await client.get(path)
            assert response.status_code == 200, (who, path, response.status_code)
            if path.endswith(".csv"):  # a download, never rendered by the browser
                assert response.headers["content-type"].startswith("text/csv")
                assert "attachment" in response.headers["content-disposition"]
                continue
            _assert_inert(f"{who} {path}", response.text)
            assert "1343433" not in response.text, (who, path, "user text was evaluated as a template")
    # the text itself is there, escaped (so the test would see it if escaping broke)
    client.cookies.clear()
    idea_page = (await client.get(f"/ideas/{idea_id}")).text
    assert "&lt;script&gt;alert(" in idea_page and "&lt;img src=x onerror=alert(" in idea_page
    # htmx fragments render the same text
    fragment = await client.get(f"/ideas/{idea_id}", headers={"HX-Request": "true"})
    _assert_inert("fragment", fragment.text)
    # every email that went out (mentions, replies, order emails) escapes it too
    emails = await EmailMessage.select(EmailMessage.kind, EmailMessage.html_body, EmailMessage.subject)
    assert emails
    for email in emails:
        _assert_inert(f"email {email['kind']}", email["html_body"])
    assert any("&lt;script&gt;" in e["html_body"] or "&lt;img" in e["html_body"] for e in emails)
