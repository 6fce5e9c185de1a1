"""Domain events: a core domain says what happened; the reactions subscribe to it.

A core domain (accounts, ideas, campaigns, payments, orders, shop) never calls points, badges,
notifications, activity or analytics itself. Inside the transaction of its change it calls
`await emit(SomethingHappened(...))`, and each subscriber runs in one of two ways:

- **inline** (`@subscribe(Event)`): awaited there and then, inside the same transaction, for a
  reaction that must be exact with the change (points, badges: the change and its reward commit
  or roll back together). A failing inline subscriber fails the change, so neither is lost.
- **deferred** (`@subscribe(Event, deferred=True)`): a durable job is written in the same
  transaction (the jobs table), and a worker runs the subscriber after the commit, with the jobs'
  retries and backoff. A change that rolls back leaves no job; a subscriber that fails is retried
  and the event stays in the table until it succeeds or its attempts run out (visible in
  `crowdmade audit` as a stuck job), so it is never silently lost.

Events are plain frozen dataclasses of ids and small values (a deferred one is stored as JSON).
Subscribers register when their module is imported; `app/handlers.py` imports every one, as it
does the job handlers. The README lists each event, its emitter and its subscribers.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from app.jobs.service import enqueue, job_handler

E = TypeVar("E")
Subscriber = Callable[[Any], Awaitable[None]]

_inline: dict[type, list[Subscriber]] = defaultdict(list)
_deferred: dict[type, list[str]] = defaultdict(list)


def _job_kind(event_type: type, func: Subscriber) -> str:
    return f"event:{event_type.__name__}:{func.__module__}.{func.__qualname__}"


def subscribe(event_type: type[E], *, deferred: bool = False) -> Callable[[Subscriber], Subscriber]:
    def register(func: Subscriber) -> Subscriber:
        if deferred:
            kind = _job_kind(event_type, func)

            async def run(payload: dict[str, Any]) -> None:
                await func(event_type(**payload))

            job_handler(kind)(run)
            if kind not in _deferred[event_type]:
                _deferred[event_type].append(kind)
        elif func not in _inline[event_type]:
            _inline[event_type].append(func)
        return func

    return register


def subscribers(event_type: type) -> list[str]:
    """Who reacts to an event, by name (the README's table and its test)."""
    inline = [f"{f.__module__}.{f.__qualname__}" for f in _inline.get(event_type, [])]
    return inline + [kind.split(":", 2)[2] + " (job)" for kind in _deferred.get(event_type, [])]


async def emit(event: Any) -> None:
    """Call inside the transaction of the change the event describes."""
    event_type = type(event)
    for func in _inline.get(event_type, ()):
        await func(event)
    kinds = _deferred.get(event_type)
    if kinds:
        payload = dataclasses.asdict(event)
        for kind in kinds:
            await enqueue(kind, payload)
