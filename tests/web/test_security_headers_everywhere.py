"""Every response carries the security headers, whatever its status (issue 18): also the router's
own 404 and 405, which Litestar answers before any middleware runs, and an error raised inside a
middleware (app/web/middleware.py SecurityHeaders is a `before_send` hook for that reason)."""

from __future__ import annotations

import re
from collections import defaultdict

import httpx
import pytest

from app.accounts import service as accounts
from app.asgi import create_app
from app.community import api as community_api
from app.community import routes as community_routes
from app.web import identity, middleware
from app.web.guards import requires_staff
from tests.factories import csrf_from, login, make_member

SKIPPED_PREFIXES = ("/static", "/schema")
MISSING_INT = 999_999_999
MISSING_STR = "no-such-thing"
BAD_JSON = b'{"title": "unterminated'
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def assert_security_headers(response: httpx.Response, label: str) -> None:
    headers = response.headers
    assert headers.get_list("content-security-policy") and len(headers.get_list("content-security-policy")) == 1, label
    assert "default-src 'self'" in headers["content-security-policy"], label
    assert "frame-ancestors 'none'" in headers["content-security-policy"], label
    assert headers.get("x-content-type-options") == "nosniff", label
    assert headers.get("referrer-policy") == "strict-origin-when-cross-origin", label
    expected_frames = "SAMEORIGIN" if response.request.url.path.startswith("/dev/mailbox") else "DENY"
    assert headers.get_list("x-frame-options") == [expected_frames], label
    assert "camera=()" in headers.get("permissions-policy", ""), label


def concrete(path: str) -> str:
    """The route's path with every parameter replaced by one that names nothing."""
    return re.sub(r"\{\w+:(\w+)\}", lambda m: str(MISSING_INT) if m.group(1) == "int" else MISSING_STR, path)


def is_stream(handler) -> bool:
    return "ServerSentEvent" in str(handler.parsed_fn_signature.return_type.annotation)


