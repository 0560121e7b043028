"""The Meta profile cache: Graph profiles kept for ``PROFILE_CACHE_TTL`` seconds (default
86400, issue 11), in Redis when ``REDIS_URL`` is set (shared by every replica), in this
process otherwise (a :class:`cachetools.TTLCache`).

Rules:

- A profile found in the cache makes no Graph call. Only successes are stored: a failed
  fetch raises and leaves nothing behind, so the next fetch asks Meta again.
- Single flight: concurrent fetches of one key in a process share one in-flight Graph call
  (one :class:`asyncio.Task` per key; each waiter awaits it through :func:`asyncio.shield`,
  so a waiter that is cancelled does not cancel the others' call). With Redis, processes
  also take a short Redis lock per key (``<key>:lock``, redis-py's :class:`Lock`) and look
  in the cache again once they hold it, so replicas make one call too. The lock expires
  after ``LOCK_SECONDS`` (more than a Graph call's ``total_timeout``); a process that
  cannot get it in that time, or cannot reach Redis, fetches by itself (a Redis outage
  costs Graph calls, never a failed fetch).
- Key: ``patron:meta:profile:v1:<platform>:<app id>:<page or account id>:<user id>``.
  PSIDs and IGSIDs are scoped to a page / Instagram account, and a profile's readable
  fields depend on the app, so both are in the key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any, Protocol, cast

import structlog
from cachetools import TTLCache
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from patron.config import Settings
from patron.meta.graph import (
    GraphClient,
    GraphCredentials,
    InstagramProfile,
    MessengerProfile,
    P,
    Platform,
)
from patron.meta.metrics import PROFILE_CACHE

log = structlog.get_logger("patron.meta")

KEY_PREFIX = "patron:meta:profile:v1"
# Profiles kept in process without Redis (about 1 KiB each).
MEMORY_MAXSIZE = 10_000
# Longest a cross-process lock is held / waited for, seconds: past a Graph call's 30 s.
LOCK_SECONDS = 35.0


def profile_key(platform: Platform, credentials: GraphCredentials, user_id: str) -> str:
    """The cache key of one user's profile as seen by one app and page."""
    page = credentials.page_id or "-"
    return f"{KEY_PREFIX}:{platform.value}:{credentials.app_id}:{page}:{user_id}"


