"""HTML pages for accounts: sign up, verify, log in/out, password reset, settings, profiles."""

from __future__ import annotations

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie

from app import i18n
from app.accounts import service
from app.accounts.privacy import marketing_text, set_marketing_consent
from app.accounts.service import CurrentMember
from app.errors import FormError, TooManyRequests
from app.settings import get_settings
from app.web import identity
from app.web.guards import requires_member
from app.web.middleware import SESSION_COOKIE, new_anonymous_id
from app.web.responses import current_member, form_text, redirect, render, safe_next


def _session_cookie(value: str, *, max_age: int = 30 * 86400) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        path="/",
        httponly=True,
        samesite="lax",
        secure=get_settings().is_production,
        max_age=max_age,
    )


def _ip(request: Request) -> str:
    return request.scope.get("state", {}).get("client_ip", "")


async def start_session(request: Request, member: CurrentMember) -> Cookie:
    """Log in: end the browser's previous session and issue a brand-new id (no fixation).
    What the browser held as a visitor follows (the cart keyed by the old anonymous id, the A/B
    variants it saw: app/web/identity.py)."""
    await service.end_session(request.cookies.get(SESSION_COOKIE, ""))
    raw = await service.create_session(
        member.id, ip=_ip(request), user_agent=request.headers.get("user-agent", "")
    )
    request.scope["state"]["session_cookie_set"] = True
    await identity.signed_in(request, member.id)
    return _session_cookie(raw)


def anonymous_cookie(request: Request) -> Cookie:
    request.scope["state"]["session_cookie_set"] = True
    return _session_cookie(new_anonymous_id())


@get("/signup", name="signup")
async def signup_page(request: Request, ref: str = "") -> Response:
    if current_member(request):
        return redirect("/")
    return render(request, "accounts/signup.html", {"values": {"ref": ref[:40]}, "errors": {}, **_signup_extras()})


def _signup_extras() -> dict:
    return {"marketing_text": marketing_text()}


@post("/signup")
async def signup_submit(request: Request) -> Response:
    data = await form_text(request)
    try:
        member = await service.signup(
            email=data.get("email", ""),
            password=data.get("password", ""),
            display_name=data.get("display_name", ""),
            ip=_ip(request),
            referral=data.get("ref", ""),
            ab_subject=identity.visitor_subject(request) or "",
        )
    except FormError as error:
        values = {k: v for k, v in data.items() if k != "password"}
        return render(request, "accounts/signup.html", {"values": values, "errors": error.errors, **_signup_extras()},
                      status_code=400)
    except TooManyRequests as error:
        return render(request, "accounts/signup.html", {"values": {}, "errors": {"form": error.message}, **_signup_extras()},
                      status_code=429)
    if member is not None and data.get("marketing_opt_in") == "on":  # unchecked unless the member ticks it

        await set_marketing_consent(member.id, True)
    # The same answer whether or not the address already had an account (no enumeration): the
    # new member logs in from the link in the email, an existing one is told by email.
    return redirect("/signup/sent")


@get("/signup/sent")
async def signup_sent(request: Request) -> Response:
    return render(request, "accounts/signup_sent.html", {"hours": service.VERIFY_HOURS})


@get("/welcome", guards=[requires_member])
async def welcome(request: Request) -> Response:
    return render(request, "accounts/welcome.html")


@get("/verify")
async def verify_page(request: Request, token: str = "") -> Response:
    # A GET never changes state: the emailed link opens this page, the button confirms.
    return render(request, "accounts/verify.html", {"token": token, "errors": {}})


@post("/verify")
async def verify_submit(request: Request) -> Response:
    data = await form_text(request)
    try:
        member = await service.verify_email(data.get("token", ""))
    except FormError as error:
        return render(request, "accounts/verify.html", {"token": "", "errors": error.errors}, status_code=400)
    # The link proves the address: a browser with no one logged in is logged in as its member (a
    # new member's first login after sign-up); another member's session is left as it is.
    signed_in = current_member(request)
    cookies = [await start_session(request, member)] if signed_in is None else []
    return redirect("/", flash=("success", i18n.gettext(
        "Thanks, %(name)s: your email is confirmed and you earned 50 points.", name=member.display_name)),
        cookies=cookies)


@post("/verify/resend", guards=[requires_member])
async def verify_resend(request: Request) -> Response:
    member = current_member(request)
    if not member.verified:
        await service.send_verification_email(member)
    return redirect("/account", flash=("info", i18n.gettext("We sent a new confirmation link to %(email)s.", email=member.email)))


@get("/login", name="login")
async def login_page(request: Request, next: str = "") -> Response:  # noqa: A002
    return render(request, "accounts/login.html", {"values": {}, "errors": {}, "next": safe_next(next, "")})


@post("/login")
async def login_submit(request: Request) -> Response:
    data = await form_text(request)
    target = safe_next(data.get("next"), "/")
    try:
        member = await service.authenticate(email=data.get("email", ""), password=data.get("password", ""), ip=_ip(request))
    except (FormError, TooManyRequests) as error:
        message = error.message
        status = 429 if isinstance(error, TooManyRequests) else 400
        return render(
            request,
            "accounts/login.html",
            {"values": {"email": data.get("email", "")}, "errors": {"form": message}, "next": target},
            status_code=status,
        )
    cookie = await start_session(request, member)
    return redirect(target, flash=("success", i18n.gettext("Welcome back, %(name)s.", name=member.display_name)),
                    cookies=[cookie])


