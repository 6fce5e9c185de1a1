"""Accounts over HTTP: sign-up, verification, sessions, CSRF, throttling, reset, API tokens."""

from __future__ import annotations

import datetime as dt
import re

from app.accounts.tables import Member, Session
from app.mail.tables import EmailMessage
from app.points.tables import PointsEntry
from tests.factories import PASSWORD, csrf_from, login, make_member


async def _signup(client, email="new.fan@example.com", password=PASSWORD, name="New Fan"):
    page = await client.get("/signup")
    return await client.post(
        "/signup",
        data={"display_name": name, "email": email, "password": password, "_csrf_token": csrf_from(page.text)},
    )


def _link_token(text: str, path: str) -> str:
    match = re.search(rf"{re.escape(path)}\?token=([A-Za-z0-9_\-]+)", text)
    assert match, f"no {path} link in: {text}"
    return match.group(1)


async def test_signup_shows_field_errors_and_writes_nothing(client):
    response = await _signup(client, email="not-an-email", password="password", name="")
    assert response.status_code == 400
    assert "Enter a valid email address" in response.text
    assert "This password is too common" in response.text or "at least 8" in response.text
    assert "Tell us what to call you." in response.text
    assert await Member.count() == 0


async def test_signup_refuses_common_and_short_passwords(client):
    short = await _signup(client, password="abc123")
    assert short.status_code == 400 and "Use at least 8 characters." in short.text
    common = await _signup(client, password="iloveyou1")
    assert common.status_code == 400 and "too common" in common.text


async def test_signup_verify_awards_points_once(client):
    response = await _signup(client)
    assert response.status_code == 303
    email = await EmailMessage.select().where(EmailMessage.kind == "verify_email").first()
    assert email["recipient"] == "new.fan@example.com"
    assert "Confirm my email" in email["html_body"]
    token = _link_token(email["text_body"], "/verify")
    # The link opens a page; a GET changes nothing.
    page = await client.get(f"/verify?token={token}")
    assert page.status_code == 200 and "Confirm my email" in page.text
    member = await Member.select().where(Member.email == "new.fan@example.com").first()
    assert member["email_verified_at"] is None
    assert (await client.get("/account", follow_redirects=False)).status_code in (302, 303)  # not logged in yet
    confirm = await client.post("/verify", data={"token": token, "_csrf_token": csrf_from(page.text)})
    assert confirm.status_code == 303
    assert (await client.get("/account")).status_code == 200  # the link logged the new member in
    page = await client.get(f"/verify?token={token}")  # a new session: a new CSRF token
    again = await client.post("/verify", data={"token": token, "_csrf_token": csrf_from(page.text)})
    assert again.status_code == 400 and "already used" in again.text
    member = await Member.select().where(Member.email == "new.fan@example.com").first()
    assert member["email_verified_at"] is not None
    assert member["points_balance"] == 50
    assert await PointsEntry.count().where(PointsEntry.member == member["id"]) == 1


def _without_tokens(response) -> tuple:
    """What a sign-up answer shows, with the per-visitor tokens (session id, CSRF) blanked."""
    headers = sorted((k, re.sub(r"cm_session=[^;]+", "cm_session=*", v)) for k, v in response.headers.multi_items()
                     if k not in ("date", "content-length"))
    return response.status_code, headers, re.sub(r'value="[0-9a-f]{64}"|"x-csrftoken": "[0-9a-f]{64}"', "*", response.text)


