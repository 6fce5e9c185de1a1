"""The development mailbox: every email the site "sent", readable in the browser."""

from __future__ import annotations

from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from app.errors import NotFound
from app.mail.tables import EmailMessage
from app.web.responses import render


async def requires_local_or_staff(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """The dev mailbox holds live sign-in links: only this machine (not through a proxy) or staff."""
    member = connection.scope.get("state", {}).get("member")
    host = (connection.scope.get("client") or ("", 0))[0]
    local = host in ("127.0.0.1", "::1", "localhost") and "x-forwarded-for" not in connection.headers
    if not (local or (member is not None and member.is_staff)):
        raise PermissionDeniedException("The dev mailbox is only shown on this machine.")


@get("/dev/mailbox", guards=[requires_local_or_staff])
async def mailbox(request: Request, to: str = "") -> Response:
    query = EmailMessage.select(
        EmailMessage.id, EmailMessage.recipient, EmailMessage.subject, EmailMessage.kind,
        EmailMessage.status, EmailMessage.created_at,
    )
    if to:
        query = query.where(EmailMessage.recipient == to.strip().lower())
    emails = await query.order_by(EmailMessage.id, ascending=False).limit(200)
    return render(request, "dev/mailbox.html", {"emails": emails, "to": to})


@get("/dev/mailbox/{email_id:int}", guards=[requires_local_or_staff])
async def mailbox_message(request: Request, email_id: int) -> Response:
    email = await EmailMessage.select().where(EmailMessage.id == email_id).first()
    if email is None:
        raise NotFound("No such email")
    return render(request, "dev/message.html", {"email": email})


@get("/dev/mailbox/{email_id:int}/html", guards=[requires_local_or_staff])
async def mailbox_message_html(email_id: int) -> Response:
    email = await EmailMessage.select(EmailMessage.html_body).where(EmailMessage.id == email_id).first()
    if email is None:
        raise NotFound("No such email")
    # Shown in a sandboxed iframe; the body was rendered by our autoescaping templates.
    return Response(
        content=email["html_body"], media_type="text/html",
        headers={"Content-Security-Policy": "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'",
                 "X-Frame-Options": "SAMEORIGIN"},
    )


ROUTES = [mailbox, mailbox_message, mailbox_message_html]
