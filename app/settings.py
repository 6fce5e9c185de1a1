"""One typed settings object, read from the environment (and a `.env` file in development).

This is the only module that reads `os.environ` (CONVENTIONS rule 9).
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Piccolo finds its engine through this module path; set it once for every entry point.
os.environ.setdefault("PICCOLO_CONF", "app.piccolo_conf")


class SettingsError(RuntimeError):
    """A setting has a bad value; the message says which and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    crowdmade_env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///var/crowdmade.sqlite3"
    redis_url: str | None = None
    secret_key: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    port: int = Field(default=8000, ge=1, le=65535)
    var_dir: Path = PROJECT_ROOT / "var"

    stripe_secret_key: str | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    stripe_js_url: str | None = None
    stripe_max_network_retries: int = Field(default=2, ge=0, le=10)

    smtp_url: str | None = None
    mail_from: str = "Crowdmade <hello@crowdmade.test>"

    # Site rules (DESIGN sections 2 and 5); the demo lowers the support threshold.
    site_name: str = "Crowdmade"
    currency: str = "SEK"
    support_threshold: int = Field(default=100, ge=1)
    voting_days: int = Field(default=30, ge=1, le=365)
    upload_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_images_per_idea: int = Field(default=5, ge=1, le=20)
    metrics_token: str | None = None  # /metrics answers only with "Authorization: Bearer <token>"
    trusted_proxies: str = ""  # comma-separated addresses whose X-Forwarded-For is believed
    jobs_in_process: bool = True
    job_lease_seconds: int = Field(default=300, ge=1)
    page_cache_seconds: float = Field(default=1.0, ge=0, le=60)  # public pages for visitors; 0 = off
    shared_page_seconds: float = Field(default=1.0, ge=0, le=60)  # members' shared page layer; 0 = render each time
    early_access_hours: int = Field(default=24, ge=0, le=720)
    payment_fix_days: int = Field(default=7, ge=1, le=60)
    payment_reminder_hours: int = Field(default=48, ge=1)
    payment_retry_hours: int = Field(default=24, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    signup_per_hour: int = Field(default=20, ge=1)
    # Shop (DESIGN section 7): flat shipping rates as "code:Label:minor units", comma-separated.
    shipping_rates: str = "standard:Standard delivery (2-4 days):4900,express:Express delivery (next day):9900"
    free_shipping_over: int = Field(default=0, ge=0)  # minor units; 0 = never free
    checkout_hold_minutes: int = Field(default=30, ge=1, le=24 * 60)  # stock held for an unpaid checkout
    review_request_days: int = Field(default=7, ge=0, le=90)  # after delivery
    # VAT (moms) rates a product or campaign may carry, percent included in prices; the first is
    # the default.
    vat_rates: str = "25,12,6"
    # The seller, as receipts and the withdrawal receipt and the withdrawal page name it (ångerrätt, 14 days).
    seller_legal_name: str = "Crowdmade AB"
    returns_address: str = "Crowdmade AB, Returns, Lagervägen 4, 136 50 Haninge, Sweden"
    # A withdrawal from goods already sent is refunded when staff note the parcel back (the law
    # lets a seller wait for the goods); off: refunded at once, whatever the parcel does.
    withdrawal_refund_after_return: bool = False
    seller_address: str = "Götgatan 14, 118 46 Stockholm, Sweden"
    seller_org_number: str = "559999-0000"
    seller_vat_number: str = "SE559999000001"

    def vat_rate_choices(self) -> list[int]:
        """[25, 12, 6] from VAT_RATES, the default first."""
        return [int(part) for part in self.vat_rates.split(",")]

    def vat_rate(self, typed: int | str | None) -> int:
        """The VAT rate staff chose ("12", "12 %", 12), or the default when blank; ValueError for a
        rate the site does not offer."""
        rates = self.vat_rate_choices()
        rate = rates[0] if typed in (None, "") else int(str(typed).strip().rstrip("%").strip())
        if rate not in rates:
            raise ValueError(rate)
        return rate

    def shipping_options(self) -> list[tuple[str, str, int]]:
        """[(code, label, price in minor units)] from SHIPPING_RATES."""
        options = []
        for part in self.shipping_rates.split(","):
            code, label, price = part.strip().split(":")
            options.append((code.strip(), label.strip(), int(price)))
        return options

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme == "sqlite":
            if not value.startswith("sqlite:///") or len(value) <= len("sqlite:///"):
                raise ValueError("use sqlite:///relative/path.sqlite3 or sqlite:////absolute/path.sqlite3")
            return value
        if parts.scheme in {"postgresql", "postgres"}:
            if not parts.hostname and not parts.path.strip("/"):
                raise ValueError("a PostgreSQL URL needs a host or a database, e.g. postgresql://user@host:5432/db")
            return value
        raise ValueError(f"unsupported scheme {parts.scheme!r}: use sqlite:///... or postgresql://...")

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("use smtp://user:pass@host:port or smtps://user:pass@host:port")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("use redis://host:port/db")
        return value

    @field_validator("shipping_rates")
    @classmethod
    def _check_shipping_rates(cls, value: str) -> str:
        for part in value.split(","):
            pieces = part.strip().split(":")
            if len(pieces) != 3 or not pieces[0].strip() or not pieces[2].strip().isdecimal():
                raise ValueError("use code:Label:price_in_minor_units, comma-separated, e.g. standard:Standard:4900")
        return value

    @field_validator("vat_rates")
    @classmethod
    def _check_vat_rates(cls, value: str) -> str:
        parts = [part.strip() for part in value.split(",")]
        if not parts or not all(p.isdecimal() and 0 <= int(p) < 100 for p in parts) or len(set(parts)) != len(parts):
            raise ValueError("use whole percentages, comma-separated, the default first, e.g. 25,12,6")
        return value

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("use an absolute http(s) URL such as https://shop.example.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.crowdmade_env == "production" and not self.secret_key:
            raise ValueError("SECRET_KEY must be set in production")
        if self.crowdmade_env == "production" and not self.smtp_url:
            raise ValueError("SMTP_URL must be set in production (emails carry sign-in links)")
        if self.secret_key is not None and len(self.secret_key) < 32:
            raise ValueError("SECRET_KEY must be at least 32 characters")
        return self

    # ---- derived values -------------------------------------------------------------
    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @property
    def sqlite_path(self) -> Path:
        raw = self.database_url[len("sqlite:///"):]
        path = Path(raw)
        return path if path.is_absolute() else PROJECT_ROOT / path

    @property
    def is_production(self) -> bool:
        return self.crowdmade_env == "production"

    @property
    def media_dir(self) -> Path:
        return self.var_dir / "media"

    @property
    def trusted_proxy_set(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.trusted_proxies.split(",") if p.strip())

    @property
    def signing_key(self) -> str:
        """SECRET_KEY, or in development/test a key generated once into var/."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        name = ".".join(str(p) for p in item["loc"]).upper() or "settings"
        lines.append(f"  {name}: {item['msg']}")
    return "Bad settings in the environment:\n" + "\n".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


def reload_settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()


def set_environment(**values: str) -> None:
    """Set variables for this process and its children (used by the CLI and tests)."""
    for key, value in values.items():
        os.environ[key.upper()] = value
    get_settings.cache_clear()