async def test_signup_answers_the_same_for_a_taken_and_a_new_email(client):
    """No account enumeration: byte-identical answers, and the existing member is told by email
    (once per throttle window) instead of a second account being made."""

    existing = await make_member("Existing Erik")
    answers = []
    for email in (existing.email.upper(), "brand.new@example.com"):
        client.cookies.clear()  # two different visitors
        answers.append(await _signup(client, email=email))
    assert answers[0].status_code == 303 and answers[0].headers["location"] == "/signup/sent"
    assert _without_tokens(answers[0]) == _without_tokens(answers[1])
    assert await Member.count().where(Member.email == existing.email) == 1
    page = await client.get("/signup/sent")
    assert page.status_code == 200 and "Check your email to continue" in page.text
    # The JSON API: the same answer for both.
    api = []
    for email in (existing.email, "api.new@example.com"):
        api.append(await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD,
                                                                 "display_name": "Someone"}))
    assert [(r.status_code, r.content) for r in api] == [(202, b'{"detail":"Check your email to continue."}')] * 2
    # The member with the address got one notice for the two tries in this window; nobody logged in.
    notices = await EmailMessage.select().where(EmailMessage.kind == "signup_attempt")
    assert [n["recipient"] for n in notices] == [existing.email]
    assert "tried to create a new" in notices[0]["text_body"] and "/password-reset" in notices[0]["text_body"]
    assert await EmailMessage.count().where(EmailMessage.kind == "verify_email") == 2  # the two new addresses
    assert (await client.get("/account", follow_redirects=False)).status_code in (302, 303)


async def test_signup_notice_is_sent_again_in_the_next_window(client, monkeypatch):
    from app.accounts import service as accounts

    existing = await make_member("Windowed Wanda")
    await _signup(client, email=existing.email)
    await _signup(client, email=existing.email)
    assert await EmailMessage.count().where(EmailMessage.kind == "signup_attempt") == 1
    later = accounts.utcnow() + dt.timedelta(seconds=accounts.SIGNUP_NOTICE_SECONDS)
    monkeypatch.setattr(accounts, "utcnow", lambda: later)
    await _signup(client, email=existing.email)
    assert await EmailMessage.count().where(EmailMessage.kind == "signup_attempt") == 2


async def test_concurrent_signups_for_one_address_make_one_account(client):
    import asyncio

    from app.accounts import service as accounts

    results = await asyncio.gather(*(accounts.signup(email="race@example.com", password=PASSWORD,
                                                     display_name=f"Racer {i}") for i in range(4)))
    assert sum(result is not None for result in results) == 1
    assert await Member.count().where(Member.email == "race@example.com") == 1
    assert await EmailMessage.count().where(EmailMessage.kind == "verify_email") == 1
    assert await EmailMessage.count().where(EmailMessage.kind == "signup_attempt") == 1


async def test_session_id_rotates_at_login_and_logout(client):
    member = await make_member("Rotating Rita")
    client.cookies.set("cm_session", "attacker-chosen-session-id", domain="testserver.local")
    page = await client.get("/login")
    assert page.status_code == 200
    await login(client, member.email)
    new_id = client.cookies.get("cm_session")
    assert new_id and new_id != "attacker-chosen-session-id"
    me = await client.get("/account")
    assert me.status_code == 200 and "Rotating Rita" in me.text
    # The attacker's id is not a session.
    client.cookies.set("cm_session", "attacker-chosen-session-id", domain="testserver.local")
    assert (await client.get("/account")).status_code == 303
    client.cookies.set("cm_session", new_id, domain="testserver.local")
    page = await client.get("/")
    logout = await client.post("/logout", data={"_csrf_token": csrf_from(page.text)})
    assert logout.status_code == 303
    after = client.cookies.get("cm_session")
    assert after and after != new_id
    client.cookies.set("cm_session", new_id, domain="testserver.local")
    assert (await client.get("/account")).status_code == 303  # the old id no longer logs in
    assert await Session.count() == 0