class ProfileStore(Protocol):
    """Where cached profiles live: JSON strings by key, with a time to live in seconds."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl: int) -> None: ...

    def lock(self, key: str) -> AbstractAsyncContextManager[None]: ...

    async def aclose(self) -> None: ...


class MemoryProfileStore:
    """Profiles in this process (a TTL cache of at most ``maxsize`` entries). Its lock is
    a no-op: the in-process single flight of :class:`ProfileFetcher` is enough."""

    def __init__(self, ttl: int, maxsize: int = MEMORY_MAXSIZE) -> None:
        self._cache: TTLCache[str, str] = TTLCache(maxsize=maxsize, ttl=max(ttl, 1))

    async def get(self, key: str) -> str | None:
        return self._cache.get(key)

    async def set(self, key: str, value: str, ttl: int) -> None:
        self._cache[key] = value

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        yield

    async def aclose(self) -> None:
        self._cache.clear()


class RedisProfileStore:
    """Profiles in Redis (``SET key value EX ttl``), with a Redis lock per key for the
    cross-process single flight. Redis errors are logged and count as a miss."""

    def __init__(self, redis: Redis, *, lock_seconds: float = LOCK_SECONDS) -> None:
        self._redis = redis
        self._lock_seconds = lock_seconds

    @classmethod
    def from_url(cls, url: str) -> RedisProfileStore:
        return cls(Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0))

    async def get(self, key: str) -> str | None:
        try:
            value = await self._redis.get(key)
        except RedisError as exc:
            log.warning("profile cache unavailable", error=type(exc).__name__)
            return None
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, key: str, value: str, ttl: int) -> None:
        try:
            await self._redis.set(key, value, ex=ttl)
        except RedisError as exc:
            log.warning("profile cache unavailable", error=type(exc).__name__)

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        lock = self._redis.lock(
            f"{key}:lock",
            timeout=self._lock_seconds,
            blocking_timeout=self._lock_seconds,
            sleep=0.05,
            thread_local=False,
        )
        try:
            acquired = bool(await lock.acquire())
        except (LockError, RedisError) as exc:
            log.warning("profile cache lock unavailable", error=type(exc).__name__)
            acquired = False
        try:
            yield
        finally:
            if acquired:
                # expired and maybe taken by another process: nothing to undo
                with suppress(LockError, RedisError):
                    await lock.release()

    async def aclose(self) -> None:
        await self._redis.aclose()


class ProfileFetcher:
    """Cached, single-flight profile look-ups over a :class:`GraphClient` (module rules).

    One per process; :meth:`aclose` closes the client and the store. Errors are the
    client's (:class:`~patron.meta.errors.GraphError` and its kinds).
    """

    def __init__(self, client: GraphClient, store: ProfileStore, ttl: int) -> None:
        self.client = client
        self.store = store
        self.ttl = ttl
        self._inflight: dict[str, asyncio.Task[Any]] = {}

    async def messenger_profile(self, psid: str, credentials: GraphCredentials) -> MessengerProfile:
        """The Messenger profile of ``psid``, from the cache or the Graph API."""
        return await self._cached(
            Platform.MESSENGER, psid, credentials, MessengerProfile, self.client.messenger_profile
        )

    async def instagram_profile(
        self, igsid: str, credentials: GraphCredentials
    ) -> InstagramProfile:
        """The Instagram profile of ``igsid``, from the cache or the Graph API."""
        return await self._cached(
            Platform.INSTAGRAM, igsid, credentials, InstagramProfile, self.client.instagram_profile
        )

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.store.aclose()

    async def _cached(
        self,
        platform: Platform,
        user_id: str,
        credentials: GraphCredentials,
        model: type[P],
        fetch: Callable[[str, GraphCredentials], Awaitable[P]],
    ) -> P:
        key = profile_key(platform, credentials, user_id)
        found = await self._load(key, model)
        if found is not None:
            PROFILE_CACHE.labels(platform.value, "hit").inc()
            return found
        task = self._inflight.get(key)
        if task is None:
            fill = self._fill(key, platform, user_id, credentials, model, fetch)
            task = asyncio.ensure_future(fill)
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return cast(P, await asyncio.shield(task))  # one key, one model

    def _forget(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter was cancelled

    async def _fill(
        self,
        key: str,
        platform: Platform,
        user_id: str,
        credentials: GraphCredentials,
        model: type[P],
        fetch: Callable[[str, GraphCredentials], Awaitable[P]],
    ) -> P:
        async with self.store.lock(key):
            found = await self._load(key, model)  # another process may have filled it
            if found is not None:
                PROFILE_CACHE.labels(platform.value, "hit").inc()
                return found
            PROFILE_CACHE.labels(platform.value, "miss").inc()
            profile = await fetch(user_id, credentials)
            if self.ttl > 0:
                await self.store.set(key, profile.model_dump_json(), self.ttl)
            return profile

    async def _load(self, key: str, model: type[P]) -> P | None:
        if self.ttl <= 0:
            return None
        raw = await self.store.get(key)
        if raw is None:
            return None
        try:
            return model.model_validate_json(raw)
        except ValidationError:
            return None  # written by another version: fetch again and overwrite


def build_profile_fetcher(settings: Settings) -> ProfileFetcher:
    """The process's fetcher: a :class:`GraphClient` from the ``META_*`` settings and a
    Redis store when ``REDIS_URL`` is set, an in-process one otherwise."""
    store: ProfileStore
    if settings.redis_url:
        store = RedisProfileStore.from_url(settings.redis_url)
    else:
        store = MemoryProfileStore(settings.profile_cache_ttl)
    return ProfileFetcher(GraphClient.from_settings(settings), store, settings.profile_cache_ttl)
