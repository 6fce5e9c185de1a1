"""Errors as pages (in the site's style) or as Litestar's JSON error shape under /api."""

from __future__ import annotations

import logging
from urllib.parse import quote

from asyncpg import exceptions as pg
from asyncpg.exceptions import DataError
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.response import Redirect
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from app.errors import FormError, ServiceError, TooManyRequests
from app.i18n import N_, gettext
from app.web.responses import render

log = logging.getLogger("crowdmade.web")

# Translated where shown (gettext at request time).
TITLES = {
    400: N_("That didn't work"),
    401: N_("Please log in"),
    403: N_("Not allowed"),
    404: N_("Page not found"),
    405: N_("Not allowed"),
    409: N_("That can't be done right now"),
    413: N_("That upload is too large"),
    429: N_("Slow down a little"),
    500: N_("Something went wrong"),
    503: N_("Back in a moment"),
}
MESSAGES = {
    404: N_("We couldn't find that page. It may have moved, or it may not be yours to see."),
    413: N_("The files you sent are too large together. Images can be at most 5 MB each."),
    500: N_("Sorry, something broke on our side. We've been told; please try again in a moment."),
    503: N_("The site is briefly unavailable while our database catches its breath. Nothing you did was lost: "
            "try again in a few seconds."),
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _json(status: int, detail: str, extra: dict | None = None, headers: dict | None = None) -> Response:
    body: dict = {"status_code": status, "detail": detail}
    if extra:
        body["extra"] = extra
    return Response(content=body, status_code=status, media_type=MediaType.JSON, headers=headers)


def _page(request: Request, status: int, message: str) -> Response:
    response = render(
        request,
        "errors/error.html",
        {"status": status, "title": gettext(TITLES.get(status, N_("Error"))), "message": message},
        status_code=status,
    )
    return response


def service_error_handler(request: Request, exc: ServiceError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
    if _is_api(request):
        extra = {"errors": exc.errors} if isinstance(exc, FormError) else None
        detail = exc.message
        if isinstance(exc, FormError):
            detail = "; ".join(f"{field}: {text}" for field, text in exc.errors.items())
        return _json(exc.status_code, detail, extra, headers)
    message = exc.message if exc.status_code != 404 else gettext(MESSAGES[404])
    if isinstance(exc, FormError):
        message = " ".join(exc.errors.values()) or exc.message
    return _page(request, exc.status_code, message)


def http_error_handler(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if _is_api(request):
        return _json(status, str(exc.detail), exc.extra if isinstance(exc.extra, dict) else None, exc.headers)
    if isinstance(exc, NotAuthorizedException):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(path=f"/login?next={quote(target)}", status_code=303)
    message = gettext(MESSAGES[status]) if status in MESSAGES else (exc.detail if status < 500 else gettext(MESSAGES[500]))
    return _page(request, status, str(message))


def out_of_range_handler(request: Request, exc: Exception) -> Response:
    """An id or number too large for the database: nothing that big exists."""
    if _is_api(request):
        return _json(404, gettext("Not found"))
    return _page(request, 404, gettext(MESSAGES[404]))


def internal_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if _is_api(request):
        return _json(HTTP_500_INTERNAL_SERVER_ERROR, gettext("Internal server error"))
    try:
        return _page(request, 500, gettext(MESSAGES[500]))
    except Exception:  # the error page itself must not fail
        return Response(content=gettext(MESSAGES[500]), status_code=500, media_type=MediaType.TEXT)


def unavailable_handler(request: Request, exc: Exception) -> Response:
    """The database is down or restarting: a calm 503 with Retry-After, never a stack trace.
    Any transaction in flight was rolled back, so nothing is half-written."""
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    headers = {"Retry-After": "5", "Cache-Control": "no-store"}
    if _is_api(request):
        return _json(503, gettext("The service is briefly unavailable; retry in a few seconds."), headers=headers)
    try:
        page = _page(request, 503, gettext(MESSAGES[503]))
        page.headers.update(headers)
        return page
    except Exception:  # the page itself needs nothing from the database, but never fail here
        return Response(content=gettext(MESSAGES[503]), status_code=503, media_type=MediaType.TEXT, headers=headers)


UNAVAILABLE_ERRORS = (ConnectionError, pg.PostgresConnectionError, pg.OperatorInterventionError,
                      pg.TooManyConnectionsError, pg.ConnectionDoesNotExistError)

EXCEPTION_HANDLERS = {
    OverflowError: out_of_range_handler,
    DataError: out_of_range_handler,
    ServiceError: service_error_handler,
    **{error: unavailable_handler for error in UNAVAILABLE_ERRORS},
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}
