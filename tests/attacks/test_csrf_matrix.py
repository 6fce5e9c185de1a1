"""CSRF matrix (issue 7): every unsafe HTML route, found by walking the app's route table so
new routes are covered automatically, refuses a request without a token and one carrying
another session's token; the API (Bearer only) and the Stripe webhook (signature) are exempt."""

from __future__ import annotations

import re

from litestar.routes import HTTPRoute

from app.asgi import create_app
from tests.factories import csrf_from, login, make_member

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
EXEMPT = ("/api/", "/webhooks/")


def unsafe_html_routes() -> list[tuple[str, str]]:
    app = create_app(run_jobs=False, manage_database=False)
    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith(EXEMPT):
            continue
        for method in sorted(set(route.methods) & UNSAFE):
            # Fill every path parameter with a plausible value: the refusal must come first.
            path = re.sub(r"\{[^}:]+:int\}", "1", route.path)
            path = re.sub(r"\{[^}]+\}", "x", path)
            found.append((method, path))
    return sorted(set(found))


ROUTES = unsafe_html_routes()


def test_the_walk_finds_the_forms():
    paths = {path for _, path in ROUTES}
    for expected in ("/login", "/logout", "/ideas/1/vote", "/pledges/1/confirm", "/cart/lines", "/checkout"):
        assert expected in paths, expected
    assert len(ROUTES) > 40


_FOREIGN: list[str] = []


async def _foreign_token() -> str:
    """The CSRF token of another browser (a visitor session of its own)."""
    if not _FOREIGN:
        import httpx

        app = create_app(run_jobs=False, manage_database=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50002)),
                                     base_url="http://testserver.local") as other:
            _FOREIGN.append(csrf_from((await other.get("/login")).text))
    return _FOREIGN[0]


async def _attempt(client, method: str, path: str, token: str | None):
    data = {"_csrf_token": token} if token else {}
    return await client.request(method, path, data=data, follow_redirects=False)


async def test_every_unsafe_route_refuses_missing_and_foreign_tokens(client):
    member = await make_member()
    await login(client, member.email)
    foreign = await _foreign_token()
    wrong = []
    for method, path in ROUTES:
        missing = await _attempt(client, method, path, None)
        if missing.status_code != 403 or "This form has expired" not in missing.text:
            wrong.append((method, path, "no token", missing.status_code))
        # A token from another browser is refused too, as a form field or as the htmx header.
        if (status := (await _attempt(client, method, path, foreign)).status_code) != 403:
            wrong.append((method, path, "foreign field", status))
        header = await client.request(method, path, headers={"X-CSRFToken": foreign}, follow_redirects=False)
        if header.status_code != 403:
            wrong.append((method, path, "foreign header", header.status_code))
    assert not wrong
