"""Privacy pages: export download, marketing consents, sign-in by email link, account deletion
(the services are in privacy.py)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie

from app.accounts.privacy import (
    CONTENT_CHOICES,
    DELETE_LINK_HOURS,
    LOGIN_LINK_MINUTES,
    MARKETING_TEXT_VERSION,
    consent_history,
    delete_account,
    deletion_plan,
    export_data,
    export_json,
    marketing_text,
    member_for_deletion,
    request_deletion,
    request_login_link,
    set_marketing_consent,
    sign_in_with_link,
)
from app.accounts.routes import anonymous_cookie, start_session
from app.accounts.tables import Member
from app.db import utcnow
from app.errors import Conflict, FormError, TooManyRequests
from app.i18n import gettext
from app.web.guards import requires_member
from app.web.responses import current_member, form_text, redirect, render


def _ip(request: Request) -> str:
    return request.scope.get("state", {}).get("client_ip", "")


@get("/account/export", guards=[requires_member])
async def export_download(request: Request) -> Response:
    member = current_member(request)
    data = await export_data(member.id)
    name = f"crowdmade-data-{member.handle}-{utcnow().date().isoformat()}.json"
    return Response(export_json(data), media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


async def _consents_page(request: Request, *, status_code: int = 200) -> Response:
    member = current_member(request)
    row = await Member.select(Member.marketing_opt_in).where(Member.id == member.id).first()
    return render(request, "accounts/privacy_consents.html", {
        "opt_in": bool(row["marketing_opt_in"]), "history": await consent_history(member.id),
        "text": marketing_text(), "text_version": MARKETING_TEXT_VERSION,
    }, status_code=status_code)


@get("/account/consents", guards=[requires_member])
async def consents_page(request: Request) -> Response:
    return await _consents_page(request)


@post("/account/consents", guards=[requires_member])
async def consents_submit(request: Request) -> Response:
    data = await form_text(request)
    granted = data.get("marketing_email") in ("on", "yes", "1", "true")
    changed = await set_marketing_consent(current_member(request).id, granted)
    if not changed:
        message = gettext("Nothing changed.")
    elif granted:
        message = gettext("Thanks: you will get our news by email. You can stop them here any time.")
    else:
        message = gettext("Done: we will not send you marketing emails.")
    return redirect("/account/consents", flash=("success" if changed else "info", message))


@post("/login/link")
async def login_link_request(request: Request) -> Response:
    data = await form_text(request)
    try:
        email = await request_login_link(data.get("link_email", ""), ip=_ip(request))
    except (FormError, TooManyRequests) as error:
        errors = error.errors if isinstance(error, FormError) else {"link_email": error.message}
        return render(request, "accounts/login.html", {
            "values": {"link_email": data.get("link_email", "")}, "errors": errors, "next": ""},
            status_code=429 if isinstance(error, TooManyRequests) else 400)
    return render(request, "accounts/privacy_link_sent.html", {"email": email, "minutes": LOGIN_LINK_MINUTES})


@get("/login/link")
async def login_link_page(request: Request, token: str = "") -> Response:
    # A GET never signs in (mail scanners open links): the page's button does.
    return render(request, "accounts/privacy_login_link.html", {"token": token, "errors": {}})


@post("/login/link/confirm")
async def login_link_confirm(request: Request) -> Response:
    data = await form_text(request)
    try:
        member = await sign_in_with_link(data.get("token", ""), ip=_ip(request))
    except (FormError, TooManyRequests) as error:
        errors = error.errors if isinstance(error, FormError) else {"token": error.message}
        return render(request, "accounts/privacy_login_link.html", {"token": "", "errors": errors},
                      status_code=429 if isinstance(error, TooManyRequests) else 400)
    cookie = await start_session(request, member)
    return redirect("/", flash=("success", gettext("Welcome back, %(name)s.", name=member.display_name)), cookies=[cookie])


@get("/account/delete", guards=[requires_member])
async def delete_page(request: Request) -> Response:
    member = current_member(request)
    return render(request, "accounts/privacy_delete.html", {**await deletion_plan(member.id), "errors": {}})


@post("/account/delete", guards=[requires_member])
async def delete_request(request: Request) -> Response:
    member = current_member(request)
    plan = await deletion_plan(member.id)
    if plan["blockers"]:
        return render(request, "accounts/privacy_delete.html", {**plan, "errors": {}}, status_code=409)
    try:
        await request_deletion(member)
    except TooManyRequests as error:
        return render(request, "accounts/privacy_delete.html", {**plan, "errors": {"form": error.message}},
                      status_code=429)
    return redirect("/account/delete", flash=(
        "success", gettext("We sent a confirmation link to %(email)s. It works for %(hours)s hours, once.",
                           email=member.email, hours=DELETE_LINK_HOURS)))


async def _confirm_context(token: str, **extra: Any) -> dict[str, Any]:
    target = await member_for_deletion(token)
    plan = await deletion_plan(target.id) if target else {"blockers": [], "cancel": []}
    return {"token": token if target else "", "target": target, "choices": CONTENT_CHOICES, "content": "keep",
            "errors": {}, **plan, **extra}


@get("/account/delete/confirm")
async def delete_confirm_page(request: Request, token: str = "") -> Response:
    return render(request, "accounts/privacy_delete_confirm.html", await _confirm_context(token))


@post("/account/delete/confirm")
async def delete_confirm(request: Request) -> Response:
    data = await form_text(request)
    token, content = data.get("token", ""), data.get("content", "keep")
    try:
        result = await delete_account(token, content=content)
    except (FormError, Conflict) as error:
        errors = error.errors if isinstance(error, FormError) else {"form": error.message}
        ctx = await _confirm_context(token, errors=errors, content=content)
        return render(request, "accounts/privacy_delete_confirm.html", ctx,
                      status_code=400 if isinstance(error, FormError) else 409)
    cookies: list[Cookie] = []
    viewer = current_member(request)
    if viewer is not None and viewer.id == result.member_id:
        cookies.append(anonymous_cookie(request))  # this browser's session ended with the account
    return redirect("/account/deleted", cookies=cookies)


@get("/account/deleted")
async def deleted_page(request: Request) -> Response:
    return render(request, "accounts/privacy_deleted.html")


ROUTES = [
    export_download,
    consents_page,
    consents_submit,
    login_link_request,
    login_link_page,
    login_link_confirm,
    delete_page,
    delete_request,
    delete_confirm_page,
    delete_confirm,
    deleted_page,
]
