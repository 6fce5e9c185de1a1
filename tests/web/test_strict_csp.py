"""A strict Content-Security-Policy (PCI DSS 4.0 6.4.3, the pages that load Stripe.js): scripts only
from the site itself and Stripe, never inline; no page or template carries an inline script or an
inline event handler, so nothing but the site's files and Stripe.js can run."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from app.settings import PROJECT_ROOT, get_settings
from tests.campaigns.helpers import make_campaign
from tests.factories import login, make_member
from tests.shop.helpers import make_product

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I)
HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)
SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", re.I)


def _directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def _stripe_origin() -> str:
    url = get_settings().stripe_js_url or ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if url else ""


async def test_pages_allow_scripts_only_from_the_site_and_stripe(client, stripe):
    member = await make_member("Csp Member")
    product = await make_product("Csp mug", price=9_900, variants={"One": 5})
    campaign_id, campaign = await make_campaign(goal=5)
    await login(client, member.email)
    await client.post("/cart/lines", data={"variant_id": str(product["variants"]["One"]), "quantity": "1",
                                           "_csrf_token": re.search(r'name="_csrf_token" value="([^"]+)"',
                                                                    (await client.get("/")).text).group(1)})
    stripe_origin = _stripe_origin()
    pages = ["/", "/ideas", "/shop", f"/shop/{product['slug']}", f"/ideas/{campaign['idea']}", "/checkout",
             "/withdraw", "/orders"]
    for path in pages:
        response = await client.get(path)
        assert response.status_code == 200, path
        policy = _directives(response.headers["content-security-policy"])
        scripts = policy["script-src"]
        assert "'self'" in scripts, path
        for word in scripts:
            assert word == "'self'" or word == stripe_origin, (path, word)  # no 'unsafe-inline', 'unsafe-eval', * or data:
        assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'self'"], path
        html = response.text
        assert not INLINE_SCRIPT.search(html), (path, INLINE_SCRIPT.search(html).group(0))
        assert not HANDLER.search(html), (path, HANDLER.search(html).group(0))
        for src in SCRIPT_SRC.findall(html):
            assert src.startswith("/static/") or (stripe_origin and src.startswith(stripe_origin)), (path, src)
    checkout = await client.get("/checkout")
    assert stripe_origin and stripe_origin in checkout.headers["content-security-policy"]
    assert any(src.startswith(stripe_origin) for src in SCRIPT_SRC.findall(checkout.text))  # Stripe.js, allowed


def test_no_template_has_an_inline_script_or_event_handler():
    found = []
    for path in sorted(Path(PROJECT_ROOT / "templates").rglob("*.html")):
        if "emails" in path.parts:  # emails run no scripts anywhere
            continue
        text = path.read_text()
        for pattern in (INLINE_SCRIPT, HANDLER):
            for match in pattern.finditer(text):
                found.append(f"{path.relative_to(PROJECT_ROOT)}: {match.group(0)[:80]}")
    assert not found, "\n".join(found)
