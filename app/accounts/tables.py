from piccolo.columns import (
    Boolean,
    ForeignKey,
    Integer,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Member(Table, tablename="member"):
    email = Varchar(length=254, unique=True, index=True)
    email_verified_at = Timestamptz(null=True, default=None)
    display_name = Varchar(length=60)
    handle = Varchar(length=40, unique=True, index=True)
    password_hash = Varchar(length=255)
    is_staff = Boolean(default=False)
    is_admin = Boolean(default=False)
    bio = Text(default="")
    location = Varchar(length=80, default="")
    # Cached sums of the points ledger, changed only in the ledger's own transaction.
    points_balance = Integer(default=0)
    points_lifetime = Integer(default=0)
    stripe_customer_id = Varchar(length=80, default="")
    referred_by = Integer(null=True, default=None)  # the member whose invite link brought this one
    wishlist_public = Boolean(default=False)  # the wishlist can be opened by anyone with its link
    marketing_opt_in = Boolean(default=False)  # the latest marketing-email consent (history in `consent`)
    locale = Varchar(length=8, default="en")  # the member's language for pages and emails
    ab_subject = Varchar(length=40, default="")  # experiment subject kept from before login
    created_at = Timestamptz(default=TimestamptzNow())
    deleted_at = Timestamptz(null=True, default=None)


class Session(Table, tablename="member_session"):
    """A logged-in browser. The cookie holds a random token; we keep only its hash."""

    token_hash = Varchar(length=64, unique=True, index=True)
    member = ForeignKey(Member, index=True, on_delete=OnDelete.cascade, null=False)
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    ip = Varchar(length=64, default="")
    user_agent = Varchar(length=255, default="")


class ApiToken(Table, tablename="api_token"):
    token_hash = Varchar(length=64, unique=True, index=True)
    member = ForeignKey(Member, index=True, on_delete=OnDelete.cascade, null=False)
    name = Varchar(length=80, default="API token")
    created_at = Timestamptz(default=TimestamptzNow())
    last_used_at = Timestamptz(null=True, default=None)


class EmailToken(Table, tablename="email_token"):
    """One-time links sent by email: verify an address, reset a password."""

    token_hash = Varchar(length=64, unique=True, index=True)
    member = ForeignKey(Member, index=True, on_delete=OnDelete.cascade, null=False)
    purpose = Varchar(length=20)  # verify | reset
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class Consent(Table, tablename="consent"):
    """Every consent given or withdrawn, with the text shown and its version (append-only)."""

    member = ForeignKey(Member, index=True, on_delete=OnDelete.cascade, null=False)
    kind = Varchar(length=30)  # marketing_email | terms
    granted = Boolean()
    text_version = Varchar(length=20)
    text = Text()
    created_at = Timestamptz(default=TimestamptzNow())


class Address(Table, tablename="address"):
    member = ForeignKey(Member, index=True, null=False, on_delete=OnDelete.cascade)
    name = Varchar(length=100)
    line1 = Varchar(length=120)
    line2 = Varchar(length=120, default="")
    postal_code = Varchar(length=20)
    city = Varchar(length=80)
    country = Varchar(length=2, default="SE")
    phone = Varchar(length=30, default="")
    is_default = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
