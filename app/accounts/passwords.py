"""Password hashing (argon2id via argon2-cffi) and the password rules of DESIGN section 11."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.i18n import gettext

MIN_LENGTH = 8
MAX_LENGTH = 128
_hasher = PasswordHasher()
# A real hash to verify against when the account does not exist, so timing does not tell.
_DUMMY_HASH = _hasher.hash("not-a-real-password-ever")


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships a ranked list of the 30,000 most common leaked passwords (imported on first
    # use: a large module that only sign-up and password changes need).
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """The message to show next to the password field, or None if it is acceptable."""
    if len(password) < MIN_LENGTH:
        return gettext("Use at least %(min)s characters.", min=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return gettext("Use at most %(max)s characters.", max=MAX_LENGTH)
    lowered = password.lower()
    if lowered in _common_passwords():
        return gettext("This password is too common; choose one that is harder to guess.")
    local_part = email.split("@")[0].lower()
    if local_part and lowered == local_part or (name and lowered == name.lower()):
        return gettext("Don't use your name or email as your password.")
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
