from __future__ import annotations

import datetime as dt
from typing import Literal

import msgspec


class IdeaIn(msgspec.Struct):
    """Fields a member may set. Anything else sent (status, vote_count, ...) is ignored."""

    title: str
    summary: str = ""
    description: str = ""
    category: str = ""


class IdeaPatch(msgspec.Struct):
    title: str | None = None
    summary: str | None = None
    description: str | None = None
    category: str | None = None


class ImageOut(msgspec.Struct):
    id: int
    url: str
    thumb_url: str
    width: int
    height: int


class IdeaSummaryOut(msgspec.Struct):
    id: int
    title: str
    summary: str
    status: str
    vote_count: int
    category: str | None
    author_handle: str
    voting_ends_at: dt.datetime | None
    thumb_url: str | None
    url: str


class IdeaOut(msgspec.Struct):
    id: int
    title: str
    summary: str
    description: str
    status: str
    status_message: str
    vote_count: int
    voted: bool
    ready_for_review: bool
    category: str | None
    author_handle: str
    author_name: str
    created_at: dt.datetime
    voting_ends_at: dt.datetime | None
    images: list[ImageOut]
    url: str


class IdeaList(msgspec.Struct):
    items: list[IdeaSummaryOut]
    total: int
    next_cursor: str | None


class VoteOut(msgspec.Struct):
    idea_id: int
    voted: bool
    vote_count: int


class ReviewIn(msgspec.Struct):
    action: Literal["approve", "reject", "request_changes"]
    message: str = ""


class CategoryOut(msgspec.Struct):
    slug: str
    name: str
    description: str
