"""Accounts: sign-up, email verification, login with throttling, sessions, password reset,
profiles and API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

from app.accounts.events import EmailVerified, MemberSignedUp, ProfileCompleted
from app.accounts.levels import LevelProgress, level_for
from app.accounts.passwords import hash_password, needs_rehash, password_problem, verify_password
from app.accounts.tables import ApiToken, EmailToken, Member, Session
from app.db import as_aware, select_head, utcnow, write_transaction
from app.db import raw as raw_sql
from app.errors import FormError, NotFound, TooManyRequests
from app.events import emit
from app.i18n import N_, get_locale, gettext, ngettext
from app.mail.service import queue_email
from app.settings import get_settings
from app.throttle import counters
from app.web import identity

log = logging.getLogger("crowdmade.accounts")

SESSION_DAYS = 30
SESSION_TOUCH_SECONDS = 300
VERIFY_HOURS = 72
RESET_HOURS = 2
LOGIN_WINDOW_SECONDS = 15 * 60
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
HANDLE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{1,28}[a-z0-9])$")
RESERVED_HANDLES = frozenset({"admin", "staff", "crowdmade", "api", "me", "support", "help", "root"})


@dataclass(frozen=True)
class CurrentMember:
    """What a request knows about the signed-in member (loaded once per request)."""

    id: int
    email: str
    display_name: str
    handle: str
    is_staff: bool
    is_admin: bool
    verified: bool
    points_balance: int
    points_lifetime: int
    locale: str = "en"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CurrentMember:
        return cls(
            id=row["id"],
            email=row["email"],
            display_name=row["display_name"],
            handle=row["handle"],
            is_staff=bool(row["is_staff"]),
            is_admin=bool(row["is_admin"]),
            verified=row["email_verified_at"] is not None,
            points_balance=row["points_balance"],
            points_lifetime=row["points_lifetime"],
            locale=row.get("locale") or "en",
        )

    @property
    def level(self) -> LevelProgress:
        return level_for(self.points_lifetime)


MEMBER_COLUMNS = (
    Member.id,
    Member.email,
    Member.display_name,
    Member.handle,
    Member.is_staff,
    Member.is_admin,
    Member.email_verified_at,
    Member.points_balance,
    Member.points_lifetime,
    Member.locale,
)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    raw = secrets.token_urlsafe(32)
    return raw, token_hash(raw)


def normalize_email(email: str) -> str:
    return unicodedata.normalize("NFKC", email or "").strip().lower()


def _slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return text[:24] or "member"


async def _free_handle(display_name: str) -> str:
    base = _slug(display_name)
    if len(base) < 3:
        base = f"{base}-fan"
    candidate = base
    for _ in range(50):
        if candidate not in RESERVED_HANDLES and not await Member.exists().where(Member.handle == candidate):
            return candidate
        candidate = f"{base}-{secrets.randbelow(9000) + 1000}"
    return f"member-{secrets.token_hex(4)}"


def _check_display_name(name: str) -> str | None:
    name = name.strip()
    if not name:
        return gettext("Tell us what to call you.")
    if len(name) > 60:
        return gettext("Use at most %(max)s characters.", max=60)
    return None


SIGNUP_NOTICE_SECONDS = 3600  # the "someone tried to sign up with your address" email: once per hour


async def signup(*, email: str, password: str, display_name: str, ip: str = "", referral: str = "",
                 ab_subject: str = "") -> CurrentMember | None:
    """Create a member and email the confirmation link; None when the email already has an account.

    The caller answers both the same way ("Check your email to continue"), so sign-up never tells
    anyone which addresses have accounts: the existing member is emailed instead (at most once per
    SIGNUP_NOTICE_SECONDS, by the email's unique key) and no account is made. The password is hashed
    either way, so the answer takes as long. Field errors (a bad address, a weak password) do not
    depend on who has an account. `ab_subject`: the visitor's experiment subject, kept by the member.
    """
    settings = get_settings()
    if ip:
        count, retry = await counters().hit(f"signup:ip:{ip}", 3600)
        if count > settings.signup_per_hour:
            raise TooManyRequests(gettext("Too many sign-ups from your network. Try again later."), retry)
    email = normalize_email(email)
    display_name = (display_name or "").strip()
    errors: dict[str, str] = {}
    if not EMAIL_RE.match(email) or len(email) > 254:
        errors["email"] = gettext("Enter a valid email address, like you@example.com.")
    if problem := _check_display_name(display_name):
        errors["display_name"] = problem
    if problem := password_problem(password or "", email=email, name=display_name):
        errors["password"] = problem
    if errors:
        raise FormError(errors)
    password_hash = hash_password(password)
    async with write_transaction():
        rows = []
        if not await Member.exists().where(Member.email == email):
            handle = await _free_handle(display_name)
            referrer = None
            if referral:
                found = await Member.select(Member.id, Member.email).where(
                    (Member.handle == referral.strip().lower()) & Member.deleted_at.is_null()).first()
                # No self-referral: the invite must come from another person's account.
                if found and found["email"] != email:
                    referrer = found["id"]
            rows = await Member.insert(
                Member(email=email, display_name=display_name, handle=handle, password_hash=password_hash,
                       referred_by=referrer, ab_subject=ab_subject[:40], locale=get_locale())
            ).on_conflict(action="DO NOTHING").returning(*MEMBER_COLUMNS)
        if not rows:  # the address has an account (or a concurrent sign-up took it first)
            await _email_signup_attempt(email)
            log.info("signup for an existing address")
            return None
        member = CurrentMember.from_row(rows[0])
        await send_verification_email(member)
        await emit(MemberSignedUp(member.id, ab_subject or ""))
    log.info("signup member=%s", member.id)
    return member


async def _email_signup_attempt(email: str) -> None:
    row = await Member.select(Member.id, Member.display_name).where(Member.email == email).first()
    if row is None:  # a concurrent sign-up for the address has not committed yet: it gets the link
        return
    window = int(utcnow().timestamp()) // SIGNUP_NOTICE_SECONDS
    await queue_email(
        kind="signup_attempt",
        subject_ref=f"member:{row['id']}:{window}",
        to=email,
        subject=N_("Someone tried to sign up at %(site)s with your address"),
        subject_args={},
        template="signup_attempt",
        context={"name": row["display_name"], "login_link": f"{get_settings().base_url}/login",
                 "reset_link": f"{get_settings().base_url}/password-reset"},
    )


async def send_verification_email(member: CurrentMember) -> None:
    raw, hashed = new_token()
    async with write_transaction():
        rows = await EmailToken.insert(
            EmailToken(
                token_hash=hashed,
                member=member.id,
                purpose="verify",
                expires_at=utcnow() + dt.timedelta(hours=VERIFY_HOURS),
            )
        ).returning(EmailToken.id)
        link = f"{get_settings().base_url}/verify?token={raw}"
        await queue_email(
            kind="verify_email",
            subject_ref=f"email_token:{rows[0]['id']}",
            to=member.email,
            subject=N_("Welcome to %(site)s: confirm your email"),
            subject_args={},
            template="verify_email",
            context={"name": member.display_name, "link": link, "token": raw, "hours": VERIFY_HOURS},
        )


async def _use_token(raw: str, purpose: str) -> dict[str, Any]:
    """Mark a one-time token used (exactly once) and return its row; FormError if invalid."""
    hashed = token_hash(raw or "")
    rows = await EmailToken.update({EmailToken.used_at: utcnow()}).where(
        (EmailToken.token_hash == hashed)
        & (EmailToken.purpose == purpose)
        & EmailToken.used_at.is_null()
        & (EmailToken.expires_at > utcnow())
    ).returning(EmailToken.id, EmailToken.member)
    if not rows:
        raise FormError({"token": gettext("This link is invalid, expired or was already used.")})
    return rows[0]


async def verify_email(raw_token: str) -> CurrentMember:
    async with write_transaction():
        row = await _use_token(raw_token, "verify")
        member_id = row["member"]
        await Member.update({Member.email_verified_at: utcnow()}).where(
            (Member.id == member_id) & Member.email_verified_at.is_null()
        )
        await emit(EmailVerified(member_id))
    return await get_member(member_id)


async def get_member(member_id: int) -> CurrentMember:
    row = await Member.select(*MEMBER_COLUMNS).where(
        (Member.id == member_id) & Member.deleted_at.is_null()
    ).first()
    if row is None:
        raise NotFound(gettext("Member not found"))
    return CurrentMember.from_row(row)


async def authenticate(*, email: str, password: str, ip: str = "") -> CurrentMember:
    """Check a login; failures are limited per account and per client address."""
    settings = get_settings()
    email = normalize_email(email)
    account_key, ip_key = f"login:acct:{email}", f"login:ip:{ip}"
    # The account's attempt is counted BEFORE the password is checked, so parallel guesses
    # cannot all slip in under the limit (a successful login clears it); the address counts
    # failures only, so a shared office address is not locked out by its colleagues' logins.
    ip_count, ip_retry = await counters().peek(ip_key)
    account_count, account_retry = await counters().hit(account_key, LOGIN_WINDOW_SECONDS)
    for count, retry, limit in ((account_count, account_retry, settings.login_max_failures),
                                (ip_count + 1, ip_retry, settings.login_max_failures * 4)):
        if count > limit:
            log.warning("login throttled email=%s ip=%s", email, ip)
            minutes = max(1, retry // 60)
            raise TooManyRequests(
                ngettext("Too many failed attempts. Try again in %(num)s minute.",
                         "Too many failed attempts. Try again in %(num)s minutes.", minutes),
                retry,
            )
    row = await Member.select(*MEMBER_COLUMNS, Member.password_hash).where(
        (Member.email == email) & Member.deleted_at.is_null()
    ).first()
    if not verify_password(row["password_hash"] if row else None, password or ""):
        await counters().hit(ip_key, LOGIN_WINDOW_SECONDS)
        log.warning("login failed email=%s ip=%s", email, ip)
        raise FormError({"password": gettext("Wrong email or password.")}, gettext("Wrong email or password."))
    await counters().reset(account_key)
    if needs_rehash(row["password_hash"]):
        await Member.update({Member.password_hash: hash_password(password)}).where(Member.id == row["id"])
    log.info("login ok member=%s ip=%s", row["id"], ip)
    return CurrentMember.from_row(row)


# ---- sessions ----------------------------------------------------------------------------


async def create_session(member_id: int, *, ip: str = "", user_agent: str = "") -> str:
    """A brand-new session id for a login (never reuse the one the browser sent)."""
    raw, hashed = new_token()
    await Session.insert(
        Session(
            token_hash=hashed,
            member=member_id,
            expires_at=utcnow() + dt.timedelta(days=SESSION_DAYS),
            ip=ip[:64],
            user_agent=user_agent[:255],
        )
    )
    return raw


def _session_select() -> Any:
    columns = [getattr(Session.member, c._meta.name) for c in MEMBER_COLUMNS]
    return Session.select(Session.id, Session.last_seen_at, Session.expires_at, Session.member.deleted_at, *columns)


async def member_for_session(session_id: str) -> CurrentMember | None:
    """The member signed in with this session cookie (one query on every page)."""
    if not session_id:
        return None
    head = select_head("accounts.session", _session_select)
    rows = await raw_sql(f'{head} WHERE "member_session"."token_hash" = {{}}', token_hash(session_id))
    if not rows:
        return None
    row = dict(rows[0])
    now = utcnow()
    if as_aware(row["expires_at"]) <= now or row["member.deleted_at"] is not None:
        await Session.delete().where(Session.id == row["id"])
        return None
    if (now - as_aware(row["last_seen_at"])).total_seconds() > SESSION_TOUCH_SECONDS:
        await Session.update({Session.last_seen_at: now}).where(Session.id == row["id"])
    return CurrentMember.from_row({c._meta.name: row[f"member.{c._meta.name}"] for c in MEMBER_COLUMNS})


async def set_locale(member_id: int, locale: str) -> None:
    """The member's language for pages and emails (the session reads it on the next request)."""
    await Member.update({Member.locale: locale}).where(Member.id == member_id)


async def end_session(raw: str) -> None:
    if raw:
        await Session.delete().where(Session.token_hash == token_hash(raw))


async def end_all_sessions(member_id: int) -> int:
    rows = await Session.delete().where(Session.member == member_id).returning(Session.id)
    return len(rows)


async def list_sessions(member_id: int) -> list[dict[str, Any]]:
    return await Session.select(
        Session.id, Session.created_at, Session.last_seen_at, Session.ip, Session.user_agent
    ).where(Session.member == member_id).order_by(Session.last_seen_at, ascending=False)


# ---- password reset ----------------------------------------------------------------------


async def request_password_reset(email: str) -> None:
    """Email a reset link if the account exists; the caller shows the same answer either way."""
    email = normalize_email(email)
    row = await Member.select(Member.id, Member.display_name).where(
        (Member.email == email) & Member.deleted_at.is_null()
    ).first()
    if row is None:
        return
    count, _ = await counters().hit(f"reset:{email}", 3600)
    if count > 5:
        return
    raw, hashed = new_token()
    async with write_transaction():
        token_rows = await EmailToken.insert(
            EmailToken(
                token_hash=hashed,
                member=row["id"],
                purpose="reset",
                expires_at=utcnow() + dt.timedelta(hours=RESET_HOURS),
            )
        ).returning(EmailToken.id)
        await queue_email(
            kind="password_reset",
            subject_ref=f"email_token:{token_rows[0]['id']}",
            to=email,
            subject=N_("Reset your %(site)s password"),
            subject_args={},
            template="password_reset",
            context={
                "name": row["display_name"],
                "link": f"{get_settings().base_url}/password-reset/confirm?token={raw}",
                "hours": RESET_HOURS,
            },
        )


async def reset_password(raw_token: str, new_password: str) -> CurrentMember:
    hashed = token_hash(raw_token or "")
    pending = await EmailToken.select(EmailToken.member.email, EmailToken.member.display_name).where(
        (EmailToken.token_hash == hashed) & (EmailToken.purpose == "reset")
    ).first()
    if pending and (problem := password_problem(
        new_password or "", email=pending["member.email"], name=pending["member.display_name"]
    )):
        raise FormError({"password": problem})
    async with write_transaction():
        row = await _use_token(raw_token, "reset")
        await Member.update({Member.password_hash: hash_password(new_password)}).where(
            Member.id == row["member"]
        )
        # A reset ends every session and API token: whoever knew the old password is out.
        await end_all_sessions(row["member"])
        await ApiToken.delete().where(ApiToken.member == row["member"])
        # Following the emailed link proves the address too.
        await Member.update({Member.email_verified_at: utcnow()}).where(
            (Member.id == row["member"]) & Member.email_verified_at.is_null()
        )
    return await get_member(row["member"])


async def change_password(member: CurrentMember, *, current: str, new: str) -> None:
    row = await Member.select(Member.password_hash).where(Member.id == member.id).first()
    if not verify_password(row["password_hash"], current or ""):
        raise FormError({"current_password": gettext("That is not your current password.")})
    if problem := password_problem(new or "", email=member.email, name=member.display_name):
        raise FormError({"new_password": problem})
    await Member.update({Member.password_hash: hash_password(new)}).where(Member.id == member.id)


async def end_other_sessions(member_id: int, keep_raw: str) -> None:
    await Session.delete().where((Session.member == member_id) & (Session.token_hash != token_hash(keep_raw or "")))


# ---- profile -------------------------------------------------------------------------------


async def get_profile(handle: str) -> dict[str, Any]:
    row = await Member.select(
        Member.id,
        Member.display_name,
        Member.handle,
        Member.bio,
        Member.location,
        Member.points_balance,
        Member.points_lifetime,
        Member.created_at,
        Member.is_staff,
    ).where((Member.handle == (handle or "").lower()) & Member.deleted_at.is_null()).first()
    if row is None:
        raise NotFound(gettext("No member with that handle"))
    return row


async def get_settings_form(member_id: int) -> dict[str, Any]:
    return await Member.select(
        Member.display_name, Member.handle, Member.bio, Member.location, Member.email
    ).where(Member.id == member_id).first()


async def update_profile(
    member: CurrentMember, *, display_name: str, handle: str, bio: str, location: str
) -> CurrentMember:
    display_name, handle = (display_name or "").strip(), (handle or "").strip().lower()
    bio, location = (bio or "").strip(), (location or "").strip()
    errors: dict[str, str] = {}
    if problem := _check_display_name(display_name):
        errors["display_name"] = problem
    if not HANDLE_RE.match(handle) or handle in RESERVED_HANDLES:
        errors["handle"] = gettext("3-30 lowercase letters, digits, - or _, starting and ending with a letter or digit.")
    elif await Member.exists().where((Member.handle == handle) & (Member.id != member.id)):
        errors["handle"] = gettext("That handle is taken.")
    if len(bio) > 500:
        errors["bio"] = gettext("Use at most %(max)s characters.", max=500)
    if len(location) > 80:
        errors["location"] = gettext("Use at most %(max)s characters.", max=80)
    if errors:
        raise FormError(errors)
    async with write_transaction():
        await Member.update(
            {Member.display_name: display_name, Member.handle: handle, Member.bio: bio, Member.location: location}
        ).where(Member.id == member.id)
        if bio and location and member.verified:
            await emit(ProfileCompleted(member.id))
    return await get_member(member.id)


# ---- API tokens -----------------------------------------------------------------------------


async def create_api_token(member_id: int, name: str = "API token") -> str:
    raw, hashed = new_token()
    await ApiToken.insert(ApiToken(token_hash=hashed, member=member_id, name=(name or "API token")[:80]))
    return f"cm_{raw}"


async def member_for_api_token(token: str) -> CurrentMember | None:
    """The member a Bearer token belongs to (one query on every API call)."""
    if not token or not token.startswith("cm_"):
        return None
    head = select_head("accounts.member", lambda: Member.select(*MEMBER_COLUMNS))
    rows = await raw_sql(f'{head} WHERE "member"."id" = (SELECT "member" FROM "api_token" WHERE "token_hash" = {{}}) '
                     'AND "member"."deleted_at" IS NULL', token_hash(token[3:]))
    return CurrentMember.from_row(dict(rows[0])) if rows else None


async def list_api_tokens(member_id: int) -> list[dict[str, Any]]:
    return await ApiToken.select(ApiToken.id, ApiToken.name, ApiToken.created_at).where(
        ApiToken.member == member_id
    ).order_by(ApiToken.id, ascending=False)


async def revoke_api_token(member_id: int, token_id: int) -> None:
    rows = await ApiToken.delete().where((ApiToken.id == token_id) & (ApiToken.member == member_id)).returning(
        ApiToken.id
    )
    if not rows:
        raise NotFound(gettext("No such token"))


# ---- staff ----------------------------------------------------------------------------------


async def create_staff(*, email: str, password: str, display_name: str = "Staff", admin: bool = False) -> int:
    email = normalize_email(email)
    if not EMAIL_RE.match(email):
        raise FormError({"email": gettext("Enter a valid email address.")})
    if problem := password_problem(password, email=email):
        raise FormError({"password": problem})
    async with write_transaction():
        existing = await Member.select(Member.id).where(Member.email == email).first()
        values = {
            Member.password_hash: hash_password(password),
            Member.is_staff: True,
            Member.is_admin: admin,
            Member.email_verified_at: utcnow(),
        }
        if existing:
            await Member.update(values).where(Member.id == existing["id"])
            return existing["id"]
        rows = await Member.insert(
            Member(
                email=email,
                display_name=display_name,
                handle=await _free_handle(display_name),
                password_hash=values[Member.password_hash],
                is_staff=True,
                is_admin=admin,
                email_verified_at=utcnow(),
            )
        ).returning(Member.id)
        return rows[0]["id"]


# The HTTP glue (app/web) asks these who a session or a token belongs to.
identity.provide_members(session=member_for_session, api_token=member_for_api_token)
