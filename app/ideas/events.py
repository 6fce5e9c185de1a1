"""What happens to ideas that other parts of the site react to (app/events.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IdeaMoved:
    """An idea changed status (`IdeaEvent` row `event_id`): followers hear of public moves,
    the home page's activity feed of ideas opening to votes or greenlit."""

    idea_id: int
    author_id: int
    title: str
    from_status: str
    to_status: str
    event_id: int
    public: bool


@dataclass(frozen=True)
class IdeaAccepted:
    """Staff accepted an idea for voting."""

    idea_id: int
    author_id: int


@dataclass(frozen=True)
class IdeaVoted:
    """A member's vote was counted. `member_votes` is counted up to 100; `has_first_vote` and
    `has_hundred_votes` say which vote badges the member already holds (read with the vote)."""

    member_id: int
    idea_id: int
    member_votes: int
    has_first_vote: bool
    has_hundred_votes: bool
