"""Count the SQL statements a request issues (for the no-N+1 tests, issue 6)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from app.db import engine


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0
        self.statements: list[str] = []


@contextlib.contextmanager
def count_queries() -> Iterator[QueryCounter]:
    """Every query goes through the engine's `run_querystring` (Piccolo's one entry point for
    SELECT/INSERT/UPDATE/DELETE), so wrapping it on the engine instance counts them all."""
    cls = type(engine())  # the engine uses __slots__, so the method is wrapped on its class
    counter = QueryCounter()
    original = cls.run_querystring

    async def counting(self, querystring, *args, **kwargs):
        counter.count += 1
        counter.statements.append(str(querystring)[:200])
        return await original(self, querystring, *args, **kwargs)

    cls.run_querystring = counting
    try:
        yield counter
    finally:
        cls.run_querystring = original
