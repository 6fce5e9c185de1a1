"""Live campaign numbers for open pages: server-sent events fed by a fan-out.

In one process an in-memory fan-out is enough; with REDIS_URL set every process publishes to
and listens on a Redis channel, so a pledge taken by one web worker moves the progress bar in
pages served by all the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator

from app.settings import get_settings

log = logging.getLogger("crowdmade.live")
CHANNEL = "crowdmade:campaigns"

_subscribers: dict[int, set[asyncio.Queue]] = defaultdict(set)
_redis_listener: asyncio.Task | None = None
_redis = None


def _deliver_local(campaign_id: int) -> None:
    for queue in list(_subscribers.get(campaign_id, ())):
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(campaign_id)


async def publish(campaign_id: int) -> None:
    """Tell every open page of this campaign to refresh its numbers (after the commit)."""
    url = get_settings().redis_url
    if url:
        try:
            await _redis_client(url).publish(CHANNEL, json.dumps({"campaign_id": campaign_id}))
            return
        except Exception:  # live updates are best effort: never fail a pledge over them
            log.warning("redis publish failed; delivering locally", exc_info=True)
    _deliver_local(campaign_id)


def _redis_client(url: str):
    global _redis
    if _redis is None:
        import redis.asyncio as redis

        _redis = redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)
    return _redis


async def _listen_redis(url: str) -> None:
    import redis.asyncio as redis

    client = redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.subscribe(CHANNEL)
    async for message in pubsub.listen():
        if message.get("type") == "message":
            with contextlib.suppress(ValueError, KeyError, TypeError):
                _deliver_local(int(json.loads(message["data"])["campaign_id"]))


@contextlib.asynccontextmanager
async def subscribe(campaign_id: int) -> AsyncIterator[asyncio.Queue]:
    global _redis_listener
    url = get_settings().redis_url
    if url and (_redis_listener is None or _redis_listener.done()):
        _redis_listener = asyncio.create_task(_listen_redis(url))
    queue: asyncio.Queue = asyncio.Queue(maxsize=16)
    _subscribers[campaign_id].add(queue)
    try:
        yield queue
    finally:
        _subscribers[campaign_id].discard(queue)
