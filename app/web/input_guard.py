"""Bad input stops at the door: one check of every request's text before a handler runs.

- A JSON body is decoded once here and walked (iteratively, so nothing recurses): deeper than
  `MAX_DEPTH` levels, a string holding a control character (other than tab, newline and carriage
  return) and a number outside the database's integer column are refused with a 400 in the API's
  error shape, naming the field (`extra.errors`), before any work is done. Invalid JSON and lone
  surrogates are refused by msgspec when Litestar decodes the body (also a 400).
- A form's text (urlencoded or multipart) has those control characters removed: a keyboard cannot
  type them, PostgreSQL refuses NUL in a text column and other tools mangle them. The form parsed
  here is the one the handler reads (Litestar keeps it in the connection's state).
- The query string loses them too; a path that holds one is a 404 (no such page exists).

The body read here is kept in the connection's state, where the handler's `request.body()`,
`request.json()` and `request.form()` find it, so it is read once.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec
from litestar.enums import ScopeType
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from app.errors import FormError, ServiceError
from app.i18n import gettext

MAX_DEPTH = 32
INT_MIN, INT_MAX = -(2**31), 2**31 - 1  # PostgreSQL's integer: every number column of ours
# C0 controls but tab, newline and carriage return; DEL; lone surrogates (from a form's decoder).
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_QUERY_CONTROL = re.compile(rb"%(?:[01][0-9a-fA-F]|7[fF])|[\x00-\x1f\x7f]")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def strip_controls(text: str) -> str:
    return CONTROL.sub("", text)


class BodyTooDeep(ServiceError):
    status_code = 400


def json_problems(value: Any) -> dict[str, str]:
    """The fields of a decoded JSON value that cannot be stored, as {"path.to.field": message}."""
    problems: dict[str, str] = {}
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if CONTROL.search(item):
                problems[path or "body"] = gettext(
                    "Remove the control characters (such as NUL) from this text: they cannot be stored.")
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            continue
        elif isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                problems[path or "body"] = gettext("This number is out of range (at most %(max)s).", max=format(INT_MAX, ","))
        elif isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise BodyTooDeep(gettext("The JSON body is nested too deeply (at most %(max)s levels).", max=MAX_DEPTH))
            if isinstance(item, dict):
                for key, child in item.items():
                    child_path = f"{path}.{key}" if path else str(key)
                    if CONTROL.search(key):
                        problems[child_path] = gettext(
                            "Remove the control characters (such as NUL) from this text: they cannot be stored.")
                    stack.append((child, child_path, depth + 1))
            else:
                stack.extend((child, f"{path}.{i}" if path else str(i), depth + 1) for i, child in enumerate(item))
        if len(problems) >= 20:
            break
    return problems


def check_json_body(body: bytes) -> None:
    """Raise a 400 (BodyTooDeep or FormError) for a body no handler should see."""
    if not body:
        return
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        raise BodyTooDeep(gettext("The JSON body is nested too deeply (at most %(max)s levels).", max=MAX_DEPTH)) from None
    except msgspec.DecodeError:
        return  # not JSON: Litestar answers its own 400 when the handler's data is decoded
    if problems := json_problems(value):
        raise FormError(problems)


def clean_form(form: dict[str, Any]) -> None:
    """Remove control characters from a parsed form's text values, in place."""
    for key, value in list(form.items()):
        if isinstance(value, str):
            if CONTROL.search(value):
                form[key] = strip_controls(value)
        elif isinstance(value, list):
            form[key] = [strip_controls(v) if isinstance(v, str) else v for v in value]
        if CONTROL.search(key):
            form[strip_controls(key)] = form.pop(key)


def clean_query(query: bytes) -> bytes:
    if not _QUERY_CONTROL.search(query):
        return query
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace")
    return urlencode([(strip_controls(k), strip_controls(v)) for k, v in pairs]).encode()


class InputGuardMiddleware:
    """Runs after routing (so the route's body limit applies) and before the handler."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        if CONTROL.search(scope["path"]):
            raise NotFoundException()
        if scope.get("query_string"):
            scope["query_string"] = clean_query(scope["query_string"])
        if scope["method"] in _BODY_METHODS and not scope["path"].startswith("/webhooks/"):
            content_type = b""
            for name, value in scope.get("headers", []):
                if name == b"content-type":
                    content_type = value.split(b";")[0].strip().lower()
                    break
            if content_type in (b"application/x-www-form-urlencoded", b"multipart/form-data"):
                request = scope["litestar_app"].request_class(scope=scope, receive=receive)
                try:
                    form = await request.form()  # kept in the connection's state for the handler
                except HTTPException:
                    raise
                except Exception:  # a malformed body: its stream is spent, so answer here
                    raise ClientException(gettext("The form could not be read. Go back and try again.")) from None
                if any(CONTROL.search(k) or (isinstance(v, str) and CONTROL.search(v)) for k, v in form.multi_items()):
                    clean_form(ScopeState.from_scope(scope).form)
            elif scope["path"].startswith("/api/") and (content_type.endswith(b"json") or not content_type):
                request = scope["litestar_app"].request_class(scope=scope, receive=receive)
                check_json_body(await request.body())
        await self.app(scope, receive, send)
