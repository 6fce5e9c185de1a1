from __future__ import annotations

import datetime as dt

import msgspec


class PointsEntryOut(msgspec.Struct):
    id: int
    points: int
    reason: str
    label: str
    reference: str
    note: str
    created_at: dt.datetime


class PointsPage(msgspec.Struct):
    balance: int
    lifetime: int
    items: list[PointsEntryOut]
    next_cursor: str | None