async def test_csrf_refused_without_or_with_a_foreign_token(client):
    member = await make_member("Csrf Carl")
    await client.get("/")
    no_token = await client.post("/login", data={"email": member.email, "password": PASSWORD})
    assert no_token.status_code == 403
    assert "This form has expired" in no_token.text
    wrong = await client.post("/login", data={"email": member.email, "password": PASSWORD, "_csrf_token": "0" * 64})
    assert wrong.status_code == 403
    # A valid token of ANOTHER session is refused too: the token is bound to the session.
    import httpx

    async with httpx.AsyncClient(transport=client._transport, base_url="http://testserver.local") as other_browser:
        foreign = csrf_from((await other_browser.get("/login")).text)
    refused = await client.post("/login", data={"email": member.email, "password": PASSWORD, "_csrf_token": foreign})
    assert refused.status_code == 403
    assert await Session.count() == 0
    # The header used by htmx works as well as the form field.
    page = await client.get("/login")
    ok = await client.post("/login", data={"email": member.email, "password": PASSWORD},
                           headers={"x-csrftoken": csrf_from(page.text)})
    assert ok.status_code == 303


async def test_login_is_throttled_per_account(client):
    member = await make_member("Locked Lou")
    page = await client.get("/login")
    token = csrf_from(page.text)
    for _ in range(5):
        bad = await client.post("/login", data={"email": member.email, "password": "wrong password!", "_csrf_token": token})
        assert bad.status_code == 400 and "Wrong email or password." in bad.text
    blocked = await client.post("/login", data={"email": member.email, "password": PASSWORD, "_csrf_token": token})
    assert blocked.status_code == 429
    assert "Too many failed attempts" in blocked.text


async def test_logout_of_all_devices(client, database):
    import httpx

    from app.asgi import create_app

    member = await make_member("Two Devices")
    await login(client, member.email)
    other_app = create_app(run_jobs=False, manage_database=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other_app), base_url="http://testserver.local") as phone:
        await login(phone, member.email)
        assert (await phone.get("/account")).status_code == 200
        page = await client.get("/account")
        assert "2 devices" in page.text
        response = await client.post("/logout-all", data={"_csrf_token": csrf_from(page.text)})
        assert response.status_code == 303
        assert (await phone.get("/account")).status_code == 303
    assert (await client.get("/account")).status_code == 303


async def test_password_reset_by_email_ends_sessions(client):
    member = await make_member("Forgetful Fay")
    page = await client.get("/password-reset")
    response = await client.post("/password-reset", data={"email": member.email, "_csrf_token": csrf_from(page.text)})
    assert response.status_code == 200 and "If an account exists" in response.text
    unknown = await client.post("/password-reset", data={"email": "nobody@example.com", "_csrf_token": csrf_from(page.text)})
    assert "If an account exists" in unknown.text  # same answer: no account enumeration
    email = await EmailMessage.select().where(EmailMessage.kind == "password_reset").first()
    assert email["recipient"] == member.email
    assert await EmailMessage.count().where(EmailMessage.kind == "password_reset") == 1
    token = _link_token(email["text_body"], "/password-reset/confirm")
    form = await client.get(f"/password-reset/confirm?token={token}")
    weak = await client.post("/password-reset/confirm", data={"token": token, "password": "123", "_csrf_token": csrf_from(form.text)})
    assert weak.status_code == 400 and "at least 8" in weak.text
    done = await client.post(
        "/password-reset/confirm", data={"token": token, "password": "a brand new secret", "_csrf_token": csrf_from(form.text)}
    )
    assert done.status_code == 303
    await client.post("/logout", data={"_csrf_token": csrf_from((await client.get("/")).text)})
    await login(client, member.email, "a brand new secret")
    reuse = await client.post(
        "/password-reset/confirm", data={"token": token, "password": "yet another secret", "_csrf_token": csrf_from(form.text)}
    )
    assert reuse.status_code in (400, 403)


async def test_profile_settings_and_public_profile(client):
    member = await make_member("Profile Pat")
    await login(client, member.email)
    page = await client.get("/account")
    saved = await client.post(
        "/account",
        data={"display_name": "Pat P.", "handle": "pat-p", "bio": "I love rain jackets.", "location": "Umeå",
              "_csrf_token": csrf_from(page.text)},
    )
    assert saved.status_code == 303
    profile = await client.get("/members/pat-p")
    assert profile.status_code == 200
    assert "I love rain jackets." in profile.text and "Umeå" in profile.text
    assert 'data-testid="lifetime-points">25<' in profile.text  # complete-profile points
    bad = await client.post("/account", data={"display_name": "Pat", "handle": "A B", "bio": "", "location": "",
                                               "_csrf_token": csrf_from(page.text)})
    assert bad.status_code == 400 and "lowercase letters" in bad.text
    assert (await client.get("/members/nobody-here")).status_code == 404


