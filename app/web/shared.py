"""Members' pages in two layers: a shared render reused by every member, and each one's overlay.

A page that members see often (the ideas list and search first) is rendered once per page key
(its path and query, the language) and kept for SHARED_PAGE_SECONDS (1 s by default, so counts
stay fresh within a second); every signed-in member is served that same HTML with their own
parts written into it. The render never sees the member: it gets `member=SHARED_MEMBER` (a
signed-in stand-in with nothing personal), `csrf_token=CSRF_MARK`, and `slots`, with which the
templates leave a marker where a member's own part goes:

- `slots.here("account")`: filled per request with a value the page computes (the header's
  account menu, cart badge and bell, the staff menu, the verify banner: `header_values()`);
- `slots.choice("voted:12", off, on)`: both variants are rendered into the shared layer, and
  the member's state picks one per request (their vote, their heart), with no template work.

Filling is one regular-expression pass over the page plus the CSRF token's replacement, so a
member's page costs the overlay's queries (batched for the ids on the page) instead of a render.
The header parts are themselves kept per process, keyed by everything they show (the member's
name, points and level, staff flag, cart count, the path): a member's change of any of those is
a new key, so it shows at once.

What keeps one member's state out of another's page: the shared render has no member (a
template that printed `member.display_name` in a shared part would print nothing, never someone
else's name), the markers are filled from the request's own member only, and the CSRF token is
written per request. Pages with a flash message, a member's own lists (`?mine=1`) and staff are
rendered the ordinary way.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from litestar import MediaType, Request, Response
from markupsafe import Markup

from app import i18n
from app.settings import get_settings
from app.web.templating import jinja_env

SLOT = re.compile(r"<!--slot:([A-Za-z0-9_:.-]+)-->")
CSRF_MARK = "__cm_member_csrf_mark__"
MAX_PAGES = 2048
MAX_BYTES = 48 * 1024 * 1024  # the shared copies of one process, all keys together
VERSIONED_MAX_AGE = 60.0  # a versioned copy is rendered again at least this often (time-based parts)
MAX_HEADERS = 4096
FIRST_RENDER_WAIT = 5.0


class _SharedMember:
    """The signed-in stand-in a shared render gets: truthy, a member like any other, no one."""

    id = 0
    email = ""
    display_name = ""
    handle = ""
    is_staff = False
    is_admin = False
    verified = True
    points_balance = 0
    points_lifetime = 0
    locale = ""

    def __bool__(self) -> bool:
        return True


SHARED_MEMBER = _SharedMember()


class Slots:
    """What a shared render hands its templates as `slots`; collects the choices' variants."""

    def __init__(self) -> None:
        self.choices: dict[str, tuple[str, str]] = {}

    def here(self, name: str) -> Markup:
        return Markup("<!--slot:%s-->") % name  # the name is escaped like any value

    def choice(self, name: str, off: Any, on: Any) -> Markup:
        self.choices[name] = (str(off), str(on))
        return self.here(name)


@dataclass
class SharedPage:
    html: str
    choices: dict[str, tuple[str, str]]
    data: dict[str, Any] = field(default_factory=dict)  # what the overlay needs (the ids on the page)
    expires: float = 0.0
    version: Any = None  # what the page was rendered from (a versioned page: see SharedLayer.page)
    born: float = 0.0


