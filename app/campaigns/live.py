"""Live updates for open pages: server-sent events fed by a fan-out.

Two kinds of subscribers: a campaign's open pages (its numbers changed) and a member's open
pages (their notification count changed). In one process an in-memory fan-out is enough; with
REDIS_URL set every process publishes to and listens on a Redis channel, so a pledge taken or a
notification written by one web worker or job worker reaches pages served by all the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator

import redis.asyncio as redis

from app.settings import get_settings

log = logging.getLogger("crowdmade.live")
CHANNEL = "crowdmade:campaigns"

_subscribers: dict[str, set[asyncio.Queue]] = defaultdict(set)
_redis_listener: asyncio.Task | None = None
_redis = None


def _deliver_local(key: str) -> None:
    value = int(key.split(":", 1)[1])
    for queue in list(_subscribers.get(key, ())):
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(value)


async def _publish(key: str) -> None:
    url = get_settings().redis_url
    if url:
        try:
            await _redis_client(url).publish(CHANNEL, json.dumps({"key": key}))
            return
        except Exception:  # live updates are best effort: never fail a pledge over them
            log.warning("redis publish failed; delivering locally", exc_info=True)
    _deliver_local(key)


async def publish(campaign_id: int) -> None:
    """Tell every open page of this campaign to refresh its numbers (after the commit)."""
    await _publish(f"c:{campaign_id}")


async def publish_member(member_id: int) -> None:
    """Tell the member's open pages that their notifications changed (after the commit)."""
    await _publish(f"m:{member_id}")


async def publish_activity() -> None:
    """Tell open home pages the activity feed changed (after the commit)."""
    await _publish("a:0")


def subscribe_activity():  # noqa: ANN201
    return _subscribe("a:0")


def _redis_client(url: str):
    global _redis
    if _redis is None:
        _redis = redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)
    return _redis


async def _listen_redis(url: str) -> None:
    client = redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.subscribe(CHANNEL)
    async for message in pubsub.listen():
        if message.get("type") == "message":
            with contextlib.suppress(ValueError, KeyError, TypeError, IndexError):
                data = json.loads(message["data"])
                key = data["key"] if "key" in data else f"c:{int(data['campaign_id'])}"
                if key[:2] in ("c:", "m:", "a:"):
                    _deliver_local(key)


@contextlib.asynccontextmanager
async def _subscribe(key: str) -> AsyncIterator[asyncio.Queue]:
    global _redis_listener
    url = get_settings().redis_url
    if url and (_redis_listener is None or _redis_listener.done()):
        _redis_listener = asyncio.create_task(_listen_redis(url))
    queue: asyncio.Queue = asyncio.Queue(maxsize=16)
    _subscribers[key].add(queue)
    try:
        yield queue
    finally:
        _subscribers[key].discard(queue)


def subscribe(campaign_id: int):  # noqa: ANN201 (an async context manager of a queue)
    return _subscribe(f"c:{campaign_id}")


def subscribe_member(member_id: int):  # noqa: ANN201
    return _subscribe(f"m:{member_id}")