def browser(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another browser on the same app, with its own cookies."""
    return httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))


async def test_every_route_answers_its_errors_with_the_security_headers(client, monkeypatch):
    plain = await make_member("Plain Member")
    staff = await make_member("Header Staff", staff=True)
    as_member, as_staff = browser(client), browser(client)
    await login(as_member, plain.email)
    await login(as_staff, staff.email)
    member_token = {"Authorization": f"Bearer {await accounts.create_api_token(plain.id)}"}
    staff_token = {"Authorization": f"Bearer {await accounts.create_api_token(staff.id)}"}

    seen: dict[int, int] = defaultdict(int)
    wrong: list[str] = []
    requests_per_route: dict[str, int] = defaultdict(int)

    async def check(route_path: str, expected: int | tuple[int, ...], http: httpx.AsyncClient, method: str, url: str, **kwargs) -> None:
        response = await http.request(method, url, **kwargs)
        label = f"{method} {url} (route {route_path}) -> {response.status_code}"
        assert_security_headers(response, label)
        if response.status_code not in (expected if isinstance(expected, tuple) else (expected,)):
            wrong.append(f"{label}, expected {expected}")
        seen[response.status_code] += 1
        requests_per_route[route_path] += 1

    routes = [r for r in create_app(run_jobs=False, manage_database=False).routes
              if not r.path.startswith(SKIPPED_PREFIXES)]
    assert len(routes) > 150
    for route in routes:
        path, url = route.path, concrete(route.path)
        is_api = path.startswith("/api/")
        handlers = [h for h in route.route_handlers if "OPTIONS" not in h.http_methods]

        # 405: a method the route does not answer (the router refuses it before any middleware).
        wrong_method = next(m for m in ("DELETE", "PUT", "PATCH", "POST", "GET") if m not in route.methods)
        await check(path, 405, as_staff, wrong_method, url, headers=staff_token if is_api else {})

        # 404: an unknown path under the route (signed in as staff, so no guard turns it away); a
        # 405 where it is another route's path (/cart/lines/{line_id} answers POST only).
        await check(path, (404, 405), as_staff, "GET", url.rstrip("/") + "/no-such-page", headers=staff_token if is_api else {})

        for handler in handlers:
            guards = handler.guards or []
            for method in sorted(handler.http_methods):
                # 404: a page or an API object that does not exist.
                if method == "GET" and route.path_parameters and not is_stream(handler):
                    await check(path, 404, as_staff, "GET", url, headers=staff_token if is_api else {})
                if is_api:
                    if guards:  # 401: no token at all.
                        await check(path, 401, client, method, url)
                    if requires_staff in guards:  # 403: a member's token on a staff operation.
                        await check(path, 403, client, method, url, headers=member_token)
                    if method in WRITE_METHODS and "data" in handler.parsed_fn_signature.parameters:
                        # 400: a body that is not JSON.
                        await check(path, 400, client, method, url, content=BAD_JSON,
                                    headers={**staff_token, "content-type": "application/json"})
                elif path.startswith("/webhooks/"):
                    continue  # bad requests to the webhook are tested in tests/payments
                elif method in WRITE_METHODS:  # 403: a form posted without its CSRF token.
                    await check(path, 403, as_member, method, url, data={"x": "1"})
                elif method == "GET" and requires_staff in guards:  # 403: a staff page, to a member.
                    await check(path, 403, as_member, "GET", url)

    # 500: a page whose service fails.
    monkeypatch.setattr(community_routes.badges, "leaderboard", failing)
    await check("/leaderboard", 500, as_member, "GET", "/leaderboard")

    await as_member.aclose()
    await as_staff.aclose()
    assert not wrong, "\n".join(wrong)
    assert all(requests_per_route[r.path] for r in routes)
    assert {400, 401, 403, 404, 405, 500} <= set(seen), dict(seen)


async def failing(*args, **kwargs):
    raise RuntimeError("boom (test)")


@pytest.mark.parametrize("where", ["page", "api", "session middleware", "cart badge in the middleware"])
async def test_an_internal_error_still_carries_the_security_headers(client, monkeypatch, where):
    """A 500 from a handler (answered inside the middleware stack) and from the session
    middleware itself (answered by the app's exception handler, outside every middleware)."""
    member = await make_member("Failing Member")
    await login(client, member.email)
    url = "/leaderboard"
    if where == "page":
        monkeypatch.setattr(community_routes.badges, "leaderboard", failing)
    elif where == "api":
        monkeypatch.setattr(community_api.badges, "leaderboard", failing)
        url = "/api/v1/leaderboard"
    elif where == "session middleware":
        monkeypatch.setattr(identity.HOOKS, "member_for_session", failing)
    else:
        import app.shop.cart

        monkeypatch.setattr(app.shop.cart, "badge_count", failing)
    response = await client.get(url)
    assert response.status_code == 500, response.text[:300]
    assert_security_headers(response, f"{where}: GET {url}")


async def test_the_headers_keep_their_exceptions(client):
    """The dev mailbox may frame its own page, even on an error; a member's own pages and API
    answers are never cached; a visitor's public page keeps its own cache policy."""
    staff = await make_member("Mailbox Staff", staff=True)
    missing = await client.get(f"/dev/mailbox/{MISSING_INT}")
    assert missing.status_code in (403, 404)
    assert missing.headers["x-frame-options"] == "SAMEORIGIN"
    assert (await client.get("/no-such-page")).headers["x-frame-options"] == "DENY"
    assert "no-store" not in (await client.get("/ideas")).headers.get("cache-control", "")

    await login(client, staff.email)
    page = await client.get("/ideas")
    assert page.status_code == 200 and page.headers.get_list("cache-control") == ["no-store"]
    assert (await client.get(f"/dev/mailbox/{MISSING_INT}")).headers["x-frame-options"] == "SAMEORIGIN"
    token = {"Authorization": f"Bearer {await accounts.create_api_token(staff.id)}"}
    api = await client.get("/api/v1/me", headers=token)
    assert api.status_code == 200 and api.headers["cache-control"] == "no-store"
    assert_security_headers(api, "GET /api/v1/me")
    # A signed-in member's form, refused for its missing token, is not cached either.
    refused = await client.post("/account", data={"display_name": "x"})
    assert refused.status_code == 403 and refused.headers["cache-control"] == "no-store"
    assert csrf_from((await client.get("/account")).text)


def test_hsts_only_in_production(monkeypatch):
    assert (b"strict-transport-security" not in dict(middleware.SecurityHeaders()._headers))
    from app.settings import get_settings

    settings = get_settings().model_copy(update={"crowdmade_env": "production"})
    monkeypatch.setattr(middleware, "get_settings", lambda: settings)
    hook = middleware.SecurityHeaders()
    assert dict(hook._headers)[b"strict-transport-security"].startswith(b"max-age=31536000")
    assert dict(hook._mailbox_headers)[b"x-frame-options"] == b"SAMEORIGIN"

