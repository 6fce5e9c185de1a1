"""A one-second cache of whole public pages for visitors who are not signed in.

On launch day most page views are anonymous and hit the same few pages (the front page, the
ideas list, the shop, the campaign everyone was sent to). Each web process keeps the rendered
page for PAGE_CACHE_SECONDS (1 s by default, 0 turns it off) and serves it again to other
visitors, so counts stay fresh within a second (issue 6) while the database and the templates
work once per second per page.

What must never be shared, and how it is kept out:
- Signed-in members are never served from or stored in the cache (their vote state, hearts
  and cart are their own).
- The CSRF token is per visitor: the stored page holds a placeholder instead, and each visitor
  gets their own token written back in.
- Visitors with state of their own (a flash message, a cart, experiment variants) bypass the
  cache: only the cookies in SHAREABLE_COOKIES are allowed.
- A response that sets a cookie (an experiment assigning a variant, a flash being cleared), is
  not 200 HTML, or streams, is never stored. The language is part of the key, and so is the
  whole query string. htmx fragment requests are not cached.
- Idea pages are shared too, but a visit is each visitor's own: the page records the view and
  updates the visitor's recently-viewed cookie. A page registered with `visitor_page()` names
  the cookies it sets per visitor (left out of the copy kept) and a function that does the
  visit's own work on every hit; a copy rendered in the background has no visitor (its state
  says `page_cache_render`), so it records nothing.

An expired page is served once more while its next copy renders in the background, and a page
rendered for the first time is rendered once for the visitors who arrive meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar.constants import SCOPE_STATE_NAMESPACE
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import CONNECTION_STATE_KEY, ScopeState

from app.settings import get_settings

log = logging.getLogger(__name__)

PLACEHOLDER = b"__cm_csrf_token_placeholder__"
CACHEABLE_PATHS = frozenset({"/", "/ideas", "/shop", "/campaigns"})
# Cookies that change nothing on the cached pages: the session (a member is never served from the
# cache, checked before), the language (part of the key) and the recently-viewed lists, which
# only the idea and product pages read. Any other cookie (cart, flash, experiments) bypasses.
SHAREABLE_COOKIES = frozenset({"cm_session", "lang", "cm_seen", "cm_recent"})
MAX_ENTRIES = 512
MAX_BODY = 512 * 1024
FIRST_RENDER_WAIT = 5.0  # seconds a visitor waits for another request's first render of a page


@dataclass(frozen=True)
class VisitorPage:
    """A shared page whose visit is each visitor's own (see the module's docstring)."""

    pattern: re.Pattern[str]
    cookies: frozenset[str]  # names of the cookies the page sets per visitor: never kept in the copy
    on_hit: Callable[[Scope, re.Match[str]], list[bytes]]  # the visit's work; Set-Cookie values


VISITOR_PAGES: list[VisitorPage] = []


def visitor_page(pattern: str, cookies: set[str], on_hit: Callable[[Scope, re.Match[str]], list[bytes]]) -> None:
    """Share the page at paths matching `pattern` (whole path) with visitors; `on_hit` runs for
    each visitor served the shared copy and returns the Set-Cookie values for them."""
    VISITOR_PAGES.append(VisitorPage(re.compile(pattern), frozenset(cookies), on_hit))


def _visitor_page(path: str) -> tuple[VisitorPage, re.Match[str]] | None:
    for page in VISITOR_PAGES:
        match = page.pattern.fullmatch(path)
        if match:
            return page, match
    return None


class PageCache:
    def __init__(self, seconds: float, max_entries: int = MAX_ENTRIES) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self.entries: OrderedDict[tuple, tuple[float, int, list[tuple[bytes, bytes]], bytes]] = OrderedDict()
        self.refreshing: set[tuple] = set()
        self.tasks: set[asyncio.Task] = set()
        self.first_renders: dict[tuple, asyncio.Event] = {}

    def key_for(self, scope: Scope, locale: str) -> tuple | None:
        """The cache key of this request, or None when it must not be shared."""
        if self.seconds <= 0 or scope["method"] != "GET":
            return None
        if scope["path"] not in CACHEABLE_PATHS and _visitor_page(scope["path"]) is None:
            return None
        for name, value in scope.get("headers", []):
            if name.startswith(b"hx-"):
                return None
            if name == b"cookie":
                for part in value.split(b";"):
                    if part.strip().partition(b"=")[0].decode("latin-1") not in SHAREABLE_COOKIES:
                        return None
        return (scope["path"], scope.get("query_string", b""), locale)

    async def settle(self) -> None:
        """Wait for the pages being rendered in the background (tests)."""
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def put(self, key: tuple, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        # Kept for 75-100% of the cache time, so pages first rendered together (a warm-up, ten
        # searches) do not all expire, and re-render, in the same instant.
        self.entries[key] = (time.monotonic() + self.seconds * random.uniform(0.75, 1.0), status, headers, body)
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)

    async def serve(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, *, key: tuple,
                    token: str, state: dict[str, Any]) -> None:
        """Answer from the cache, or render, answer and keep the page when it may be shared."""
        token_bytes = token.encode()
        found = self.entries.get(key)
        if found is None and key in self.first_renders:
            # Another request is rendering this page for the first time (a cold start after a
            # deploy, a new search): wait for its copy instead of rendering it again.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.first_renders[key].wait(), FIRST_RENDER_WAIT)
            found = self.entries.get(key)
        if found is not None:
            if found[0] < time.monotonic() and key not in self.refreshing:
                # Expired: this visitor gets the last copy at once and the next one is rendered in
                # the background, once, so no visitor waits for a render (the renders of ten
                # expiring searches were the p99 at 16 connections). A copy is thus served at
                # most PAGE_CACHE_SECONDS plus one render old.
                self.refreshing.add(key)
                task = asyncio.create_task(self._refresh(app, scope, key, token, state))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            _, status, headers, body = found
            body = body.replace(PLACEHOLDER, token_bytes)
            vary = b", ".join([v for n, v in headers if n == b"vary"] + [b"Accept-Encoding"])
            headers = [*(h for h in headers if h[0] != b"vary"), (b"x-page-cache", b"hit"), (b"vary", vary)]
            visit = _visitor_page(scope["path"])
            if visit is not None:  # this visitor's own part of the visit (a view, their cookie)
                headers += [(b"set-cookie", value) for value in visit[0].on_hit(scope, visit[1])]
            if accepts_gzip(scope) and len(body) >= 1024:
                # The page is kept plain (the token is written in per visitor), then compressed
                # for this visitor: ~0.1 ms for a 20 kB page at level 5.
                packer = zlib.compressobj(5, zlib.DEFLATED, 31)
                body = packer.compress(body) + packer.flush()
                headers.append((b"content-encoding", b"gzip"))
            await send({"type": "http.response.start", "status": status,
                        "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return

        first = key not in self.first_renders
        if first:
            self.first_renders[key] = asyncio.Event()
        try:
            await app(_plain(scope), receive, self._capture(key, token_bytes, state, send))
        finally:
            if first:
                self.first_renders.pop(key).set()

    async def _refresh(self, app: ASGIApp, scope: Scope, key: tuple, token: str, state: dict[str, Any]) -> None:
        """Render the page again with nobody waiting for it; drop the old copy if the new one may
        not be shared (an experiment started on it, an error)."""
        fresh = {k: v for k, v in state.items() if k not in ("experiments", SCOPE_STATE_NAMESPACE, CONNECTION_STATE_KEY, "page_cache_stored")}
        fresh["page_cache_render"] = True  # nobody is visiting: a page records no visit
        background = {**_plain(scope), "state": fresh}
        ScopeState.from_scope(background).csrf_token = token
        stored: list[bool] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(message: Message) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                stored.append(fresh.get("page_cache_stored", False))

        try:
            await app(background, receive, self._capture(key, token.encode(), fresh, discard))
        except Exception:  # never fails a visitor: the page is rendered again on the next expiry
            log.exception("page cache: rendering %s in the background failed", scope.get("path"))
        finally:
            self.refreshing.discard(key)
            if not any(stored):
                self.entries.pop(key, None)

    def _capture(self, key: tuple, token_bytes: bytes, state: dict[str, Any], send: Send) -> Send:
        """A send that passes the response on and keeps a shareable copy of it."""
        start: tuple[int, list[tuple[bytes, bytes]]] | None = None
        chunks: list[bytes] = []
        shareable = True
        visit = _visitor_page(key[0])
        own_cookies = visit[0].cookies if visit is not None else frozenset()

        def visitors_own(name: bytes, value: bytes) -> bool:
            return name.lower() == b"set-cookie" and value.partition(b"=")[0].strip().decode("latin-1") in own_cookies

        async def capture(message: Message) -> None:
            nonlocal start, shareable
            if message["type"] == "http.response.start":
                # A copy, taken now: the middleware outside adds this visitor's session cookie to
                # the message's own header list once it is passed on.
                headers = [(n, v) for n, v in message.get("headers") or [] if not visitors_own(n, v)]
                start = (message["status"], headers)
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                if (message["status"] != 200 or not content_type.startswith(b"text/html")
                        or any(n.lower() in (b"set-cookie", b"cache-control", b"content-encoding") for n, _ in headers)):
                    shareable = False
            elif message["type"] == "http.response.body" and shareable:
                chunks.append(message.get("body", b""))
                if sum(map(len, chunks)) > MAX_BODY:
                    shareable = False
                elif not message.get("more_body", False):
                    ctx = state.get("experiments")
                    if not (ctx is not None and (ctx.pending or ctx.new_cookie)):
                        body = b"".join(chunks)
                        kept = [(n.lower(), v) for n, v in start[1] if n.lower() != b"content-length"]
                        self.put(key, start[0], kept, body.replace(token_bytes, PLACEHOLDER))
                        state["page_cache_stored"] = True
            await send(message)

        return capture


def _plain(scope: Scope) -> Scope:
    """The request without Accept-Encoding: rendered uncompressed, so the visitor's token can be
    found and taken out of the copy kept."""
    return {**scope, "headers": [(n, v) for n, v in scope["headers"] if n != b"accept-encoding"]}


def accepts_gzip(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"accept-encoding":
            return b"gzip" in value
    return False


_cache: PageCache | None = None


def page_cache() -> PageCache:
    global _cache
    if _cache is None:
        _cache = PageCache(get_settings().page_cache_seconds)
    return _cache


def reset_page_cache() -> None:
    global _cache
    _cache = None
