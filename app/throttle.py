"""Fixed-window counters for rate limits: in-process, or shared through Redis (REDIS_URL)."""

from __future__ import annotations

import logging
import time
from functools import lru_cache

import redis.asyncio as redis
from redis.exceptions import RedisError

from app.settings import get_settings

log = logging.getLogger("crowdmade.throttle")


class MemoryCounters:
    def __init__(self) -> None:
        self._data: dict[str, tuple[int, float]] = {}

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        now = time.monotonic()
        count, expires = self._data.get(key, (0, 0.0))
        if expires <= now:
            count, expires = 0, now + window
        count += 1
        self._data[key] = (count, expires)
        if len(self._data) > 100_000:  # keep memory bounded under a flood of keys
            self._data = {k: v for k, v in self._data.items() if v[1] > now}
        return count, int(expires - now) + 1

    async def peek(self, key: str) -> tuple[int, int]:
        now = time.monotonic()
        count, expires = self._data.get(key, (0, 0.0))
        return (0, 0) if expires <= now else (count, int(expires - now) + 1)

    async def reset(self, key: str) -> None:
        self._data.pop(key, None)


class RedisCounters:
    """Shared counters. When Redis cannot be reached the limits degrade to this process's own
    counters (logged once per outage) instead of failing the request: a member never sees an
    error because Redis is down, and each process still limits what it sees."""

    def __init__(self, url: str) -> None:
        self._redis = redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self._fallback = MemoryCounters()
        self._down = False

    def _degrade(self, error: Exception) -> None:
        if not self._down:
            log.warning("Redis unreachable (%s): rate limits fall back to this process until it is back", error)
        self._down = True

    def _recovered(self) -> None:
        if self._down:
            log.warning("Redis is back: rate limits are shared again")
        self._down = False

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(f"throttle:{key}")
                pipe.expire(f"throttle:{key}", window, nx=True)
                pipe.ttl(f"throttle:{key}")
                count, _, ttl = await pipe.execute()
        except (OSError, RedisError) as error:
            self._degrade(error)
            return await self._fallback.hit(key, window)
        self._recovered()
        return int(count), max(int(ttl), 1)

    async def peek(self, key: str) -> tuple[int, int]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(f"throttle:{key}")
                pipe.ttl(f"throttle:{key}")
                count, ttl = await pipe.execute()
        except (OSError, RedisError) as error:
            self._degrade(error)
            return await self._fallback.peek(key)
        return (int(count or 0), max(int(ttl), 0))

    async def reset(self, key: str) -> None:
        await self._fallback.reset(key)
        try:
            await self._redis.delete(f"throttle:{key}")
        except (OSError, RedisError) as error:
            self._degrade(error)


@lru_cache(maxsize=1)
def counters() -> MemoryCounters | RedisCounters:
    url = get_settings().redis_url
    return RedisCounters(url) if url else MemoryCounters()
