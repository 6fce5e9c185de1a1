"""Sessions, CSRF bound to the session, client address and security headers (plain ASGI)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from typing import Any
from urllib.parse import urlsplit

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from app import i18n
from app.settings import get_settings
from app.web import identity
from app.web.page_cache import page_cache
from app.web.templating import render_text

SESSION_COOKIE = "cm_session"
FLASH_COOKIE = "cm_flash"
CSRF_HEADER = b"x-csrftoken"
CSRF_FIELD = "_csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SKIP_PREFIXES = ("/static/", "/media/", "/favicon.ico", "/schema", "/healthz", "/readyz", "/metrics")
EXEMPT_PREFIXES = ("/api/", "/webhooks/")


def csrf_token_for(session_id: str) -> str:
    """The CSRF token is an HMAC of the session id: bound to it, rotated with it."""
    key = get_settings().signing_key.encode()
    return hmac.new(key, f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def new_anonymous_id() -> str:
    """A visitor's id before login, signed so a client cannot choose one (a planted cookie
    would otherwise let an attacker know the CSRF token bound to it)."""
    nonce = secrets.token_urlsafe(24)
    return f"a.{nonce}.{_sign(nonce)}"


def _sign(value: str) -> str:
    key = get_settings().signing_key.encode()
    return hmac.new(key, f"anon:{value}".encode(), hashlib.sha256).hexdigest()[:24]


def is_signed_anonymous(raw: str) -> bool:
    parts = raw.split(".")
    return len(parts) == 3 and parts[0] == "a" and hmac.compare_digest(parts[2], _sign(parts[1]))


def client_ip(scope: Scope) -> str:
    peer = (scope.get("client") or ("", 0))[0] or ""
    trusted = get_settings().trusted_proxy_set
    if peer not in trusted:
        return peer
    forwarded = ""
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            forwarded = value.decode("latin-1")
    # Walk from the right: the first address that is not one of our proxies is the client.
    for candidate in reversed([p.strip() for p in forwarded.split(",") if p.strip()]):
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            break
        if candidate not in trusted:
            return candidate
    return peer


def session_cookie_header(value: str, *, max_age: int | None = 30 * 86400) -> bytes:
    parts = [f"{SESSION_COOKIE}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if get_settings().is_production:
        parts.append("Secure")
    return "; ".join(parts).encode()


def scope_cookie(scope: Scope, name: str) -> str:
    for header, value in scope.get("headers", []):
        if header == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == name:
                    return val
    return ""


def _header(scope: Scope, name: bytes) -> str:
    for header, value in scope.get("headers", []):
        if header == name:
            return value.decode("latin-1")
    return ""


def _choose_language(scope: Scope, member: Any, *, cookie: bool = True) -> None:
    """The page's language: the member's stored choice, else the picker's cookie, else the
    browser's Accept-Language, else English."""
    code = getattr(member, "locale", None) if member is not None else None
    if not code and cookie:
        code = i18n.normalize(scope_cookie(scope, i18n.LANG_COOKIE))
    if not code:
        code = i18n.from_accept_language(_header(scope, b"accept-language"))
    i18n.set_locale(code)
    scope.setdefault("state", {})["locale"] = i18n.get_locale()


