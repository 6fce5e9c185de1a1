"""JSON API for accounts (DESIGN section 9). Bearer tokens only; cookies are ignored here."""

from __future__ import annotations

from litestar import Request, post

from app.accounts import service
from app.accounts.schemas import MemberOut, SignupIn, SignupOut, TokenIn, TokenOut, VerifyIn
from app.accounts.service import CurrentMember
from app.i18n import gettext


def member_out(member: CurrentMember) -> MemberOut:
    level = member.level
    return MemberOut(
        id=member.id,
        email=member.email,
        display_name=member.display_name,
        handle=member.handle,
        email_verified=member.verified,
        is_staff=member.is_staff,
        points_balance=member.points_balance,
        points_lifetime=member.points_lifetime,
        level=level.level.name,
        next_level=level.next_level.name if level.next_level else None,
        points_to_next_level=level.points_to_next,
    )


@post("/auth/signup", status_code=202,
      summary="Sign up: the address gets a confirmation link (or, if it has an account, a notice)",
      description="The answer is the same whether or not the email already has an account. Confirm the "
                  "address with POST /auth/verify, then get a token from POST /auth/tokens.")
async def api_signup(request: Request, data: SignupIn) -> SignupOut:
    await service.signup(
        email=data.email, password=data.password, display_name=data.display_name, referral=data.referral,
        ip=request.scope.get("state", {}).get("client_ip", ""),
    )
    return SignupOut(detail=gettext("Check your email to continue."))


@post("/auth/tokens", summary="Exchange email and password for an API token")
async def api_token(request: Request, data: TokenIn) -> TokenOut:
    member = await service.authenticate(
        email=data.email, password=data.password, ip=request.scope.get("state", {}).get("client_ip", "")
    )
    return TokenOut(token=await service.create_api_token(member.id, data.name))


@post("/auth/verify", status_code=200, summary="Verify an email address with the token from the email")
async def api_verify(data: VerifyIn) -> MemberOut:
    return member_out(await service.verify_email(data.token))


ROUTES = [api_signup, api_token, api_verify]  # GET /me: app/pages/api.py (it shows badges too)