def fill(page: SharedPage, values: dict[str, str], on: set[str], csrf_token: str) -> str:
    """The member's page: each marker replaced by its value, or by the chosen variant."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        found = values.get(name)
        if found is not None:
            return found
        variants = page.choices.get(name)
        return variants[name in on] if variants else ""

    return SLOT.sub(one, page.html).replace(CSRF_MARK, csrf_token)


class SharedLayer:
    """The shared renders of this process: a bounded LRU with a time to live, rendered once for
    the requests that arrive together."""

    def __init__(self, seconds: float, max_pages: int = MAX_PAGES, max_bytes: int = MAX_BYTES) -> None:
        self.seconds = seconds
        self.max_pages = max_pages
        self.max_bytes = max_bytes
        self.bytes = 0
        self.pages: OrderedDict[tuple, SharedPage] = OrderedDict()
        self.rendering: dict[tuple, asyncio.Future] = {}
        self.headers: OrderedDict[tuple, dict[str, str]] = OrderedDict()
        self.revalidated = 0  # copies kept because their version had not moved (for the tests)

    async def page(self, key: tuple, render: Callable[[], Awaitable[SharedPage]],
                   version: Callable[[], Awaitable[Any]] | None = None,
                   max_age: float = VERSIONED_MAX_AGE) -> SharedPage:
        """The shared copy for `key`, rendered by `render` when there is none fresh.

        A copy is fresh for `seconds` (so counts are at most that old). A page with a `version`
        (one cheap query that changes whenever anything the page shows does) is then checked
        instead of rendered again: the same version keeps the copy another `seconds`, up to
        `max_age` (for what moves with time alone, like a reduction ending). The version is read
        before the render, so a write during it only makes the next check render again."""
        now = time.monotonic()
        found = self.pages.get(key)
        if found is not None and found.expires > now:
            self.pages.move_to_end(key)
            return found
        current = None
        if version is not None:
            current = await version()
            if (found is not None and found.version is not None and found.version == current
                    and now - found.born < max_age and self.pages.get(key) is found):
                found.expires = time.monotonic() + self.seconds
                self.pages.move_to_end(key)
                self.revalidated += 1
                return found
        pending = self.rendering.get(key)
        if pending is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                return await asyncio.wait_for(asyncio.shield(pending), FIRST_RENDER_WAIT)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.rendering[key] = future
        try:
            page = await render()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: the waiters re-raise it, no "never retrieved" warning
            raise
        finally:
            self.rendering.pop(key, None)
        page.born = now
        page.version = current
        page.expires = time.monotonic() + self.seconds
        if self.seconds > 0:
            old = self.pages.pop(key, None)
            if old is not None:
                self.bytes -= len(old.html)
            self.pages[key] = page
            self.bytes += len(page.html)
            while len(self.pages) > self.max_pages or (self.bytes > self.max_bytes and len(self.pages) > 1):
                _, evicted = self.pages.popitem(last=False)
                self.bytes -= len(evicted.html)
        future.set_result(page)
        return page

    def header(self, key: tuple, make: Callable[[], dict[str, str]]) -> dict[str, str]:
        found = self.headers.get(key)
        if found is None:
            found = make()
            self.headers[key] = found
            while len(self.headers) > MAX_HEADERS:
                self.headers.popitem(last=False)
        else:
            self.headers.move_to_end(key)
        return found


_layer: SharedLayer | None = None


def shared_layer() -> SharedLayer:
    global _layer
    if _layer is None:
        _layer = SharedLayer(get_settings().shared_page_seconds)
    return _layer


def reset_shared_layer() -> None:
    global _layer
    _layer = None


def flavor(request: Request) -> str | None:
    """Which shared copy this request may be served: "member" (signed in, not staff: staff
    pages carry controls), "visitor", or None (a flash message waits: the page is its own)."""
    if request.cookies.get("cm_flash"):
        return None
    member = request.scope.get("state", {}).get("member")
    if member is None:
        return "visitor"
    return None if member.is_staff else "member"


def shares(request: Request) -> bool:
    """A signed-in member's request that may be served a shared page."""
    return flavor(request) == "member"


def shared_context(request: Request, slots: Slots) -> dict[str, Any]:
    """What a shared render's templates get instead of the member's own context."""
    return {
        "request": request,  # its path and query only: both are part of the key
        "request_path": request.url.path,
        "search_q": request.query_params.get("q", "") if request.url.path == "/ideas" else "",
        "member": SHARED_MEMBER if flavor(request) == "member" else None,
        "csrf_token": CSRF_MARK,
        "flash": [],
        "cart_count": 0,
        "slots": slots,
    }


def render_shared(template: str, context: dict[str, Any], slots: Slots, data: dict[str, Any] | None = None) -> SharedPage:
    html = jinja_env().get_template(template).render(**context)
    return SharedPage(html, slots.choices, data or {})


def render_part(template: str, request: Request, context: dict[str, Any]) -> str:
    """A small part of a page rendered for this request's own viewer (a member's recently viewed
    row), to fill a slot with; its CSRF token is written in with the rest."""
    state = request.scope.get("state", {})
    base = {"member": state.get("member"), "request_path": request.url.path, "csrf_token": CSRF_MARK}
    return jinja_env().get_template(template).render(**base, **context)


def header_values(request: Request) -> dict[str, str]:
    """The member's own parts of every page's header (account menu, cart badge, bell, staff
    menu, verify banner), rendered once per process for each state they show."""
    state = request.scope.get("state", {})
    member = state.get("member")
    cart_count = state.get("cart_count", 0)
    path = request.url.path
    key = (member, cart_count, path, i18n.get_locale())

    def make() -> dict[str, str]:
        env = jinja_env()
        ctx = {"member": member, "cart_count": cart_count, "request_path": path, "csrf_token": CSRF_MARK}
        return {name: env.get_template(f"_member/{name}.html").render(**ctx)
                for name in ("account", "staff_menu", "banner")}

    parts = shared_layer().header(key, make)
    return {"account": parts["account"], "staff": parts["staff_menu"], "banner": parts["banner"]}


def respond(request: Request, page: SharedPage, values: dict[str, str], on: set[str]) -> Response:
    state = request.scope.get("state", {})
    html = fill(page, {**header_values(request), **values}, on, state.get("csrf_token", ""))
    return Response(content=html, media_type=MediaType.HTML, headers={"Vary": "HX-Request"})
