"""Database helpers shared by every domain: the write transaction, start/stop, clock."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from asyncpg.exceptions import UniqueViolationError
from piccolo.engine import engine_finder
from piccolo.engine.sqlite import TransactionType
from piccolo.querystring import QueryString

# A unique key refused a second row (the other request won): what callers catch to return the
# row that got there first. (SQLite serialises writers, so there it is a real conflict too.)
UNIQUE_VIOLATIONS = (UniqueViolationError, sqlite3.IntegrityError)

_sqlite_write_locks: dict[int, asyncio.Lock] = {}


def engine():
    return engine_finder()


def is_sqlite() -> bool:
    return engine().engine_type == "sqlite"


_heads: dict[tuple[str, str], str] = {}


def select_head(name: str, build: Callable[[], Any]) -> str:
    """The SELECT ... FROM ... JOIN part of a hot query, as Piccolo writes it, compiled once per
    engine. Building a Piccolo select with foreign-key columns costs 1-3 ms of CPU per call (the
    columns are copied and joined on every build), more than the query itself; with the head
    compiled once only the WHERE and the values change per request, and the rows come back as
    from Piccolo. `build` returns the select; it must have no WHERE and no values."""
    engine_type = engine().engine_type
    head = _heads.get((name, engine_type))
    if head is None:
        sql, args = build().querystrings[0].compile_string(engine_type=engine_type)
        if args or "{" in sql:
            raise ValueError(f"the {name} head must be plain SQL")
        head = _heads[(name, engine_type)] = sql
    return head


async def dict_rows(sql: str, *args: Any) -> list[dict[str, Any]]:
    """`raw`, with each row a plain dict as a Piccolo select returns it (PostgreSQL's raw rows
    are records); with a `select_head`, a hot query's rows without building it each time."""
    return [dict(row) for row in await raw(sql, *args)]


def id_list(ids: Iterable[int]) -> str:
    """`(1,2,3)` for an `IN` in plain SQL: integers only (int() refuses anything else), written
    into the statement. Piccolo's is_in builds one parameter per value: ~7 ms for a thousand."""
    text = ",".join(str(int(i)) for i in ids)
    return f"({text})" if text else "(NULL)"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive UTC datetimes; PostgreSQL aware ones."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _sqlite_lock() -> asyncio.Lock:
    loop_id = id(asyncio.get_running_loop())
    lock = _sqlite_write_locks.get(loop_id)
    if lock is None:
        lock = _sqlite_write_locks[loop_id] = asyncio.Lock()
    return lock


_after_commit: contextvars.ContextVar[list[Callable[[], Awaitable[Any]]] | None] = contextvars.ContextVar(
    "after_commit", default=None)


def after_commit(callback: Callable[[], Awaitable[Any]]) -> None:
    """Run `callback` once the outermost write transaction has committed (never after a
    rollback); outside one, soon. For side effects others must only see after the commit, such
    as telling open pages to re-read."""
    pending = _after_commit.get()
    if pending is not None:
        pending.append(callback)
    else:
        asyncio.get_running_loop().create_task(_run_callbacks([callback]))


async def _run_callbacks(callbacks: list[Callable[[], Awaitable[Any]]]) -> None:
    for callback in callbacks:
        try:
            await callback()
        except Exception:  # noqa: BLE001 (best effort: the commit already happened)
            logging.getLogger("crowdmade.db").warning("after-commit callback failed", exc_info=True)


def in_transaction() -> bool:
    return engine().current_transaction.get() is not None


@contextlib.asynccontextmanager
async def write_transaction() -> AsyncIterator[Any]:
    """A transaction for writes that must be exact.

    SQLite: BEGIN IMMEDIATE (takes the write lock up front, so a read-then-write never
    fails with "database is locked") behind one asyncio.Lock per process, so writers of
    this process queue instead of spinning on the busy timeout.
    PostgreSQL: a normal transaction; callers take row locks (`lock_rows()`) where needed.
    A nested call joins the open transaction.
    """
    db = engine()
    if db.current_transaction.get() is not None:
        yield db.current_transaction.get()
        return
    callbacks: list[Callable[[], Awaitable[Any]]] = []
    token = _after_commit.set(callbacks)
    try:
        if db.engine_type == "sqlite":
            async with _sqlite_lock():
                async with db.transaction(transaction_type=TransactionType.immediate) as txn:
                    yield txn
        else:
            async with db.transaction() as txn:
                yield txn
    finally:
        _after_commit.reset(token)
    await _run_callbacks(callbacks)  # reached only when the transaction committed


async def raw(sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run SQL that Piccolo's query builder cannot express; `{}` marks each argument."""
    return await engine().run_querystring(QueryString(sql, *args))


async def _release_without_reset_query(connection: Any) -> None:
    """The pool's reset on release, minus asyncpg's default reset query (`SELECT
    pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`), which Piccolo paid as one more
    round trip after EVERY query (it takes a pool connection per query). The app keeps no
    session state (no SET, LISTEN, cursors or advisory locks), and asyncpg still rolls back a
    transaction left open before this is called. `make bench` (votes) showed the difference."""


async def start_database() -> None:
    db = engine()
    if db.engine_type == "sqlite":
        await db.run_ddl("PRAGMA journal_mode=WAL")
        await db.run_ddl("PRAGMA synchronous=NORMAL")
    else:
        await db.start_connection_pool(min_size=2, max_size=20, reset=_release_without_reset_query)


async def stop_database() -> None:
    db = engine()
    if db.engine_type != "sqlite":
        with contextlib.suppress(Exception):
            await db.close_connection_pool()
