"""Who is asking: what the HTTP glue knows about a signed-in member, and where it learns it.

The glue sits below every domain, so it does not import `accounts` (or `shop`, `experiments`):
those domains register here what the middleware and the page renderer call. Each registration
happens when its module is imported, as a job handler's does; `app/handlers.py` and the app's
route modules import every one of them before a request is served, and a request that arrives
with a hook missing fails loudly instead of treating everyone as a visitor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from litestar.types import Scope


class Viewer(Protocol):
    """The signed-in member as the glue sees it (accounts' `CurrentMember` is one)."""

    id: int
    is_staff: bool
    is_admin: bool
    verified: bool
    locale: str


MemberLookup = Callable[[str], Awaitable[Any]]
PageState = Callable[[Scope, dict[str, Any]], Awaitable[None]]


@dataclass
class _Hooks:
    member_for_session: MemberLookup | None = None
    member_for_api_token: MemberLookup | None = None
    # Filled in for each whole page a member or visitor loads (e.g. the header's cart badge).
    page_state: list[PageState] | None = None
    # The response class pages are rendered with (experiments' renders at send time).
    page_response: type | None = None
    # What follows a browser into a member's account when it signs in (the visitor's cart, its
    # A/B subject): called with the request and the member's id.
    on_sign_in: list[Callable[[Any, int], Awaitable[Any]]] | None = None
    # The visitor's A/B subject, kept by a new account (experiments).
    visitor_subject: Callable[[Any], str | None] | None = None


HOOKS = _Hooks(page_state=[], on_sign_in=[])


def provide_members(*, session: MemberLookup, api_token: MemberLookup) -> None:
    HOOKS.member_for_session = session
    HOOKS.member_for_api_token = api_token


def provide_page_state(fill: PageState) -> None:
    if fill not in HOOKS.page_state:
        HOOKS.page_state.append(fill)


def provide_page_response(cls: type) -> None:
    HOOKS.page_response = cls


def provide_sign_in(step: Callable[[Any, int], Awaitable[Any]]) -> None:
    if step not in HOOKS.on_sign_in:
        HOOKS.on_sign_in.append(step)


def provide_visitor_subject(read: Callable[[Any], str | None]) -> None:
    HOOKS.visitor_subject = read


async def signed_in(request: Any, member_id: int) -> None:
    """A browser signed in as the member: what it held as a visitor follows (app/accounts/routes.py)."""
    for step in HOOKS.on_sign_in:
        await step(request, member_id)


def visitor_subject(request: Any) -> str | None:
    return HOOKS.visitor_subject(request) if HOOKS.visitor_subject else None


def _required(hook: Any, name: str) -> Any:
    if hook is None:
        raise RuntimeError(f"app.web.identity: nothing registered {name} (import app.handlers first)")
    return hook


async def member_for_session(session_id: str) -> Any:
    return await _required(HOOKS.member_for_session, "member_for_session")(session_id)


async def member_for_api_token(token: str) -> Any:
    return await _required(HOOKS.member_for_api_token, "member_for_api_token")(token)
