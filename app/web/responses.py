"""Render a page or its fragment, redirect after a form post, flash messages."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from litestar import Request
from litestar.datastructures import Cookie
from litestar.response import Redirect, ServerSentEvent, ServerSentEventMessage, Template

from app.web import identity
from app.web.identity import Viewer
from app.web.middleware import FLASH_COOKIE

Flash = tuple[str, str]  # (kind: success | info | error, text)


def current_member(request: Request) -> Viewer | None:
    return request.scope.get("state", {}).get("member")


async def form_text(request: Request) -> dict[str, str]:
    """A form's text fields (uploads left out)."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def is_htmx(request: Request) -> bool:
    """An htmx request for a fragment (boosted navigation still wants the whole page)."""
    headers = request.headers
    return headers.get("hx-request") == "true" and headers.get("hx-boosted") != "true"


def _read_flash(request: Request) -> list[Flash]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        return [(str(kind), str(text)) for kind, text in data][:5]
    except (ValueError, TypeError):
        return []


def flash_cookie(messages: list[Flash]) -> Cookie:
    value = base64.urlsafe_b64encode(json.dumps(messages).encode()).decode().rstrip("=")
    return Cookie(key=FLASH_COOKIE, value=value, path="/", httponly=True, samesite="lax", max_age=60)


def base_context(request: Request) -> dict[str, Any]:
    state = request.scope.get("state", {})
    return {
        "request": request,
        "request_path": request.url.path,
        "search_q": request.query_params.get("q", "") if request.url.path == "/ideas" else "",
        "member": state.get("member"),
        "csrf_token": state.get("csrf_token", ""),
        "flash": _read_flash(request),
        # The header's cart badge: counted once per page by SessionMiddleware (app/shop/cart.py).
        "cart_count": state.get("cart_count", 0),
    }


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    fragment: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Template:
    """The whole page, or `fragment` alone when htmx asked for it. Sends `Vary: HX-Request`.
    Templates can call `experiment("key", default)` for an A/B variant (app/experiments/web.py)."""
    ctx = {**base_context(request), **(context or {})}
    name = fragment if fragment and is_htmx(request) else template
    cookies = []
    # Only a whole page shows (and so uses up) the flash message: a fragment (`_name.html`), e.g.
    # the bell refreshing itself while a redirect is in flight, must leave it for that page.
    if ctx["flash"] and name == template and not name.rsplit("/", 1)[-1].startswith("_"):
        cookies.append(Cookie(key=FLASH_COOKIE, value="", path="/", max_age=0))
    page_response = identity.HOOKS.page_response or _missing_page_response()
    return page_response(
        template_name=name,
        context=ctx,
        status_code=status_code,
        headers={"Vary": "HX-Request", **(headers or {})},
        cookies=cookies,
    )


def _missing_page_response() -> type:
    raise RuntimeError("app.web.identity: no page response registered (import app.handlers first)")


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site relative paths: never an open redirect."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def redirect(url: str, *, flash: Flash | None = None, cookies: list[Cookie] | None = None) -> Redirect:
    all_cookies = list(cookies or [])
    if flash:
        all_cookies.append(flash_cookie([flash]))
    return Redirect(path=url, status_code=303, cookies=all_cookies)


def event_stream(subscription: Any, make_event: Callable[[], Awaitable[ServerSentEventMessage]]) -> ServerSentEvent:
    """A server-sent-events response: `make_event()` each time the live fan-out queue of
    `subscription` (an async context manager, see app/campaigns/live.py) says something
    changed, and a keep-alive comment every 25 s of silence."""

    async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
        async with subscription as queue:
            while True:
                try:
                    await asyncio.wait_for(queue.get(), timeout=25)
                except TimeoutError:
                    yield ServerSentEventMessage(comment="keep-alive")
                    continue
                yield await make_event()

    return ServerSentEvent(stream(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