@post("/logout")
async def logout(request: Request) -> Response:
    await service.end_session(request.cookies.get(SESSION_COOKIE, ""))
    return redirect("/", flash=("info", i18n.gettext("You are logged out.")), cookies=[anonymous_cookie(request)])


@post("/logout-all", guards=[requires_member])
async def logout_all(request: Request) -> Response:
    count = await service.end_all_sessions(current_member(request).id)
    return redirect(
        "/login",
        flash=("info", i18n.ngettext("Logged out of %(num)s device.", "Logged out of %(num)s devices.", count)),
        cookies=[anonymous_cookie(request)],
    )


@post("/language")
async def choose_language(request: Request) -> Response:
    """The footer's language picker (a plain form: works without JavaScript). Remembered in a
    cookie, and on the member's account so their emails come in the same language."""
    data = await form_text(request)
    code = i18n.normalize(data.get("lang"))
    target = safe_next(data.get("next"), "/")
    if code is None:
        return redirect(target, flash=("error", i18n.gettext("That language is not available.")))
    member = current_member(request)
    if member is not None:
        await service.set_locale(member.id, code)
    cookie = Cookie(key=i18n.LANG_COOKIE, value=code, path="/", samesite="lax", max_age=365 * 86400)
    with i18n.use_locale(code):
        message = i18n.gettext("The site is now in English.")
    return redirect(target, flash=("success", message), cookies=[cookie])


@get("/password-reset")
async def reset_page(request: Request) -> Response:
    return render(request, "accounts/reset_request.html", {"sent": False, "values": {}})


@post("/password-reset")
async def reset_request(request: Request) -> Response:
    data = await form_text(request)
    await service.request_password_reset(data.get("email", ""))
    return render(request, "accounts/reset_request.html", {"sent": True, "values": {"email": data.get("email", "")}})


@get("/password-reset/confirm")
async def reset_confirm_page(request: Request, token: str = "") -> Response:
    return render(request, "accounts/reset_confirm.html", {"token": token, "errors": {}})


@post("/password-reset/confirm")
async def reset_confirm(request: Request) -> Response:
    data = await form_text(request)
    try:
        member = await service.reset_password(data.get("token", ""), data.get("password", ""))
    except FormError as error:
        return render(
            request, "accounts/reset_confirm.html", {"token": data.get("token", ""), "errors": error.errors}, status_code=400
        )
    cookie = await start_session(request, member)
    return redirect("/", flash=("success", i18n.gettext("Your password is changed. Other devices were logged out.")), cookies=[cookie])


async def _settings_context(member: CurrentMember, **extra) -> dict:
    return {
        "values": await service.get_settings_form(member.id),
        "errors": {},
        "tokens": await service.list_api_tokens(member.id),
        "sessions": await service.list_sessions(member.id),
        "new_token": None,
        **extra,
    }


@get("/account", guards=[requires_member])
async def account_page(request: Request) -> Response:
    return render(request, "accounts/settings.html", await _settings_context(current_member(request)))


@post("/account", guards=[requires_member])
async def account_update(request: Request) -> Response:
    member = current_member(request)
    data = await form_text(request)
    try:
        await service.update_profile(
            member,
            display_name=data.get("display_name", ""),
            handle=data.get("handle", ""),
            bio=data.get("bio", ""),
            location=data.get("location", ""),
        )
    except FormError as error:
        ctx = await _settings_context(member)
        ctx.update(values={**ctx["values"], **data}, errors=error.errors)
        return render(request, "accounts/settings.html", ctx, status_code=400)
    return redirect("/account", flash=("success", i18n.gettext("Your profile is saved.")))


@post("/account/password", guards=[requires_member])
async def account_password(request: Request) -> Response:
    member = current_member(request)
    data = await form_text(request)
    try:
        await service.change_password(member, current=data.get("current_password", ""), new=data.get("new_password", ""))
        await service.end_other_sessions(member.id, request.cookies.get(SESSION_COOKIE, ""))
    except FormError as error:
        ctx = await _settings_context(member, errors=error.errors)
        return render(request, "accounts/settings.html", ctx, status_code=400)
    return redirect("/account", flash=("success", i18n.gettext("Your password is changed.")))


@post("/account/tokens", guards=[requires_member])
async def account_token_create(request: Request) -> Response:
    member = current_member(request)
    data = await form_text(request)
    raw = await service.create_api_token(member.id, data.get("name", "API token").strip() or "API token")
    ctx = await _settings_context(member, new_token=raw)
    return render(request, "accounts/settings.html", ctx)


@post("/account/tokens/{token_id:int}/delete", guards=[requires_member])
async def account_token_delete(request: Request, token_id: int) -> Response:
    await service.revoke_api_token(current_member(request).id, token_id)
    return redirect("/account", flash=("info", i18n.gettext("The token was revoked.")))


ROUTES = [
    choose_language,
    signup_page,
    signup_submit,
    signup_sent,
    welcome,
    verify_page,
    verify_submit,
    verify_resend,
    login_page,
    login_submit,
    logout,
    logout_all,
    reset_page,
    reset_request,
    reset_confirm_page,
    reset_confirm,
    account_page,
    account_update,
    account_password,
    account_token_create,
    account_token_delete,
]
