"""Each domain's part of a member's personal data, registered by the domain that keeps it.

Data export and account deletion (`app/accounts/privacy.py`) know no other domain's tables: they
ask every registered `Part`, in `order`, for its share. A domain registers its part in its own
`personal_data.py`, imported by the wiring (`app/handlers.py`):

- `export(member_id, profile)`: the sections of the export it owns (its own rows only);
- `blockers(member_id)`: why the account cannot be deleted now (money in motion, goods to deliver);
- `pending(member_id)`: what deleting will cancel (shown on the confirmation page);
- `prepare(member)`: run before the deletion's transaction (cancelling open pledges, each exactly
  once); returns how many things it cancelled;
- `erase(erasure)`: inside the deletion's transaction, every personal trace it keeps;
- `after(erasure)`: after the commit (best-effort calls to other systems, retried by a job that
  `erase` enqueued);
- `claims_idea(idea_id, member_id)`: whether someone else took part in the member's idea (then
  the idea stays, under "Deleted member", when the member removes their content).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app import i18n
from app.i18n import N_

DELETED_NAME = "Deleted member"

# How other members' notifications and emails name the member who acted (community's replies,
# mentions and comments; the shop's questions). They are stored in each recipient's language, so
# an eraser knows the phrase in every language.
ACTOR_MESSAGES = (N_("%(name)s replied to your comment on %(title)s"), N_("%(name)s mentioned you on %(title)s"),
                  N_("%(name)s commented on your idea %(title)s"), N_("%(name)s asked about %(product)s"))


@dataclass
class Erasure:
    """What an eraser knows of the member being deleted (their details before the deletion)."""

    member_id: int
    email: str
    display_name: str
    handle: str
    stripe_customer_id: str
    remove_content: bool  # the member chose to remove their ideas and comments
    removed_ideas: int = 0
    stripe_customer_deleted: bool = False
    image_keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Part:
    name: str
    order: int = 50
    export: Callable[[int, dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
    blockers: Callable[[int], Awaitable[list[str]]] | None = None
    pending: Callable[[int], Awaitable[list[dict[str, Any]]]] | None = None
    prepare: Callable[[Any], Awaitable[int]] | None = None
    erase: Callable[[Erasure], Awaitable[None]] | None = None
    after: Callable[[Erasure], Awaitable[None]] | None = None
    claims_idea: Callable[[int, int], Awaitable[bool]] | None = None


_PARTS: dict[str, Part] = {}


def register(part: Part) -> None:
    _PARTS[part.name] = part


def parts() -> list[Part]:
    return sorted(_PARTS.values(), key=lambda part: (part.order, part.name))


async def idea_claimed(idea_id: int, member_id: int) -> bool:
    for part in parts():
        if part.claims_idea and await part.claims_idea(idea_id, member_id):
            return True
    return False


@functools.cache
def actor_phrases() -> tuple[str, ...]:
    """What follows "<name> " in those titles, in every language ("replied to your comment on ", ...)."""
    phrases = set()
    for code in i18n.LANGUAGES:
        with i18n.use_locale(code):
            for message in ACTOR_MESSAGES:
                text = i18n.gettext(message)
                if text.startswith("%(name)s "):
                    phrases.add(text[len("%(name)s "):].split("%(")[0])
    return tuple(sorted(phrases))


def names_actor(title: str, name: str) -> bool:
    """Whether a notification title or email subject names `name` as the one who acted."""
    prefix = f"{name} "
    return title.startswith(prefix) and title[len(prefix):].startswith(actor_phrases())


def parsed(value: Any) -> Any:
    """A JSON column's value as data (SQLite returns the text, PostgreSQL may too)."""
    if isinstance(value, str):
        try:
            return json.loads(value or "{}")
        except ValueError:
            return {}
    return value


def without(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != key} for row in rows]
