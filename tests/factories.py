"""Helpers that build members and ideas through the real services."""

from __future__ import annotations

import functools
import itertools
import re

from app.accounts import service as accounts
from app.accounts.passwords import hash_password
from app.accounts.service import CurrentMember
from app.accounts.tables import Member
from app.db import utcnow
from app.ideas import service as ideas
from app.ideas.service import IdeaInput

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose: hash once for the whole run


async def make_member(name: str | None = None, *, verified: bool = True, staff: bool = False) -> CurrentMember:
    """A member inserted directly (the sign-up flow itself is tested over HTTP)."""
    n = next(_counter)
    name = name or f"Member {n}"
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:20]
    rows = await Member.insert(Member(
        email=f"{slug.replace('-', '.')}.{n}@example.com", display_name=name, handle=f"{slug}-{n}",
        password_hash=_password_hash(), is_staff=staff, email_verified_at=utcnow() if verified or staff else None,
    )).returning(Member.id)
    return await accounts.get_member(rows[0]["id"])


async def make_idea(author: CurrentMember, *, title: str = "Waterproof commuter backpack", status: str = "voting",
                    staff: CurrentMember | None = None, summary: str = "A backpack that keeps laptops dry",
                    description: str = "Roll-top, welded seams, a padded laptop sleeve and reflective straps.",
                    category: str = "bags") -> int:
    idea_id = await ideas.create_draft(
        author, IdeaInput(title=title, summary=summary, description=description, category=category)
    )
    if status == "draft":
        return idea_id
    await ideas.submit(author, idea_id)
    if status == "submitted":
        return idea_id
    staff = staff or await make_member("Staff Reviewer", staff=True)
    action = {"voting": "approve", "rejected": "reject", "changes_requested": "request_changes"}[status]
    await ideas.review(staff, idea_id, action, "Thanks for the idea, please adjust it.")
    return idea_id


async def login(client, email: str, password: str = PASSWORD) -> None:
    """Log in through the real form (GET for the CSRF token, then POST)."""
    page = await client.get("/login")
    token = csrf_from(page.text)
    response = await client.post("/login", data={"email": email, "password": password, "_csrf_token": token})
    assert response.status_code in (302, 303), response.text[:500]


def csrf_from(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html) or re.search(r'"x-csrftoken": "([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)