class SessionMiddleware:
    """Loads the member for each request and enforces CSRF on unsafe HTML requests.

    - `/api/...`: `Authorization: Bearer` only; cookies are ignored (so no CSRF there).
    - pages: the `cm_session` cookie. A visitor gets a random anonymous id at first visit;
      login and logout always issue a NEW id (see app/web/auth.py), never the one sent.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"].startswith(SKIP_PREFIXES):
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state["client_ip"] = client_ip(scope)
        state["member"] = None
        path = scope["path"]
        if path.startswith("/api/"):
            auth = _header(scope, b"authorization")
            if auth.lower().startswith("bearer "):
                state["member"] = await identity.member_for_api_token(auth[7:].strip())
            _choose_language(scope, state["member"], cookie=False)
            await self.app(scope, receive, send)
            return
        if path.startswith("/webhooks/"):
            await self.app(scope, receive, send)
            return

        raw = scope_cookie(scope, SESSION_COOKIE)
        new_cookie = None
        if raw and not raw.startswith("a."):
            state["member"] = await identity.member_for_session(raw)
        if state["member"] is None and not (raw and is_signed_anonymous(raw)):
            raw = new_anonymous_id()  # no cookie, an unknown session, or a forged visitor id
            new_cookie = raw
        state["session_id"] = raw
        _choose_language(scope, state["member"])
        token = csrf_token_for(raw)
        state["csrf_token"] = token
        ScopeState.from_scope(scope).csrf_token = token
        if scope["method"] == "GET" and (_header(scope, b"hx-request") != "true" or _header(scope, b"hx-boosted") == "true"):
            # A whole page: what its header shows for this member or visitor (the shop's cart
            # badge: one indexed query; none for a visitor who never added anything).
            for fill in identity.HOOKS.page_state:
                await fill(scope, state)

        if scope["method"] not in SAFE_METHODS:
            try:
                ok = await self._csrf_ok(scope, receive, token)
            except ClientException as error:  # e.g. a body over the size limit
                await self._refuse(scope, send, status=error.status_code)
                return
            if not ok:
                await self._refuse(scope, send)
                return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and new_cookie and not state.get("session_cookie_set"):
                headers = MutableScopeHeaders.from_message(message)
                headers.add("set-cookie", session_cookie_header(new_cookie).decode())
            await send(message)

        if state["member"] is None and not state.get("cart_count"):
            cache = page_cache()
            key = cache.key_for(scope, state["locale"])
            if key is not None:
                await cache.serve(self.app, scope, receive, send_with_cookie, key=key, token=token, state=state)
                return
        await self.app(scope, receive, send_with_cookie)

    async def _csrf_ok(self, scope: Scope, receive: Receive, expected: str) -> bool:
        sent = _header(scope, CSRF_HEADER)
        if not sent:
            content_type = _header(scope, b"content-type").split(";")[0].strip().lower()
            if content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
                request = scope["litestar_app"].request_class(scope=scope, receive=receive)
                try:
                    form = await request.form()
                except ClientException:
                    raise
                except Exception:  # a malformed body: refuse as CSRF-less
                    return False
                sent = form.get(CSRF_FIELD) or ""
        return bool(sent) and hmac.compare_digest(str(sent), expected)

    async def _refuse(self, scope: Scope, send: Send, status: int = 403) -> None:
        if status == 413:
            title = i18n.gettext("That upload is too large")
            message = i18n.gettext("The files you sent are too large together. Images can be at most 5 MB each; go back and try fewer or smaller files.")
        elif status == 403:
            title = i18n.gettext("This form has expired")
            message = i18n.gettext("For your security, the page you submitted from is no longer valid. Go back, reload the page and try again.")
        else:
            title, message = i18n.gettext("That didn't work"), i18n.gettext("The request could not be read. Go back and try again.")
        body = render_text(
            "errors/error.html",
            {"status": status, "title": title, "message": message,
             "member": scope.get("state", {}).get("member"), "csrf_token": "", "flash": [], "request_path": scope["path"]},
        ).encode()
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class SecurityHeaders:
    """A `before_send` hook (app/asgi.py) that gives EVERY response the same security headers.

    Not a middleware: Litestar routes before the middleware stack runs, so its 404 (unknown
    path) and 405 (wrong method), and any error raised inside a middleware, are answered by the
    app's exception handler outside every middleware. `before_send` wraps the server's `send`
    itself (Litestar.__call__), so nothing gets past it. A header a handler set itself wins.
    The header bytes are built once: this runs for every response.
    """

    def __init__(self) -> None:
        settings = get_settings()
        stripe_origins = " ".join(sorted({_origin(u) for u in (settings.stripe_js_url, settings.stripe_api_base) if u}))
        frame_src = f"'self' {stripe_origins}".strip()  # 'self': the dev mailbox previews emails in a frame
        self.csp = (
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            f"script-src 'self' {stripe_origins}; connect-src 'self' {stripe_origins}; "
            f"frame-src {frame_src}; frame-ancestors 'none'; "
            "form-action 'self'; base-uri 'self'; object-src 'none'"
        ).replace("  ", " ")
        common = [
            (b"content-security-policy", self.csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        if settings.is_production:
            common.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        self._headers = tuple(common) + ((b"x-frame-options", b"DENY"),)
        # The dev mailbox shows an email's HTML in a frame of its own page.
        self._mailbox_headers = tuple(common) + ((b"x-frame-options", b"SAMEORIGIN"),)

    async def __call__(self, message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = message.get("headers")
        if not isinstance(headers, list):
            headers = message["headers"] = list(headers or ())  # type: ignore[typeddict-item]
        present = {name.lower() for name, _ in headers}
        path = scope.get("path", "")
        for name, value in self._mailbox_headers if path.startswith("/dev/mailbox") else self._headers:
            if name not in present:
                headers.append((name, value))
        # A signed-in member's pages and API answers are theirs alone: no shared or browser cache.
        if scope.get("state", {}).get("member") is not None and (
            path.startswith("/api/")
            or any(name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in headers)
        ):
            headers[:] = [(name, value) for name, value in headers if name.lower() != b"cache-control"]
            headers.append((b"cache-control", b"no-store"))