async def test_security_headers_and_no_store(client):
    response = await client.get("/")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    member = await make_member("Private Pia")
    await login(client, member.email)
    account = await client.get("/account")
    assert account.headers["cache-control"] == "no-store"


async def test_api_tokens_bearer_only(client):
    member = await make_member("Api Ann")
    bad = await client.post("/api/v1/auth/tokens", json={"email": member.email, "password": "nope nope nope"})
    assert bad.status_code == 400 and bad.json()["detail"]
    response = await client.post("/api/v1/auth/tokens", json={"email": member.email, "password": PASSWORD})
    assert response.status_code == 201
    token = response.json()["token"]
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    body = me.json()
    assert body["email"] == member.email and body["level"] == "Newcomer"
    # A logged-in browser cookie is not accepted by the API (so CSRF cannot reach it).
    await login(client, member.email)
    assert (await client.get("/api/v1/me")).status_code == 401
    assert (await client.get("/api/v1/me", headers={"Authorization": "Bearer cm_wrong"})).status_code == 401


async def test_api_signup_and_verify(client):
    response = await client.post("/api/v1/auth/signup", json={"email": "api.fan@example.com", "password": "short",
                                                            "display_name": "Api Fan"})
    assert response.status_code == 400
    assert response.json()["extra"]["errors"]["password"] == "Use at least 8 characters."
    response = await client.post("/api/v1/auth/signup", json={"email": "api.fan@example.com", "password": PASSWORD,
                                                            "display_name": "Api Fan", "points_balance": 99999,
                                                            "is_staff": True})
    assert response.status_code == 202 and response.json() == {"detail": "Check your email to continue."}
    email = await EmailMessage.select().where(EmailMessage.recipient == "api.fan@example.com").first()
    token = _link_token(email["text_body"], "/verify")
    verified = await client.post("/api/v1/auth/verify", json={"token": token})
    assert verified.status_code == 200 and verified.json()["email_verified"] is True
    assert verified.json()["points_balance"] == 50 and verified.json()["is_staff"] is False


async def test_password_reset_revokes_api_tokens(client):
    from app.accounts import service as accounts
    from app.accounts.tables import ApiToken

    member = await make_member("Token Holder")
    await accounts.create_api_token(member.id)
    await accounts.request_password_reset(member.email)
    email = await EmailMessage.select().where(EmailMessage.kind == "password_reset").first()
    await accounts.reset_password(_link_token(email["text_body"], "/password-reset/confirm"), "another fine secret")
    assert await ApiToken.count().where(ApiToken.member == member.id) == 0


async def test_decompression_bomb_is_refused():
    import io

    import pytest
    from PIL import Image

    from app.errors import FormError
    from app.media.images import check_and_reencode

    buffer = io.BytesIO()
    Image.new("1", (9000, 5000)).save(buffer, "PNG")
    with pytest.raises(FormError) as error:
        check_and_reencode(buffer.getvalue(), filename="bomb.png", max_bytes=5 * 1024 * 1024)
    assert "upload a smaller image" in error.value.errors["images"]


async def test_a_planted_visitor_id_is_replaced_by_a_signed_one(client):
    client.cookies.set("cm_session", "planted-by-attacker", domain="testserver.local")
    response = await client.get("/login")
    new_id = client.cookies.get("cm_session")
    assert new_id != "planted-by-attacker" and new_id.startswith("a.")
    # the token in the page belongs to the new id: the attacker cannot know it
    again = await client.get("/login")
    assert csrf_from(again.text) == csrf_from(response.text)
    assert client.cookies.get("cm_session") == new_id  # a valid signed id is kept
