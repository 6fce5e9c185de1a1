"""Who may call a handler. Guards read the member the session middleware loaded.

Guards are coroutines: Litestar runs a plain-function guard in a worker thread
(`sync_to_thread`), and that hop cost ~12% of a web worker's CPU on every guarded request
(py-spy, make bench, votes)."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from app.i18n import gettext
from app.web.identity import Viewer


def member_of(connection: ASGIConnection) -> Viewer | None:
    return connection.scope.get("state", {}).get("member")


async def requires_member(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if member_of(connection) is None:
        raise NotAuthorizedException(gettext("Log in to continue."))


async def requires_staff(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    member = member_of(connection)
    if member is None:
        raise NotAuthorizedException(gettext("Log in to continue."))
    if not member.is_staff:
        raise PermissionDeniedException(gettext("Staff only."))


async def provide_member(request) -> Viewer | None:  # noqa: ANN001 (Litestar resolves by name)
    return member_of(request)


async def provide_required_member(request) -> Viewer:  # noqa: ANN001
    member = member_of(request)
    if member is None:
        raise NotAuthorizedException(gettext("Log in to continue."))
    return member
