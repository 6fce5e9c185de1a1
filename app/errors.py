"""Errors a service raises; the web layer turns them into a page, a fragment or JSON."""

from __future__ import annotations

from app.i18n import gettext


class ServiceError(Exception):
    status_code = 400

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class FormError(ServiceError):
    """Bad input: `errors` maps each field to the message shown next to it."""

    status_code = 400

    def __init__(self, errors: dict[str, str], message: str = "") -> None:
        super().__init__(message or gettext("Please fix the highlighted fields."))
        self.errors = errors


class NotFound(ServiceError):
    """Missing, or not yours to know about (never reveal another member's drafts)."""

    status_code = 404

    def __init__(self, message: str = "") -> None:
        super().__init__(message or gettext("Not found"))


class Forbidden(ServiceError):
    status_code = 403

    def __init__(self, message: str = "") -> None:
        super().__init__(message or gettext("You are not allowed to do that."))


class Conflict(ServiceError):
    """The action is not allowed in the current state (e.g. voting closed)."""

    status_code = 409


class TooManyRequests(ServiceError):
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
